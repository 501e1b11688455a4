"""`entrance/submit` bodies for tests, built by the project's own `build_submit_body`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from linkis_kernel import wire
from linkis_kernel.job import build_submit_body

# Minutes of DuckDB work (a cross join): only a kill ends it, and the kill interrupts it at once.
LONG_SQL = (
    "select count(*) from range(100000) a, range(100000) b where (a.range * 7 + b.range) % 11 = 3"
)


def engine_label(engine: str) -> str:
    """`spark` -> `spark-3.2.1` (Linkis's default version); a label with a version, or an engine
    without a known default, stays as given."""
    version = wire.DEFAULT_ENGINE_VERSIONS.get(engine)
    return f"{engine}-{version}" if version and "-" not in engine else engine


def submit_body(
    code: str,
    *,
    user: str | None = None,
    engine: str = "spark",
    run_type: str = "sql",
    creator: str = wire.DEFAULT_CREATOR,
    variables: Mapping[str, Any] | None = None,
    labels: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The body `Job` submission sends for `code`. Without `user` there is no `userCreator`
    (the server takes the login user); `labels` override the computed ones; `extra` adds or
    replaces top-level keys."""
    body = build_submit_body(
        code,
        engine_label=engine_label(engine),
        run_type=run_type,
        user_creator=f"{user}-{creator}" if user else None,
        variables=variables,
        labels=labels,
    )
    return {**body, **extra}
