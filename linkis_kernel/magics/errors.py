"""How Linkis errors read in a cell: short, with next steps as `%linkis` commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..client import (
    ATTACH,
    JOBS,
    KILL,
    LOG,
    Commands,
    LinkisAuthError,
    LinkisError,
    LinkisJobError,
    LinkisJobNotFoundError,
    LinkisTransportError,
)
from ..display import LinkisCellError
from ..job import OPTION_ENGINE, OPTION_RUN_TYPE, NoDefaultRunTypeError, UnknownEngineError

MAGIC_COMMANDS: Commands = {
    LOG: "%linkis log {ref}",
    ATTACH: "%linkis attach {ref}",
    KILL: "%linkis kill {ref}",
    JOBS: "%linkis jobs",
}
"""How the magics and the kernel spell a next step, e.g. `%linkis log 12`."""


def magic_command(action: str, ref: int | str | None = None) -> str:
    """One next step as a notebook command, e.g. `%linkis attach 12`."""
    return MAGIC_COMMANDS[action].format(ref="" if ref is None else ref)


def describe(error: Exception) -> str:
    """An error as one line of the notebook: Linkis errors with `%linkis` next steps."""
    return error.describe(MAGIC_COMMANDS) if isinstance(error, LinkisError) else str(error)


def connection_problem(url: str, error: LinkisError, *, user: str | None, auth: str) -> str:
    """Why `%linkis connect` could not connect to `url`: nothing answers, not a Linkis
    gateway, or the credentials (`auth`: token, password or none) were refused."""
    if isinstance(error, LinkisAuthError):
        if auth == "none":
            return (
                f"the Linkis gateway at {url} wants a login: add `--user NAME` (a password is "
                f"then asked for), or set LINKIS_USER with LINKIS_TOKEN or LINKIS_PASSWORD."
            )
        return f"the Linkis gateway at {url} refused the {auth} of user {user!r}. {error.hint}"
    if isinstance(error, LinkisTransportError) and error.http_status is None:
        return (
            f"nothing answers at {url} ({error.reason or error.message}). Check the address "
            f"and that the gateway runs."
        )
    if isinstance(error, LinkisTransportError):
        answer = f"HTTP {error.http_status}" + (f": {error.excerpt}" if error.excerpt else "")
        return (
            f"{url} answered, but not as a Linkis gateway ({answer}). Give the gateway's "
            f"address, e.g. http://gateway:9001."
        )
    return describe(error)


@contextmanager
def short_errors(*also: type[Exception]) -> Iterator[None]:
    """Connection, auth and server errors (and the `also` types) become one short error
    output, not a traceback; a failed job's LinkisJobError renders short by itself. Next
    steps read as `%linkis` commands."""
    caught: tuple[type[Exception], ...] = (LinkisError, *also)
    try:
        yield
    except LinkisJobError as error:  # renders short by itself, in notebook commands
        error.commands = MAGIC_COMMANDS
        raise error from None
    except LinkisJobNotFoundError as error:  # a sentence of its own, no class name needed
        raise LinkisCellError(describe(error)) from None
    except caught as error:
        raise LinkisCellError(f"{type(error).__name__}: {describe(error)}") from None


@contextmanager
def engine_errors() -> Iterator[None]:
    """An engine or run type the job layer does not know, worded as the cell's options
    (`-e spark`, `-t sql`)."""
    try:
        yield
    except UnknownEngineError as error:
        raise LinkisCellError(error.describe(OPTION_ENGINE)) from None
    except NoDefaultRunTypeError as error:
        raise LinkisCellError(error.describe(OPTION_RUN_TYPE)) from None
