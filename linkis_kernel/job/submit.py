"""What a submit sends: the engine label, the run type and the `entrance/submit` body."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
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

PYTHON_ENGINE = "engine='{}'"
PYTHON_RUN_TYPE = "run_type='{}'"
# The `%%linkis` magic and `linkis-kernel run` share these options.
OPTION_ENGINE = "`-e {}`"
OPTION_RUN_TYPE = "`-t {}`"


class UnknownEngineError(ValueError):
    """A bare engine name with no known version: most often a typo.

    `known` are the engines a bare name may be (those with a default version), `closest` the
    likeliest one meant (None when none is close). `describe` words it for a front end."""

    def __init__(self, engine: str, known: Iterable[str]) -> None:
        self.engine = engine
        self.known = tuple(sorted(known))
        matches = difflib.get_close_matches(engine.lower(), self.known, n=1, cutoff=0.6)
        self.closest = matches[0] if matches else None
        super().__init__(self.describe(PYTHON_ENGINE))

    def describe(self, spelling: str) -> str:
        """The error with engines spelt as a front end passes them, e.g. `-e {}` or
        `engine='{}'`."""
        known = f"Known engines: {', '.join(self.known)}."
        if self.closest:
            guess = spelling.format(self.closest)
            return f"Unknown engine {self.engine!r}: did you mean {guess}? {known}"
        versioned = spelling.format(f"{self.engine}-VERSION")
        return (
            f"Unknown engine {self.engine!r}. {known} "
            f"An engine not listed needs its version: {versioned}."
        )


class NoDefaultRunTypeError(ValueError):
    """An engine whose usual run type is not known, run without naming one."""

    def __init__(self, engine_type: str) -> None:
        self.engine_type = engine_type
        super().__init__(self.describe(PYTHON_RUN_TYPE))

    def describe(self, spelling: str) -> str:
        """The error with the run type spelt as a front end passes it, e.g. `-t {}`."""
        return (
            f"No default run type is known for engine {self.engine_type!r}: name one, "
            f"e.g. {spelling.format('sql')}."
        )


def expand_engine(engine: str, versions: Mapping[str, str]) -> str:
    """`spark` -> `spark-3.2.1` (the configured default version); `spark-2.4.3` stays as given.

    A bare name with no default version raises UnknownEngineError."""
    engine = engine.strip()
    if "-" in engine:
        return engine
    if engine not in versions:
        raise UnknownEngineError(engine, versions)
    return f"{engine}-{versions[engine]}"


def default_run_type(engine_label: str) -> str:
    """The usual run type of an engine (`spark-3.2.1` -> `sql`, `hive` -> `hql`)."""
    engine_type = engine_label.split("-", 1)[0]
    if engine_type not in DEFAULT_RUN_TYPES:
        raise NoDefaultRunTypeError(engine_type)
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
