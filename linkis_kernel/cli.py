"""The `linkis-kernel` command: serve, run, install."""

from __future__ import annotations

import argparse
import sys


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
    serve.add_argument("--port", type=int, default=9001, help="port; 0 picks a free one")
    serve.add_argument("--data-dir", help="where history, logs and results live")
    serve.add_argument("--workers", type=int, default=2, help="jobs that run at once")

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
    run.add_argument("--limit", type=int, help="fetch at most this many rows")
    run.add_argument("--output", help="write the result table to this CSV file")

    install = commands.add_parser("install", help="install the Linkis kernelspecs")
    where = install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for this user")
    where.add_argument("--sys-prefix", action="store_true", help="install into sys.prefix")
    where.add_argument("--prefix", help="install under this prefix")
    install.add_argument("--name", action="append", help="only these kernelspecs")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from .local.server import serve_main

        return serve_main(args)
    if args.command == "run":
        from .runner import run_main

        return run_main(args)
    from .kernelspec import install_main

    return install_main(args)


if __name__ == "__main__":
    sys.exit(main())
