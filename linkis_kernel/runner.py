"""The shell commands: `linkis-kernel run`, `attach`, `log`, `jobs` and `kill`.

`run` submits code, streams progress and log to stderr and prints the result; `attach` does the
same for a job already submitted. Exit status of both: 0 when the job succeeded, 1 when it
failed, 130 when it was cancelled or interrupted (Ctrl-C kills the job), 2 for usage and
connection problems. `log`, `jobs` and `kill` print what they read. Every error is one line on
stderr, never a traceback; next steps are phrased as these commands (`CLI_COMMANDS`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .client import (
    ATTACH,
    EMBEDDED_NOTE,
    JOBS,
    KILL,
    LOG,
    Commands,
    LinkisError,
    LinkisJobNotFoundError,
    phrase_steps,
)
from .display.text import TextProgress
from .job import (
    OPTION_ENGINE,
    OPTION_RUN_TYPE,
    Job,
    KillReport,
    LinkisClient,
    NoDefaultRunTypeError,
    UnknownEngineError,
    interrupt_held,
)
from .wire import CANCELLED, DEFAULT_CREATOR, SUCCEED

if TYPE_CHECKING:
    from .results import ResultSet

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130
DISPLAY_ROWS = 50

CLI_COMMANDS: Commands = {
    LOG: "linkis-kernel log {ref}",
    ATTACH: "linkis-kernel attach {ref}",
    KILL: "linkis-kernel kill {ref}",
    JOBS: "linkis-kernel jobs",
}


def run_main(args: argparse.Namespace) -> int:
    """Run one job as `linkis-kernel run` describes; returns the exit status."""
    try:
        code = args.code if args.code is not None else Path(args.file).read_text(encoding="utf-8")
    except OSError as exc:
        return _fail(args, f"Cannot read the code file {args.file}: {exc.strerror or exc}.")
    if not code.strip():
        return _fail(args, "There is no code to run: pass --code or a non-empty --file.")
    try:
        client = LinkisClient.from_env()
        with interrupt_held() as interrupted:
            job = client.submit(
                code,
                engine=args.engine,
                run_type=args.run_type,
                creator=args.creator or DEFAULT_CREATOR,
                variables=dict(args.var),
            )
    except UnknownEngineError as exc:
        return _fail(args, exc.describe(OPTION_ENGINE))
    except NoDefaultRunTypeError as exc:
        return _fail(args, exc.describe(OPTION_RUN_TYPE))
    except (LinkisError, ValueError) as exc:
        return _fail(args, f"Could not submit the job: {_describe(exc)}")
    except KeyboardInterrupt:
        return _fail(args, "Interrupted before the job was submitted.", EXIT_CANCELLED)
    _note_embedded(client, args)
    _info(args, f"Submitted Linkis job {job.task_id} ({job.exec_id}).")
    if interrupted.is_set():  # Ctrl-C while submitting: held until the job was known
        report = job.kill(wait=job.kill_confirm_wait)
        return _fail(args, report.describe(CLI_COMMANDS), EXIT_CANCELLED)
    return _follow(job, args)


def attach_main(args: argparse.Namespace) -> int:
    """`linkis-kernel attach ID`: follow a submitted job to its end and print its result."""

    def attach(client: LinkisClient) -> int:
        job = client.job(args.id)
        _info(args, f"Attached to Linkis job {job.task_id} ({job.exec_id}), {job.state}.")
        return _follow(job, args)

    return _with_client(args, f"Could not attach to job {args.id}", attach)


def log_main(args: argparse.Namespace) -> int:
    """`linkis-kernel log ID`: print a job's log (at `--level`, the last `--tail` lines)."""

    def log(client: LinkisClient) -> int:
        for line in client.job(args.id).log(args.level, tail=args.tail):
            print(line)
        return EXIT_OK

    return _with_client(args, f"Could not read the log of job {args.id}", log)


def jobs_main(args: argparse.Namespace) -> int:
    """`linkis-kernel jobs`: your latest jobs, newest first, one line each."""

    def jobs(client: LinkisClient) -> int:
        page = client.jobhistory_list(page_size=args.n)
        if not page.tasks:
            print("No Linkis jobs yet.")
        else:
            print(f"{'TASK':>8}  {'STATUS':<12} {'ENGINE':<14} {'CREATOR':<10} CREATED")
        for task in page.tasks:
            created = task.created_time.strftime("%Y-%m-%d %H:%M:%S") if task.created_time else "-"
            print(
                f"{task.task_id:>8}  {task.status:<12} {task.engine_type or '-':<14} "
                f"{task.creator or '-':<10} {created}"
            )
        return EXIT_OK

    return _with_client(args, "Could not list the jobs", jobs)


def kill_main(args: argparse.Namespace) -> int:
    """`linkis-kernel kill ID`: kill a job; exit 0 once it has ended, 1 while it still runs."""

    def kill(client: LinkisClient) -> int:
        job = client.job(args.id)
        print(job.kill().describe(CLI_COMMANDS))
        return EXIT_OK if job.done else EXIT_FAILED

    return _with_client(args, f"Could not kill job {args.id}", kill)


def _with_client(
    args: argparse.Namespace, failure: str, command: Callable[[LinkisClient], int]
) -> int:
    """Connect as `run` does and run `command`; a LinkisError is reported after `failure`."""
    try:
        client = LinkisClient.from_env()
    except LinkisError as exc:
        return _fail(args, f"Could not connect: {_describe(exc)}")
    _note_embedded(client, args)
    try:
        return command(client)
    except LinkisJobNotFoundError as exc:
        return _fail(args, _describe(exc))
    except LinkisError as exc:
        return _fail(args, f"{failure}: {_describe(exc)}")
    except KeyboardInterrupt:
        return _fail(args, "Interrupted.", EXIT_CANCELLED)


def _follow(job: Job, args: argparse.Namespace) -> int:
    console = None
    if not args.quiet:
        console = TextProgress(
            job.engine or "linkis", sys.stderr, commands=CLI_COMMANDS, show_log=True
        )
    on_update = console.update if console else None
    try:
        try:
            job.wait(on_update=on_update, raise_on_failure=False)
        finally:
            if console:
                console.finish()
    except KeyboardInterrupt as exc:
        report = getattr(exc, "linkis_report", None)
        text = report.describe(CLI_COMMANDS) if isinstance(report, KillReport) else "Interrupted."
        return _fail(args, text, EXIT_CANCELLED)
    except LinkisError as exc:
        return _fail(args, _describe(exc))
    if job.state == CANCELLED:
        return _fail(args, f"Linkis job {job.task_id} was cancelled.", EXIT_CANCELLED)
    try:
        if job.state != SUCCEED:
            failure = job.failure()
            lines = [
                f"{failure.message}:",
                *(f"  {line}".rstrip() for line in failure.reason_lines()),
            ]
            lines.append(phrase_steps(failure.next_steps, CLI_COMMANDS))
            return _fail_lines(args, lines, EXIT_FAILED)
        return _print_results(job, args)
    except KeyboardInterrupt:
        return _fail(args, "Interrupted while reading the result.", EXIT_CANCELLED)
    except LinkisError as exc:
        return _fail(args, f"Could not read the result of job {job.task_id}: {_describe(exc)}")


def _print_results(job: Job, args: argparse.Namespace) -> int:
    sets = job.results(limit=args.limit)
    for result in sets:
        if len(sets) > 1:
            print(f"-- result {result.index + 1} of {len(sets)} ({result.kind})")
        print(render_result(result))
    if args.output:
        tables = [s for s in sets if s.kind == "table"]
        if not tables:
            return _fail(
                args, f"Job {job.task_id} produced no table to write to {args.output}.", EXIT_FAILED
            )
        try:
            tables[-1].data.to_csv(args.output, index=False)
        except OSError as exc:
            return _fail(args, f"Cannot write {args.output}: {exc.strerror or exc}.")
        _info(args, f"Wrote {tables[-1].rows_fetched:,} rows to {args.output}.")
    return EXIT_OK


def render_result(result: ResultSet, display_rows: int = DISPLAY_ROWS) -> str:
    """A result set as terminal text: at most `display_rows` table rows plus a footer."""
    if result.kind == "picture":
        return f"(picture result, {len(result.data):,} characters of base64; not shown)"
    if result.kind != "table":
        return str(result.data)
    frame = result.data
    shown = min(len(frame), display_rows)
    body = frame.head(shown).to_string(index=False) if len(frame.columns) else "(no columns)"
    return f"{body}\n{table_footer(result, shown)}"


def table_footer(result: ResultSet, shown: int) -> str:
    """`showing 50 of 6,000 rows fetched; truncated by ...; display limit 50`."""
    fetched = result.rows_fetched
    parts = [
        f"showing {shown:,} of {fetched:,} rows fetched" if shown < fetched else f"{fetched:,} rows"
    ]
    parts.append(f"truncated by {result.truncation}" if result.truncated else "complete")
    if shown < fetched:
        parts.append(f"display limit {shown:,}")
    return "; ".join(parts)


def _describe(error: Exception) -> str:
    """An error as one sentence, its next steps phrased as shell commands."""
    return error.describe(CLI_COMMANDS) if isinstance(error, LinkisError) else str(error)


def _note_embedded(client: LinkisClient, args: argparse.Namespace) -> None:
    if client.embedded:
        _info(args, EMBEDDED_NOTE.format(url=client.url))


def _info(args: argparse.Namespace, message: str) -> None:
    """An informational line on stderr, left out under --quiet."""
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr, flush=True)


def _fail(args: argparse.Namespace, message: str, status: int = EXIT_USAGE) -> int:
    """Print `message` as one line on stderr and return `status`."""
    return _fail_lines(args, [" ".join(message.split())], status)


def _fail_lines(args: argparse.Namespace, lines: list[str], status: int) -> int:
    """Print a failure of several lines on stderr (the first names the command); `status`."""
    text = "\n".join([f"linkis-kernel {args.command}: {lines[0]}", *lines[1:]])
    print(text, file=sys.stderr, flush=True)
    return status
