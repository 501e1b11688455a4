"""Exceptions raised by the Linkis client and the job layer built on it.

Every exception renders as one or two plain sentences: what went wrong and what to do next.
Messages that came from the server are scrubbed of secrets before they get here.

What to do next about a job is kept as `NextStep`s, in no front end's words: `str(error)` phrases
them for the Python API, and each front end passes its own `Commands` to `error.describe(...)`
(a magic command in a notebook, `linkis-kernel log 12` in a shell).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# What a user can do next about a job: see its log, re-attach to it, kill it, list their jobs.
LOG, ATTACH, KILL, JOBS = "log", "attach", "kill", "jobs"

Commands = Mapping[str, str]
"""How one front end spells each next step: a template with `{ref}` for the task or exec id."""

PYTHON_COMMANDS: Commands = {
    LOG: "client.job({ref}).log()",
    ATTACH: "client.job({ref})",
    KILL: "client.job({ref}).kill()",
    JOBS: "client.jobhistory_list()",
}


@dataclass(frozen=True)
class NextStep:
    """One thing the user can do next, e.g. NextStep(LOG, 12, "to see the full log")."""

    action: str
    ref: int | str | None = None
    why: str = ""

    def phrase(self, commands: Commands) -> str:
        command = commands[self.action].format(ref=self.ref if self.ref is not None else "")
        return f"`{command}` {self.why}".rstrip()


def phrase_steps(steps: Sequence[NextStep], commands: Commands) -> str:
    """The next steps as one sentence, e.g. "Run `linkis-kernel log 12` to see the full log."."""
    if not steps:
        return ""
    return "Run " + ", or ".join(step.phrase(commands) for step in steps) + "."


class LinkisError(Exception):
    """Base class: a Linkis call or job did not succeed.

    `status` is the envelope status (None when no envelope was read), `message` the server's (or
    the client's) own text, `method` the HTTP method, `http_status` the HTTP code, `url` the
    request URL without secrets, `error_code`/`stack` the Linkis `data.errorMsg.errCode` and
    `data.stack` when the server sent them.
    """

    hint = ""
    next_steps: tuple[NextStep, ...] = ()
    commands: Commands = PYTHON_COMMANDS  # a front end sets its own before showing the error

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        http_status: int | None = None,
        url: str | None = None,
        error_code: int | None = None,
        stack: str | None = None,
        hint: str | None = None,
        next_steps: Sequence[NextStep] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.method = method
        self.http_status = http_status
        self.url = url
        self.error_code = error_code
        self.stack = stack
        if hint is not None:
            self.hint = hint
        if next_steps:
            self.next_steps = tuple(next_steps)

    def __str__(self) -> str:
        return self.describe(self.commands)

    def describe(self, commands: Commands) -> str:
        """The error as a sentence or two, its next steps phrased in `commands`."""
        where = f"{self.method} {self.url}: " if self.method and self.url else ""
        details = []
        if self.http_status is not None:
            details.append(f"HTTP {self.http_status}")
        if self.error_code:
            details.append(f"Linkis error code {self.error_code}")
        suffix = f" ({', '.join(details)})" if details else ""
        text = f"{where}{self.message.rstrip('.!！ ')}{suffix}."
        return join_parts(text, self.hint, phrase_steps(self.next_steps, commands))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple:
        # Subclasses take keyword-only arguments, so rebuild from the attributes instead.
        return _rebuild, (type(self), self.__dict__.copy())


_LOG_PREFIX = re.compile(
    r"^\s*\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?\s+(?:ERROR|WARN|INFO)?\s*"
)


def log_message(line: str) -> str:
    """A Linkis log line without its timestamp and level: what it says."""
    return _LOG_PREFIX.sub("", line).strip()


def join_parts(*parts: str) -> str:
    """Non-empty sentences joined by a space."""
    return " ".join(part for part in parts if part)


def _rebuild(cls: type[LinkisError], state: dict[str, Any]) -> LinkisError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class LinkisAuthError(LinkisError):
    """Not logged in, session expired for good, or credentials refused (status -1 / HTTP 401)."""

    hint = "Check LINKIS_USER and LINKIS_PASSWORD, or LINKIS_TOKEN."


class LinkisPermissionError(LinkisError):
    """The user may not do this (status 3 / HTTP 403, or a 'no permission' answer)."""

    hint = "Your Linkis user may not do this: use your own jobs and paths, or ask a Linkis admin."


class LinkisValidationError(LinkisError):
    """The request was refused as invalid (status 2 / HTTP 412), or a bad client-side argument."""

    hint = "Fix the argument named above and try again."


class LinkisNotFoundError(LinkisError):
    """The job, task or path is unknown to the server (or no longer held by the entrance)."""

    hint = "Check the id or path."
    next_steps = (NextStep(JOBS, why="to list your jobs"),)


class LinkisJobNotFoundError(LinkisNotFoundError):
    """No job with this task or exec id is visible to the user: there is none, or it is
    another user's (Linkis does not say which)."""

    def __init__(self, ref: int | str) -> None:
        self.ref = ref
        super().__init__(f"No Linkis job {ref} is visible to you")

    def describe(self, commands: Commands) -> str:
        return f"No Linkis job {self.ref} is visible to you; `{commands[JOBS]}` lists yours."


class LinkisServerError(LinkisError):
    """The server reported a failure (status 1 or HTTP 5xx with a Linkis envelope)."""

    hint = "See the server message above; retry once the cause is fixed."


class LinkisTransportError(LinkisError):
    """No usable Linkis answer: connection error, timeout, or a body that is not Linkis JSON.

    `excerpt` holds the first characters of a non-JSON body (HTML tags stripped), `reason` why
    no answer came, in words (e.g. `connection refused`).
    """

    hint = "Check that the Linkis gateway is running and LINKIS_URL points at it, then retry."

    def __init__(
        self, message: str, *, excerpt: str | None = None, reason: str | None = None, **kwargs
    ) -> None:
        super().__init__(message, **kwargs)
        self.excerpt = excerpt
        self.reason = reason


class LinkisSubmitUncertainError(LinkisTransportError):
    """A submit was sent but its answer was lost: the job may or may not exist on the server."""

    hint = "The job may have been created anyway: look for it before submitting again."
    next_steps = (NextStep(JOBS, why="to list your jobs"),)


class LinkisJobError(LinkisError):
    """A job ended Failed, Cancelled or Timeout."""

    def __init__(
        self,
        *,
        task_id: int | None,
        exec_id: str | None,
        state: str,
        err_code: int | None = None,
        err_desc: str | None = None,
        error_lines: Sequence[str] = (),
    ) -> None:
        self.task_id = task_id
        self.exec_id = exec_id
        self.state = state
        self.err_code = err_code
        self.err_desc = err_desc
        self.error_lines = list(error_lines)
        ref = task_id if task_id is not None else exec_id
        super().__init__(
            self._what(),
            error_code=err_code,
            next_steps=(NextStep(LOG, ref, "to see the full log"),),
        )

    def _what(self) -> str:
        job = f"Linkis job {self.task_id}" if self.task_id is not None else "Linkis job"
        return f"{job} ended {self.state}"

    def describe(self, commands: Commands) -> str:
        text = self._what()
        if self.err_code or self.err_desc:
            text += f": errCode {self.err_code}, {(self.err_desc or 'no description').rstrip('.')}"
        if self.error_lines and not self.err_desc:
            text += f". Last error: {log_message(self.error_lines[-1]).rstrip('.')}"
        return join_parts(f"{text}.", phrase_steps(self.next_steps, commands))

    def reason_lines(self) -> list[str]:
        """Why the job failed, as lines: errCode and errDesc, else the last ERROR lines without
        their timestamps (so the message shows once, not again as log lines)."""
        code = f"errCode {self.err_code}" if self.err_code else ""
        if self.err_desc:
            first, *more = self.err_desc.strip().splitlines() or [""]
            return [f"{code}: {first}" if code else first, *more]
        return [line for line in (code, *map(log_message, self.error_lines[-5:])) if line]

    def traceback_lines(self, commands: Commands) -> list[str]:
        """Short rendering: what failed, why, the next step."""
        reasons = [f"  {line}".rstrip() for line in self.reason_lines()]
        return [
            f"LinkisJobError: {self._what()}",
            *reasons,
            f"  {phrase_steps(self.next_steps, commands)}",
        ]

    def _render_traceback_(self) -> list[str]:
        return self.traceback_lines(self.commands)


class LinkisTimeoutError(LinkisError):
    """A client-side wait limit ran out; the job itself keeps running."""

    def __init__(
        self,
        *,
        task_id: int | None,
        exec_id: str | None,
        waited_s: float,
        state: str | None = None,
    ) -> None:
        self.task_id = task_id
        self.exec_id = exec_id
        self.waited_s = waited_s
        self.state = state
        ref = task_id if task_id is not None else exec_id
        super().__init__(
            f"Stopped waiting for Linkis job {task_id} after {waited_s:g} s",
            next_steps=(NextStep(ATTACH, ref, "to re-attach"), NextStep(KILL, ref, "to kill it")),
        )

    def describe(self, commands: Commands) -> str:
        state = f" (state {self.state})" if self.state else ""
        return join_parts(
            f"{self.message}; the job is still running on the server{state}.",
            phrase_steps(self.next_steps, commands),
        )
