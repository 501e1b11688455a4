"""The `linkis-kernel` command: serve, run, attach, log, jobs, kill, install."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from .wire import LOG_LEVELS


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linkis-kernel", description="Jupyter-native access to Apache Linkis."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the embedded Linkis-compatible server")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=9001, help="port (default 9001); 0 picks a free one"
    )
    serve.add_argument(
        "--data-dir",
        help="where history, logs and results live (default: <jupyter data dir>/linkis-kernel)",
    )
    serve.add_argument(
        "--workers", type=int, default=2, help="jobs of one user that run at once (default 2)"
    )
    serve.add_argument(
        "--engine-idle-timeout",
        default="30m",
        metavar="TIME",
        help="end engines (Python sessions) idle this long: 90s, 30m, 2h (default 30m)",
    )
    serve.add_argument(
        "--max-engines-per-user",
        type=int,
        default=10,
        metavar="N",
        help="engines a user may have at once (default 10)",
    )
    serve.add_argument(
        "--sandbox",
        choices=("auto", "always", "never"),
        default="auto",
        help="run Python, PySpark and Shell jobs in a process sandbox (bwrap): auto (default) "
        "when the server has more than one user, always, or never (one user only)",
    )
    serve.add_argument(
        "--engine-kill-grace",
        type=float,
        default=None,
        metavar="SECONDS",
        help="after a kill, end an engine whose job has not stopped within this time "
        "(default 5 for Python engines, 20 for Spark engines)",
    )
    serve.add_argument(
        "--disk-quota",
        default="auto",
        metavar="SIZE",
        help="disk space each user's files, results and logs may take: 500MB, 2GB, 0 or none "
        "for no quota (default auto: 5GB, at most a quarter of the data dir's disk, when the "
        "server has more than one user; none with one user)",
    )

    serve.add_argument(
        "--engine-memory",
        default="auto",
        metavar="SIZE",
        help="memory each engine process (SQL, Python, PySpark, Shell) may use: 4GB, 512MB, "
        "none, or auto (default: a quarter of this machine's memory when the server has more "
        "than one user, none with one)",
    )
    serve.add_argument(
        "--max-processes-per-user",
        type=int,
        default=None,
        metavar="N",
        help="processes and threads the sandboxed jobs of one user may have together, where the "
        "server can create cgroups (default 4096)",
    )
    serve.add_argument(
        "--user-memory",
        default="auto",
        metavar="SIZE",
        help="memory the sandboxed Python, PySpark and Shell processes of one user may use "
        "together (shared memory and /tmp files included), where the server can create memory "
        "cgroups: 8GB, none, or auto (default: what --engine-memory gives each engine process)",
    )

    run = commands.add_parser("run", help="submit code to Linkis, stream progress, print result")
    run.add_argument("-e", "--engine", required=True, help="engine type, e.g. spark or hive-3.1.3")
    run.add_argument("-t", "--run-type", help="run type (default: the engine's usual one)")
    run.add_argument("-c", "--creator", help="creator label (default IDE)")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--code", dest="code", help="the code to run")
    source.add_argument("-f", "--file", dest="file", help="a file holding the code")
    run.add_argument(
        "--var", action="append", type=_key_value, default=[], metavar="K=V", help="variable"
    )
    _add_result_options(run)

    attach = commands.add_parser("attach", help="follow a submitted job and print its result")
    attach.add_argument("id", help="task id or exec id")
    _add_result_options(attach)

    log = commands.add_parser("log", help="print a job's log")
    log.add_argument("id", help="task id or exec id")
    log.add_argument("--level", choices=LOG_LEVELS, default="all", help="log level (default all)")
    log.add_argument("--tail", type=_count, metavar="N", help="only the last N lines")

    jobs = commands.add_parser("jobs", help="list your latest jobs, newest first")
    jobs.add_argument("-n", type=_positive, default=20, metavar="N", help="how many (default 20)")

    kill = commands.add_parser("kill", help="kill a job")
    kill.add_argument("id", help="task id or exec id")

    install = commands.add_parser("install", help="install the Linkis kernelspecs")
    where = install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for this user")
    where.add_argument("--sys-prefix", action="store_true", help="install into sys.prefix")
    where.add_argument("--prefix", help="install under this prefix")
    install.add_argument("--name", action="append", help="only these kernelspecs")
    return parser


def _add_result_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--limit", type=int, help="fetch at most this many rows")
    command.add_argument("--output", help="write the result table to this CSV file")
    command.add_argument(
        "-q", "--quiet", action="store_true", help="no progress, log or notes on stderr"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from .local.server import serve_main

        return serve_main(args)
    if args.command == "install":
        from .kernelspec import install_main

        return install_main(args)
    from . import runner

    command: Callable[[argparse.Namespace], int] = getattr(runner, f"{args.command}_main")
    return command(args)


if __name__ == "__main__":
    sys.exit(main())
