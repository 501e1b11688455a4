"""The magics in an in-process IPython shell: settings precedence, connect, shutdown."""

from __future__ import annotations

import getpass
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from support.serverproc import history_state
from support.shells import extension_loaded
from support.waiting import wait_until

from linkis_kernel.client import LinkisJobError
from linkis_kernel.magics import LinkisMagics, linkis_magics
from linkis_kernel.wire import CANCELLED, TERMINAL_STATES


@pytest.fixture
def shell(linkis_env: Any) -> Iterator[InteractiveShell]:
    """A plain IPython shell with the extension loaded, connected by token to the server."""
    with extension_loaded() as ip:
        yield ip


def magics_of(ip: InteractiveShell) -> LinkisMagics:
    magics = linkis_magics(ip)
    assert magics is ip.magics_manager.registry["LinkisMagics"]
    return magics


def run(ip: InteractiveShell, cell: str) -> Any:
    result = ip.run_cell(cell)
    if result.error_in_exec is not None:
        raise result.error_in_exec
    return result.result


def test_cell_option_beats_config_beats_environment_beats_default(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    magics = magics_of(shell)
    assert magics.resolved("engine") == "spark" and magics.resolved("creator") == "IDE"
    monkeypatch.setenv("LINKIS_ENGINE", "shell")
    monkeypatch.setenv("LINKIS_CREATOR", "nightly")
    assert magics.resolved("engine") == "shell" and magics.resolved("creator") == "nightly"
    run(shell, "%config LinkisMagics.engine = 'python'")
    assert magics.engine == "python" and magics.resolved("engine") == "python"
    assert magics.resolved("engine", "hive") == "hive"

    # the resolved engine is the one the job runs on
    printed = run(shell, "%%linkis --quiet\nprint(6 * 7)")
    assert printed is None and magics.jobs[-1].engine.startswith("python-")
    assert magics.jobs[-1].info().creator == "nightly"
    run(shell, "%config LinkisMagics.run_type = 'python'")
    run(shell, "%%linkis --quiet -e shell -c adhoc\necho $((6 * 7))")
    assert magics.jobs[-1].engine == "shell-1" and magics.jobs[-1].run_type == "shell"
    assert magics.jobs[-1].info().creator == "adhoc"
    assert magics.jobs[-1].log(level="all")


def test_config_changes_limits_and_engine_versions(shell: InteractiveShell) -> None:
    run(shell, "%config LinkisMagics.display_limit = 2")
    run(shell, "%config LinkisMagics.engine_versions = {'shell': '2'}")
    frame = run(shell, "%%linkis --quiet\nselect * from demo.products order by product_id")
    assert len(frame) == 50
    assert "showing 2 of 50 rows fetched" in frame._repr_mimebundle_()["text/html"]
    run(shell, "%%linkis --quiet -e shell\necho hi")
    assert magics_of(shell).jobs[-1].engine == "shell-2"


def test_text_progress_and_card_outside_a_kernel(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    run(shell, "%%linkis\nselect 'a<b' as s")
    out = capsys.readouterr().out
    assert "[linkis spark-3.2.1] Succeed" in out
    assert "Linkis spark-3.2.1 (sql) · task" in out and "Succeed in" in out


def test_connect_asks_for_a_password_and_never_shows_it(
    shell: InteractiveShell,
    linkis_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("LINKIS_TOKEN")
    prompts: list[str] = []

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        return linkis_server.password

    monkeypatch.setattr(getpass, "getpass", answer)
    run(shell, f"%linkis connect {linkis_server.url} --user {linkis_server.user}")
    assert prompts == [f"Linkis password for {linkis_server.user}: "]
    run(shell, "%linkis status")
    out = capsys.readouterr().out
    assert f"Connected to {linkis_server.url} as {linkis_server.user} (password auth)." in out
    frame = run(shell, "%%linkis --quiet\nselect 1 as one")
    assert int(frame.one[0]) == 1
    magics = magics_of(shell)
    shown = out + repr(magics.connection()) + repr(magics.jobs[-1]) + repr(vars(magics.jobs[-1]))
    assert linkis_server.password not in shown


def test_wrong_password_is_one_short_error(
    shell: InteractiveShell, linkis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LINKIS_TOKEN")
    monkeypatch.setattr(getpass, "getpass", lambda prompt: "not-the-password")
    result = shell.run_cell(f"%linkis connect {linkis_server.url} --user {linkis_server.user}")
    error = result.error_in_exec
    assert type(error).__name__ == "LinkisCellError"
    assert error._render_traceback_() == [
        f"Not connected: the Linkis gateway at {linkis_server.url} refused the password of user "
        f"'{linkis_server.user}'. Check LINKIS_USER and LINKIS_PASSWORD (or use LINKIS_TOKEN)."
    ]
    assert "not-the-password" not in str(error)


def test_shutdown_kills_the_jobs_this_shell_started(
    shell: InteractiveShell, linkis_server: Any
) -> None:
    job = run(shell, "%%linkis --async --quiet -e shell\nsleep 30")
    assert magics_of(shell).running_jobs() == [job]
    reports = magics_of(shell).shutdown()
    assert len(reports) == 1, reports
    # Confirmed within the shutdown's wait, or only requested when Linkis is slower than that.
    assert re.match(rf"(Killed|Kill requested for) Linkis job {job.task_id}\b", reports[0]), reports
    client = linkis_server.linkis_client()
    assert history_state(client, job.task_id, TERMINAL_STATES, 10) == CANCELLED


def test_config_url_and_token_env_beat_the_environment(
    shell: InteractiveShell,
    linkis_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LINKIS_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("LINKIS_TOKEN")
    monkeypatch.setenv("MY_LINKIS_TOKEN", linkis_server.token)
    run(shell, f"%config LinkisMagics.url = '{linkis_server.url}'")
    run(shell, "%config LinkisMagics.token_env = 'MY_LINKIS_TOKEN'")
    run(shell, "%linkis status")
    assert f"Connected to {linkis_server.url} as root (token auth)." in capsys.readouterr().out


def test_result_jobs_and_help_subcommands(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    run(shell, "%%linkis --progress none -o first\nselect 1 as a; select 'x' as b")
    out = capsys.readouterr().out
    assert "[linkis" not in out and "Succeed in" in out
    task_id = magics_of(shell).jobs[-1].task_id
    value = run(shell, f"%linkis result {task_id} -o again")
    assert shell.user_ns["again"] is value and list(value.columns) == ["b"]
    assert "result 1 of 2" in capsys.readouterr().out
    with pytest.raises(Exception, match="no_table"):
        run(shell, "%%linkis --quiet\nselect * from no_table")
    failed = run(shell, "%linkis jobs -n 5 --status failed")
    assert len(failed) >= 1 and set(failed.state) == {"Failed"}
    assert failed.code.iloc[0] == "select * from no_table"
    run(shell, "%linkis help")
    help_text = capsys.readouterr().out
    for subcommand in (
        "connect", "status", "jobs", "attach", "kill", "log", "result", "download", "vars",
    ):  # fmt: skip
        assert subcommand in help_text


def test_vars_lists_sets_and_deletes_global_variables_that_fill_cells(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    client = magics_of(shell).connection()
    client.set_global_variables({})
    try:
        assert run(shell, "%linkis vars") is None
        assert "no global variables" in capsys.readouterr().out
        run(shell, "%linkis vars lk_region=eu lk_greeting=hello")
        assert "set lk_region, lk_greeting" in capsys.readouterr().out
        table = run(shell, "%linkis vars")
        assert table.values.tolist() == [["lk_region", "eu"], ["lk_greeting", "hello"]]
        # The magic leaves ${name} it cannot fill to Linkis, which takes the global variable.
        cell = "%%linkis --quiet\nselect '${lk_region}' as r, '${lk_greeting}' as g"
        assert run(shell, cell).values.tolist() == [["eu", "hello"]]
        shell.user_ns["lk_region"] = "us"  # the cell's own value wins over the global one
        assert run(shell, "%%linkis --quiet\nselect '${lk_region}' as r").r.tolist() == ["us"]
        run(shell, "%linkis vars lk_greeting=")
        assert "deleted lk_greeting" in capsys.readouterr().out
        assert client.global_variables() == {"lk_region": "eu"}
        with pytest.raises(UsageError, match="expects KEY=VALUE"):
            run(shell, "%linkis vars oops")
    finally:
        client.set_global_variables({})
        shell.user_ns.pop("lk_region", None)


def test_an_empty_cell_is_a_usage_error(shell: InteractiveShell) -> None:
    error = shell.run_cell("%%linkis -e shell\n\n  \n").error_in_exec
    assert type(error).__name__ == "UsageError" and "no code to run" in str(error)


def test_an_unknown_engine_is_one_short_error(shell: InteractiveShell) -> None:
    error = shell.run_cell("%%linkis -e nosuchengine\nselect 1").error_in_exec
    assert type(error).__name__ == "LinkisCellError"
    assert "nosuchengine" in error._render_traceback_()[0]


def test_an_interrupt_before_the_wait_still_kills_the_job(shell: InteractiveShell) -> None:
    magics = magics_of(shell)
    job = run(shell, "%%linkis --async --quiet -e shell\nsleep 30")
    note = magics._interrupt_note(job, KeyboardInterrupt(), kill=True)
    assert note == f"Killed Linkis job {job.task_id}: Linkis confirms it Cancelled."
    assert magics._interrupt_note(job, KeyboardInterrupt(), kill=False).startswith(
        "Interrupted while reading the results"
    )


def test_an_async_failure_is_explained_on_its_card(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    job = run(shell, "%%linkis --async --progress none -e shell\necho oops >&2; exit 3")
    printed: list[str] = []

    def card_printed() -> bool:
        printed.append(capsys.readouterr().out)
        return "errCode" in "".join(printed)

    wait_until(card_printed, 10, 0.1, message="the failure card was never printed")
    out = "".join(printed)
    assert f"task {job.task_id} · Failed in" in out
    assert re.search(r"errCode \d+: .*status 3", out)
    assert "  | " in out and "ERROR" in out


def test_killing_an_async_job_shows_its_card_before_the_kill_returns(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    job = run(shell, "%%linkis --async --progress text -e shell\nsleep 30")
    time.sleep(2.5)  # the follower's polls have slowed to poll_max_interval
    run(shell, f"%linkis kill {job.task_id}")
    out = capsys.readouterr().out
    card = out.find(f"task {job.task_id} · Cancelled in")
    report = out.find(f"Killed Linkis job {job.task_id}: Linkis confirms it Cancelled.")
    assert 0 <= card < report, out


def test_the_engine_row_cap_is_named_in_the_footer(shell: InteractiveShell) -> None:
    frame = run(shell, "%%linkis --quiet\nselect * from demo.order_items")
    assert len(frame) == 5000
    footer = frame._repr_mimebundle_()["text/plain"].splitlines()[-1]
    assert footer.startswith("showing 50 of 5,000 rows fetched (display limit 50")
    assert "truncated by the engine's default 5000-row cap for creator IDE" in footer


def test_a_failed_job_names_its_next_step_as_a_magic(shell: InteractiveShell) -> None:
    error = shell.run_cell("%%linkis --quiet\nselect * from no_table").error_in_exec
    task_id = magics_of(shell).jobs[-1].task_id
    assert isinstance(error, LinkisJobError) and type(error).__name__ == "LinkisJobError"
    assert error.task_id == task_id and error.state == "Failed"
    lines = error._render_traceback_()
    assert lines[0] == f"LinkisJobError: Linkis job {task_id} ended Failed"
    assert lines[-1].strip() == f"Run `%linkis log {task_id}` to see the full log."
    assert str(error).endswith(f"Run `%linkis log {task_id}` to see the full log.")
    assert "client.job(" not in "\n".join(lines) + str(error)


def test_other_linkis_errors_name_their_next_step_as_a_magic(shell: InteractiveShell) -> None:
    error = shell.run_cell("%linkis log 99999999").error_in_exec
    assert type(error).__name__ == "LinkisCellError"
    (line,) = error._render_traceback_()
    assert line == "No Linkis job 99999999 is visible to you; `%linkis jobs` lists yours."


def test_unloading_leaves_no_magics_behind(shell: InteractiveShell) -> None:
    def loaded() -> list[Any]:
        return [each for each in shell.configurables if isinstance(each, LinkisMagics)]

    assert loaded() == [magics_of(shell)]
    shell.run_line_magic("unload_ext", "linkis_kernel")
    assert loaded() == []
    shell.run_line_magic("load_ext", "linkis_kernel")
    assert loaded() == [magics_of(shell)]
