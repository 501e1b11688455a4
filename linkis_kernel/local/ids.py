"""Linkis job identifiers: short exec ids, full execIDs and their parsing
(docs/linkis-rest.md, "Exec ids").
"""

from __future__ import annotations

from dataclasses import dataclass

from ..wire import ENTRANCE_APPLICATION, EXEC_ID_PREFIX
from .errors import OPERATION_FAILED, ServiceError

# PKG catchMsg wording for an exception without a Linkis error code.
_AOP_FAILURE = OPERATION_FAILED + "{}"


@dataclass(frozen=True)
class ShortId:
    """`<creator>_<user>_<engineType>_<index>`: the scheduler event id inside an execID."""

    group: str
    index: int

    def __str__(self) -> str:
        return f"{self.group}_{self.index}"


def group_name(creator: str, user: str, engine_type: str) -> str:
    """The entrance group a job is scheduled in: creator_user_engineType (no version)."""
    return f"{creator}_{user}_{engine_type}"


def full_exec_id(instance: str, short_id: str) -> str:
    """The execID the entrance hands out: prefix, two 3-digit lengths, application, instance."""
    return (
        f"{EXEC_ID_PREFIX}{len(ENTRANCE_APPLICATION):03d}{len(instance):03d}"
        f"{ENTRANCE_APPLICATION}{instance}{short_id}"
    )


def _number(text: str) -> int:
    if not text.isdecimal():
        reason = f'NumberFormatException: For input string: "{text}"'
        raise ServiceError(_AOP_FAILURE.format(reason))
    return int(text)


def parse_exec_id(exec_id: str) -> tuple[str, ShortId]:
    """Split a full execID into (instance, short id); malformed ids fail as Linkis does."""
    if not exec_id.startswith(EXEC_ID_PREFIX):
        raise ServiceError(
            _AOP_FAILURE.format(f"IllegalArgumentException: {exec_id} is not an execID")
        )
    rest = exec_id[len(EXEC_ID_PREFIX) :]
    app_len = _number(rest[0:3])
    inst_len = _number(rest[3:6])
    body = rest[6:]
    if len(body) <= app_len + inst_len:
        raise ServiceError(
            _AOP_FAILURE.format(
                f"StringIndexOutOfBoundsException: execID {exec_id} is shorter than its lengths say"
            )
        )
    instance = body[app_len : app_len + inst_len]
    return instance, parse_short_id(body[app_len + inst_len :])


def parse_short_id(short_id: str) -> ShortId:
    """`IDE_hadoop_spark_3` -> ShortId("IDE_hadoop_spark", 3)."""
    group, sep, index = short_id.rpartition("_")
    if not sep or not group:
        raise ServiceError(
            _AOP_FAILURE.format(f"IllegalArgumentException: {short_id} is not a job id")
        )
    return ShortId(group, _number(index))
