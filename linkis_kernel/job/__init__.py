"""The job handle: submit -> poll -> stream -> finish, one state machine for every front end.

The notebook magics, the wrapper kernel, `linkis-kernel run` and the Python API all drive a
`Job`: `wait()` polls status, progress and log together with an adaptive interval, survives
the entrance forgetting the job and short network failures, kills the job on Ctrl-C, and hands
`Snapshot`s to whoever displays them. Results are read by `results.py`.
"""

from __future__ import annotations

from ..client import ResourceUsage, StageProgress
from .client import LinkisClient
from .clock import SYSTEM_CLOCK, Clock, SystemClock
from .handle import Job, KillReport
from .interrupts import interrupt_held
from .outputs import DOWNLOAD_FORMATS, JobResults, download_format
from .snapshot import WAITING_STATES, Snapshot, clamp_progress, queue_position
from .submit import (
    DEFAULT_RUN_TYPES,
    DEFAULT_SOURCE,
    OPTION_ENGINE,
    OPTION_RUN_TYPE,
    NoDefaultRunTypeError,
    UnknownEngineError,
    build_submit_body,
    default_run_type,
    expand_engine,
)

__all__ = [
    "DEFAULT_RUN_TYPES",
    "DEFAULT_SOURCE",
    "DOWNLOAD_FORMATS",
    "OPTION_ENGINE",
    "OPTION_RUN_TYPE",
    "SYSTEM_CLOCK",
    "WAITING_STATES",
    "Clock",
    "Job",
    "JobResults",
    "KillReport",
    "LinkisClient",
    "NoDefaultRunTypeError",
    "ResourceUsage",
    "Snapshot",
    "StageProgress",
    "SystemClock",
    "UnknownEngineError",
    "build_submit_body",
    "clamp_progress",
    "default_run_type",
    "download_format",
    "expand_engine",
    "interrupt_held",
    "queue_position",
]
