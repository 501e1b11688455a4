"""How Linkis errors reach a cell: one short error output, not a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..client import LinkisError, LinkisJobError
from ..display import LinkisCellError


@contextmanager
def short_errors(*also: type[Exception]) -> Iterator[None]:
    """Connection, auth and server errors (and the `also` types) become one short error
    output, not a traceback. A failed job's LinkisJobError already renders short."""
    try:
        yield
    except LinkisJobError:
        raise
    except (LinkisError, *also) as exc:
        raise LinkisCellError(f"{type(exc).__name__}: {exc}") from None
