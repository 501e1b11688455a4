"""What a submit sends: the engine label, the run type and the `entrance/submit` body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The run type a bare engine gets when none is given.
DEFAULT_RUN_TYPES = {
    "spark": "sql",
    "hive": "hql",
    "jdbc": "sql",
    "presto": "sql",
    "trino": "sql",
    "duckdb": "sql",
    "python": "python",
    "shell": "shell",
}
DEFAULT_SOURCE = {"scriptPath": "linkis-kernel"}


def expand_engine(engine: str, versions: Mapping[str, str]) -> str:
    """`spark` -> `spark-3.2.1` (the configured default version); `spark-2.4.3` stays as given."""
    engine = engine.strip()
    if "-" in engine:
        return engine
    if engine not in versions:
        raise ValueError(
            f"No default version is known for engine {engine!r}: pass it with its version, "
            f"e.g. engine='{engine}-1', or add it to client.engine_versions."
        )
    return f"{engine}-{versions[engine]}"


def default_run_type(engine_label: str) -> str:
    """The usual run type of an engine (`spark-3.2.1` -> `sql`, `hive` -> `hql`)."""
    engine_type = engine_label.split("-", 1)[0]
    if engine_type not in DEFAULT_RUN_TYPES:
        raise ValueError(
            f"No default run type is known for engine {engine_type!r}: pass run_type=, "
            f"e.g. run_type='sql'."
        )
    return DEFAULT_RUN_TYPES[engine_type]


def build_submit_body(
    code: str,
    *,
    engine_label: str,
    run_type: str,
    user_creator: str | None,
    variables: Mapping[str, Any] | None = None,
    runtime: Mapping[str, Any] | None = None,
    startup: Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
    labels: Mapping[str, Any] | None = None,
) -> dict:
    """The `entrance/submit` body (docs/linkis-rest.md, "Submit"); extra `labels` override the
    computed ones.

    Without a user (no credentials) `userCreator` is left out and Linkis picks the login user.
    """
    computed = {"engineType": engine_label, "userCreator": user_creator, "codeType": run_type}
    return {
        "executionContent": {"code": code, "runType": run_type},
        "params": {
            "variable": dict(variables or {}),
            "configuration": {"startup": dict(startup or {}), "runtime": dict(runtime or {})},
        },
        "labels": {**{k: v for k, v in computed.items() if v}, **(labels or {})},
        "source": dict(DEFAULT_SOURCE if source is None else source),
    }
