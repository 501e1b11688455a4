"""Exceptions raised by the Linkis client and the job layer built on it.

Every exception renders as one or two plain sentences: what went wrong and what to do next.
Messages that came from the server are scrubbed of secrets before they get here.
"""

from __future__ import annotations

from collections.abc import Sequence


class LinkisError(Exception):
    """Base class: a Linkis call or job did not succeed.

    `status` is the envelope status (None when no envelope was read), `message` the server's (or
    the client's) own text, `method` the HTTP method, `http_status` the HTTP code, `url` the
    request URL without secrets, `error_code`/`stack` the Linkis `data.errorMsg.errCode` and
    `data.stack` when the server sent them.
    """

    hint = ""

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

    def __str__(self) -> str:
        where = f"{self.method} {self.url}: " if self.method and self.url else ""
        details = []
        if self.http_status is not None:
            details.append(f"HTTP {self.http_status}")
        if self.error_code:
            details.append(f"Linkis error code {self.error_code}")
        suffix = f" ({', '.join(details)})" if details else ""
        text = f"{where}{self.message.rstrip('.!！ ')}{suffix}."
        return f"{text} {self.hint}" if self.hint else text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple:
        # Subclasses take keyword-only arguments, so rebuild from the attributes instead.
        return _rebuild, (type(self), self.__dict__.copy())


def _rebuild(cls: type[LinkisError], state: dict) -> LinkisError:
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

    hint = "Check the id or path; finished jobs can be looked up with jobhistory_get(task_id)."


class LinkisServerError(LinkisError):
    """The server reported a failure (status 1 or HTTP 5xx with a Linkis envelope)."""

    hint = "See the server message above; retry once the cause is fixed."


class LinkisTransportError(LinkisError):
    """No usable Linkis answer: connection error, timeout, or a body that is not Linkis JSON.

    `excerpt` holds the first characters of a non-JSON body (HTML tags stripped).
    """

    hint = "Check that the Linkis gateway is running and LINKIS_URL points at it, then retry."

    def __init__(self, message: str, *, excerpt: str | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.excerpt = excerpt


class LinkisSubmitUncertainError(LinkisTransportError):
    """A submit was sent but its answer was lost: the job may or may not exist on the server."""

    hint = (
        "The job may have been created anyway: look for it with `%linkis jobs` "
        "(jobhistory/list, client.jobhistory_list()) before submitting again."
    )


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
        super().__init__(self._what(), error_code=err_code)

    def _what(self) -> str:
        job = f"Linkis job {self.task_id}" if self.task_id is not None else "Linkis job"
        return f"{job} ended {self.state}"

    def _see_more(self) -> str:
        ref = self.task_id if self.task_id is not None else self.exec_id
        return f"See the full log with `%linkis log {ref}`."

    def __str__(self) -> str:
        text = self._what()
        if self.err_code or self.err_desc:
            text += f": errCode {self.err_code}, {(self.err_desc or 'no description').rstrip('.')}"
        if self.error_lines:
            text += f". Last error: {self.error_lines[-1].strip().rstrip('.')}"
        return f"{text}. {self._see_more()}"

    def _render_traceback_(self) -> list[str]:
        """Short IPython rendering: what failed, errCode/errDesc, last ERROR lines, next step."""
        lines = [f"LinkisJobError: {self._what()}"]
        if self.exec_id:
            lines.append(f"  exec id: {self.exec_id}")
        if self.err_code or self.err_desc:
            lines.append(f"  errCode {self.err_code}: {self.err_desc or ''}".rstrip())
        lines.extend(f"  {line}" for line in self.error_lines[-5:])
        lines.append(f"  {self._see_more()}")
        return lines


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
        super().__init__(f"Stopped waiting for Linkis job {task_id} after {waited_s:g} s")

    def __str__(self) -> str:
        state = f" (state {self.state})" if self.state else ""
        ref = self.task_id if self.task_id is not None else self.exec_id
        return (
            f"{self.message}; the job is still running on the server{state}. "
            f"Re-attach with `%linkis attach {ref}` (or `client.job({ref})`), or kill it with "
            f"`%linkis kill {ref}`."
        )
