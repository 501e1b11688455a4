"""The one exception the embedded server's parts raise to answer a request with a Linkis error."""

from __future__ import annotations

from ..wire import STATUS_ERROR, STATUS_NO_PERMISSION

OPERATION_FAILED = "operation failed(操作失败)s！the reason(原因)："
"""How the Linkis services prefix an exception they caught (their aspect's message)."""


class ServiceError(Exception):
    """A Linkis-shaped error: envelope `status` (HTTP code follows from it) and `message`.

    `code` is the Linkis error code when there is one; the message is then formatted as the
    Linkis services do (`error code(错误码): <code>, error message(错误信息): <desc>.`).
    """

    def __init__(self, message: str, *, status: int = STATUS_ERROR, code: int | None = None):
        self.status = status
        self.code = code
        self.desc = message
        if code is not None:
            message = f"error code(错误码): {code}, error message(错误信息): {message}."
        super().__init__(message)
        self.message = message


def no_permission(job_id: object) -> ServiceError:
    """The refusal of a job (or task) that another user owns; it does not say whose it is."""
    return ServiceError(
        f"No job {job_id} of yours: you can only access your own jobs (jobhistory/list lists them)",
        status=STATUS_NO_PERMISSION,
    )
