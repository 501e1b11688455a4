"""Every LinkisMagics setting refuses values outside its range, through `%config` in a real
IPython shell: the error names the setting and what it accepts, and the old value stays."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from support.shells import extension_loaded

from linkis_kernel.magics import LinkisMagics, linkis_magics


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    """A plain IPython shell with the extension freshly loaded (default settings)."""
    with extension_loaded() as ip:
        yield ip


def config(ip: InteractiveShell, caplog: pytest.LogCaptureFixture, statement: str) -> list[str]:
    """Run `%config <statement>`; the errors IPython logged for it."""
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        result = ip.run_cell(f"%config {statement}")
    assert result.error_in_exec is None
    return [record.getMessage() for record in caplog.records]


def magics_of(ip: InteractiveShell) -> LinkisMagics:
    return linkis_magics(ip)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("poll_interval", "0", "LinkisMagics.poll_interval must be at least 0.05 s (got 0)"),
        ("poll_interval", "-1", "LinkisMagics.poll_interval must be at least 0.05 s (got -1)"),
        (
            "poll_interval",
            "5",
            "LinkisMagics.poll_interval must be at most LinkisMagics.poll_max_interval, "
            "now 2 s (got 5)",
        ),
        ("poll_interval", "float('nan')", "LinkisMagics.poll_interval must be a number (got nan)"),
        (
            "poll_max_interval",
            "0.05",
            "LinkisMagics.poll_max_interval must be at least LinkisMagics.poll_interval, "
            "now 0.1 s (got 0.05)",
        ),
        ("stale_after", "0", "LinkisMagics.stale_after must be more than 0 s (got 0)"),
        (
            "fetch_limit",
            "-1",
            "LinkisMagics.fetch_limit must be a row count of 0 or more, or None "
            "(0 and None: fetch every row) (got -1)",
        ),
        (
            "display_limit",
            "-5",
            "LinkisMagics.display_limit must be a row count of 0 or more, or None "
            "(0 and None: show every row) (got -5)",
        ),
        (
            "url",
            "'gateway:9001'",
            "LinkisMagics.url must be an http:// or https:// URL, or None for LINKIS_URL "
            "(else embedded) (got 'gateway:9001')",
        ),
        (
            "user",
            "'al ice'",
            "LinkisMagics.user must be a user name without spaces, or None for LINKIS_USER "
            "(got 'al ice')",
        ),
        (
            "token_env",
            "'MY TOKEN'",
            "LinkisMagics.token_env must be an environment variable name such as LINKIS_TOKEN, "
            "or '' for no token (got 'MY TOKEN')",
        ),
        (
            "engine",
            "'spark 3'",
            "LinkisMagics.engine must be an engine, bare or with its version (spark, "
            "spark-3.2.1), or None for the default (got 'spark 3')",
        ),
        (
            "run_type",
            "'s q l'",
            "LinkisMagics.run_type must be a run type such as sql, hql, py, shell, or None "
            "(got 's q l')",
        ),
        (
            "creator",
            "'my-app'",
            "LinkisMagics.creator must be a creator label of up to 64 letters, digits and _, "
            "or None for the default (got 'my-app')",
        ),
        (
            "engine_versions",
            "{'spark-3': '3.2.1'}",
            "LinkisMagics.engine_versions must map bare engine names to versions as text, "
            "e.g. {'spark': '3.2.1'} (got {'spark-3': '3.2.1'})",
        ),
        (
            "engine_versions",
            "{'spark': 3}",
            "LinkisMagics.engine_versions must map bare engine names to versions as text, "
            "e.g. {'spark': '3.2.1'} (got {'spark': 3})",
        ),
    ],
)
def test_a_value_out_of_range_is_refused_and_the_old_one_stays(
    shell: InteractiveShell,
    caplog: pytest.LogCaptureFixture,
    name: str,
    value: str,
    message: str,
) -> None:
    magics = magics_of(shell)
    old = getattr(magics, name)
    assert config(shell, caplog, f"LinkisMagics.{name} = {value}") == [message]
    assert getattr(magics, name) == old


def test_enums_and_types_are_refused_with_what_they_accept(
    shell: InteractiveShell, caplog: pytest.LogCaptureFixture
) -> None:
    magics = magics_of(shell)
    (error,) = config(shell, caplog, "LinkisMagics.progress = 'bars'")
    assert "['auto', 'widget', 'text', 'none']" in error and "'bars'" in error
    (error,) = config(shell, caplog, "LinkisMagics.kill_on_interrupt = 'sometimes'")
    assert "kill_on_interrupt" in error
    assert magics.progress == "auto" and magics.kill_on_interrupt is True


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("fetch_limit", "None", None),
        ("fetch_limit", "0", 0),
        ("display_limit", "0", 0),
        ("poll_interval", "0.05", 0.05),
        ("poll_max_interval", "0.1", 0.1),
        ("stale_after", "0.5", 0.5),
        ("url", "'https://gateway:9001'", "https://gateway:9001"),
        ("url", "None", None),
        ("token_env", "''", ""),
        ("engine", "'python-python2'", "python-python2"),
        ("engine", "'io_file-1.0'", "io_file-1.0"),
        ("run_type", "'py'", "py"),
        ("creator", "'nightly_2'", "nightly_2"),
        ("engine_versions", "{'spark': '2.4.3', 'io_file': '1.0'}", None),
    ],
)
def test_values_in_range_are_taken(
    shell: InteractiveShell,
    caplog: pytest.LogCaptureFixture,
    name: str,
    value: str,
    expected: Any,
) -> None:
    assert config(shell, caplog, f"LinkisMagics.{name} = {value}") == []
    if expected is not None or value == "None":
        assert getattr(magics_of(shell), name) == expected


def test_poll_intervals_move_together_in_the_right_order(
    shell: InteractiveShell, caplog: pytest.LogCaptureFixture
) -> None:
    magics = magics_of(shell)
    assert config(shell, caplog, "LinkisMagics.poll_max_interval = 10") == []
    assert config(shell, caplog, "LinkisMagics.poll_interval = 5") == []
    (error,) = config(shell, caplog, "LinkisMagics.poll_max_interval = 4")
    assert error.endswith("must be at least LinkisMagics.poll_interval, now 5 s (got 4)")
    job = SimpleNamespace()
    magics.pace(job)
    assert (job.poll_min, job.poll_max, job.stale_after) == (5.0, 10.0, 600.0)


def test_configuration_read_at_load_is_checked_as_a_whole(shell: InteractiveShell) -> None:
    """ipython_config.py may raise both intervals at once: the relation holds for the pair."""
    shell.run_line_magic("unload_ext", "linkis_kernel")
    shell.config.LinkisMagics.poll_interval = 5.0
    shell.config.LinkisMagics.poll_max_interval = 10.0
    shell.run_line_magic("load_ext", "linkis_kernel")
    magics = magics_of(shell)
    assert (magics.poll_interval, magics.poll_max_interval) == (5.0, 10.0)


def test_connect_with_a_bad_url_is_one_short_error_and_changes_nothing(
    shell: InteractiveShell,
) -> None:
    magics = magics_of(shell)
    error = shell.run_cell("%linkis connect gateway:9001 --user alice").error_in_exec
    assert type(error).__name__ == "LinkisCellError"
    assert error._render_traceback_() == [
        "TraitError: LinkisMagics.url must be an http:// or https:// URL, or None for "
        "LINKIS_URL (else embedded) (got 'gateway:9001')"
    ]
    assert magics.url is None and magics.user is None
