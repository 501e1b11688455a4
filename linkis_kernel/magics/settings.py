"""The rules every `LinkisMagics` setting is checked against when it is set (`%config`,
ipython_config.py, the kernel): a value outside them raises a TraitError that names the setting
and what it accepts, and the setting keeps its old value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from traitlets import TraitError

if TYPE_CHECKING:
    from .magic import LinkisMagics

MIN_POLL_INTERVAL = 0.05  # seconds; below this a wait would hammer the gateway

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ENGINE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(-[A-Za-z0-9_.]+)?")
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # a run type, a bare engine
CREATOR = re.compile(r"[A-Za-z0-9_]{1,64}")  # what Linkis accepts in a userCreator label
VERSION = re.compile(r"[A-Za-z0-9_.]+")

Rule = Callable[["LinkisMagics", Any], "str | None"]
"""A check of one setting's new value: None when it is fine, else what the setting accepts."""


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _shown(value: Any) -> str:
    """The rejected value as the user typed it: `0`, not `0.0`."""
    return f"{value:g}" if isinstance(value, float) else repr(value)


def _poll_interval(settings: LinkisMagics, value: float) -> str | None:
    if value < MIN_POLL_INTERVAL:
        return f"must be at least {_seconds(MIN_POLL_INTERVAL)}"
    longest = settings.poll_max_interval
    if value > longest:
        return f"must be at most LinkisMagics.poll_max_interval, now {_seconds(longest)}"
    return None


def _poll_max_interval(settings: LinkisMagics, value: float) -> str | None:
    shortest = settings.poll_interval
    if value < shortest:
        return f"must be at least LinkisMagics.poll_interval, now {_seconds(shortest)}"
    return None


def _stale_after(settings: LinkisMagics, value: float) -> str | None:
    return None if value > 0 else "must be more than 0 s"


def _row_limit(what: str) -> Rule:
    def check(settings: LinkisMagics, value: int | None) -> str | None:
        if value is None or value >= 0:
            return None
        return f"must be a row count of 0 or more, or None (0 and None: {what} every row)"

    return check


def _matching(pattern: re.Pattern[str], accepts: str) -> Rule:
    """Text that matches `pattern` whole; None and '' leave the setting to its fallback."""

    def check(settings: LinkisMagics, value: str | None) -> str | None:
        if not value or pattern.fullmatch(value):
            return None
        return f"must be {accepts}"

    return check


def _url(settings: LinkisMagics, value: str | None) -> str | None:
    if not value or value.startswith(("http://", "https://")):
        return None
    return "must be an http:// or https:// URL, or None for LINKIS_URL (else embedded)"


def _engine_versions(settings: LinkisMagics, value: Mapping[Any, Any]) -> str | None:
    if all(
        isinstance(engine, str)
        and NAME.fullmatch(engine)
        and isinstance(version, str)
        and VERSION.fullmatch(version)
        for engine, version in value.items()
    ):
        return None
    return "must map bare engine names to versions as text, e.g. {'spark': '3.2.1'}"


RULES: dict[str, Rule] = {
    "url": _url,
    "user": _matching(re.compile(r"\S+"), "a user name without spaces, or None for LINKIS_USER"),
    "token_env": _matching(
        ENV_NAME, "an environment variable name such as LINKIS_TOKEN, or '' for no token"
    ),
    "engine": _matching(
        ENGINE, "an engine, bare or with its version (spark, spark-3.2.1), or None for the default"
    ),
    "run_type": _matching(NAME, "a run type such as sql, hql, py, shell, or None"),
    "creator": _matching(
        CREATOR, "a creator label of up to 64 letters, digits and _, or None for the default"
    ),
    "engine_versions": _engine_versions,
    "fetch_limit": _row_limit("fetch"),
    "display_limit": _row_limit("show"),
    "poll_interval": _poll_interval,
    "poll_max_interval": _poll_max_interval,
    "stale_after": _stale_after,
}
"""The rule of each setting that the trait's type alone does not enforce."""


def checked(settings: LinkisMagics, name: str, value: Any) -> Any:
    """`value` if setting `name` may take it; else a TraitError such as
    "LinkisMagics.poll_interval must be at least 0.05 s (got 0)"."""
    not_a_number = isinstance(value, float) and math.isnan(value)
    problem = "must be a number" if not_a_number else RULES[name](settings, value)
    if problem is not None:
        raise TraitError(f"{type(settings).__name__}.{name} {problem} (got {_shown(value)})")
    return value
