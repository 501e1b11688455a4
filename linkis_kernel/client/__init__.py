"""The Linkis REST client: HTTP, auth, envelope -> exceptions, one method per endpoint.

No IPython, no ipywidgets, no pandas here; the job layer (`linkis_kernel.job`) builds on this.
"""

from __future__ import annotations

from .errors import (
    LinkisAuthError,
    LinkisError,
    LinkisJobError,
    LinkisNotFoundError,
    LinkisPermissionError,
    LinkisServerError,
    LinkisSubmitUncertainError,
    LinkisTimeoutError,
    LinkisTransportError,
    LinkisValidationError,
)
from .models import (
    Column,
    ColumnInfo,
    DirTree,
    FilePage,
    JobStatus,
    LogChunk,
    LoginInfo,
    Progress,
    ResourceUsage,
    StageProgress,
    SubmitResult,
    TableInfo,
    TaskInfo,
    TaskPage,
)
from .rest import EMBEDDED_NOTE, LinkisRestClient

__all__ = [
    "EMBEDDED_NOTE",
    "Column",
    "ColumnInfo",
    "DirTree",
    "FilePage",
    "JobStatus",
    "LinkisAuthError",
    "LinkisError",
    "LinkisJobError",
    "LinkisNotFoundError",
    "LinkisPermissionError",
    "LinkisRestClient",
    "LinkisServerError",
    "LinkisSubmitUncertainError",
    "LinkisTimeoutError",
    "LinkisTransportError",
    "LinkisValidationError",
    "LogChunk",
    "LoginInfo",
    "Progress",
    "ResourceUsage",
    "StageProgress",
    "SubmitResult",
    "TableInfo",
    "TaskInfo",
    "TaskPage",
]
