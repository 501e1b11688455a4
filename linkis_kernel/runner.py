"""`linkis-kernel run`: submit code, stream progress and log to stderr, print the result.

Exit status: 0 when the job succeeded, 1 when it failed, 130 when it was cancelled or
interrupted (Ctrl-C kills the job), 2 for usage and connection problems. Every error is one line
on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .client import EMBEDDED_NOTE, LinkisError
from .display.text import status_line
from .job import Job, LinkisClient, Snapshot
from .wire import CANCELLED, DEFAULT_CREATOR, SUCCEED

if TYPE_CHECKING:
    from .results import ResultSet

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130
DISPLAY_ROWS = 50


def run_main(args: argparse.Namespace) -> int:
    """Run one job as `linkis-kernel run` describes; returns the exit status."""
    err = sys.stderr
    try:
        code = args.code if args.code is not None else Path(args.file).read_text(encoding="utf-8")
    except OSError as exc:
        return _fail(f"Cannot read the code file {args.file}: {exc.strerror or exc}.", EXIT_USAGE)
    if not code.strip():
        return _fail("There is no code to run: pass --code or a non-empty --file.", EXIT_USAGE)
    try:
        client = LinkisClient.from_env()
        job = client.submit(
            code,
            engine=args.engine,
            run_type=args.run_type,
            creator=args.creator or DEFAULT_CREATOR,
            variables=dict(args.var),
        )
    except (LinkisError, ValueError) as exc:
        return _fail(f"Could not submit the job: {exc}", EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("Interrupted before the job was submitted.", EXIT_CANCELLED)
    if client.embedded:
        print(EMBEDDED_NOTE.format(url=client.url), file=err)
    print(f"Submitted Linkis job {job.task_id} ({job.exec_id}).", file=err, flush=True)
    return _follow(job, args, err)


def _follow(job: Job, args: argparse.Namespace, err: TextIO) -> int:
    console = Console(err, job.engine or args.engine)
    try:
        job.wait(on_update=console.update, raise_on_failure=False)
    except KeyboardInterrupt as exc:
        console.finish()
        return _fail(getattr(exc, "linkis_report", "Interrupted."), EXIT_CANCELLED)
    except LinkisError as exc:
        console.finish()
        return _fail(str(exc), EXIT_USAGE)
    console.finish()
    if job.state == CANCELLED:
        return _fail(f"Linkis job {job.task_id} was cancelled.", EXIT_CANCELLED)
    try:
        if job.state != SUCCEED:
            return _fail(str(job.failure()), EXIT_FAILED)
        return _print_results(job, args)
    except KeyboardInterrupt:
        return _fail("Interrupted while reading the result.", EXIT_CANCELLED)
    except LinkisError as exc:
        return _fail(f"Could not read the result of job {job.task_id}: {exc}", EXIT_USAGE)


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
                f"Job {job.task_id} produced no table to write to {args.output}.", EXIT_FAILED
            )
        try:
            tables[-1].data.to_csv(args.output, index=False)
        except OSError as exc:
            return _fail(f"Cannot write {args.output}: {exc.strerror or exc}.", EXIT_USAGE)
        print(f"Wrote {tables[-1].rows_fetched:,} rows to {args.output}.", file=sys.stderr)
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


class Console:
    """Log lines and one status line on a terminal stream (rewritten in place on a TTY)."""

    def __init__(self, stream: TextIO, engine: str) -> None:
        self.stream = stream
        self.engine = engine
        self.tty = stream.isatty()
        self._width = 0
        self._last_key: tuple | None = None

    def update(self, snapshot: Snapshot) -> None:
        self._clear()
        for line in snapshot.new_log["all"]:
            self.stream.write(line + "\n")
        text = status_line(snapshot, self.engine)
        if self.tty:
            self.stream.write(text)
            self._width = len(text)
        else:
            key = (snapshot.state, snapshot.queue_position, snapshot.warning)
            if key != self._last_key:
                self.stream.write(text + "\n")
            self._last_key = key
        self.stream.flush()

    def finish(self) -> None:
        """End the status line so what follows starts on its own line."""
        if self._width:
            self.stream.write("\n")
            self.stream.flush()
        self._width = 0

    def _clear(self) -> None:
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0


def _fail(message: str, status: int) -> int:
    """Print `message` as one line on stderr and return `status`."""
    print(f"linkis-kernel run: {' '.join(message.split())}", file=sys.stderr, flush=True)
    return status
