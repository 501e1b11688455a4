"""Engine sessions on the real server: Python engines that remember, are shared by the jobs of
one user, creator and engine, end when idle, are capped per user, survive a kill (or are ended
after the grace period), are replaced after a crash, and never outlive the server."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.contract import load_example, shape_differences
from support.procfs import stat_fields
from support.serverproc import GUEST, ServerProcess, start_server, wait_for_state
from support.waiting import wait_until

from linkis_kernel import wire

SLEEP = "import time\ntime.sleep(60)"
STUBBORN = (
    "import time\n"
    "while True:\n"
    "    try:\n"
    "        time.sleep(60)\n"
    "    except KeyboardInterrupt:\n"
    "        pass\n"
)


def _py(
    server: ServerProcess,
    code: str,
    *,
    creator: str = "IDE",
    session: requests.Session | None = None,
    engine: str = "python",
) -> dict[str, Any]:
    """Run Python code to the end; returns the task (jobhistory), its log and its outputs."""
    job = server.submit(code, engine=engine, run_type="python", creator=creator, session=session)
    server.wait(job["execID"], session=session)
    return _finished(server, job, session)


def _finished(server: ServerProcess, job: dict, session: requests.Session | None = None) -> dict:
    wait_until(
        lambda: (
            server.get_data(f"jobhistory/{job['taskID']}/get", session=session)["task"]["status"]
            in wire.TERMINAL_STATES
        ),
        5,
    )
    task = server.get_data(f"jobhistory/{job['taskID']}/get", session=session)["task"]
    log = _log_file(task)
    outputs = []
    if task["status"] == wire.SUCCEED:
        for path in server.result_paths(job["taskID"], session=session):
            outputs.append(server.get_data("filesystem/openFile", session=session, path=path))
    return {"task": task, "log": log, "outputs": outputs, **job}


def _log_file(task: dict) -> str:
    return Path(task["logPath"].removeprefix("file://")).read_text()


def _text(result: dict) -> str:
    return "\n".join(row[0] for row in _outputs_text(result))


def _outputs_text(result: dict) -> list[list[str]]:
    return [row for page in result["outputs"] if page["type"] == "1" for row in page["fileContent"]]


def _pid(result: dict) -> int:
    return int(result["task"]["engineInstance"].rsplit(":", 1)[1])


def _gone(pid: int) -> bool:
    """The process no longer runs (absent, or a zombie nobody has reaped yet)."""
    try:
        return stat_fields(pid)[0] == "Z"
    except OSError:
        return True


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("engines"), users=[GUEST]) as running:
        yield running


@pytest.fixture(scope="module")
def guest(server: ServerProcess) -> requests.Session:
    return server.session(GUEST["name"], GUEST["password"])


def test_state_lives_on_between_jobs_of_one_engine(server: ServerProcess) -> None:
    first = _py(server, "x = 41\ndef double(v):\n    return 2 * v\nimport math", creator="reuse")
    second = _py(server, "print(double(x + 1), math.pi > 3)", creator="reuse")
    assert second["task"]["status"] == wire.SUCCEED, second["log"]
    assert _text(second) == "84 True"
    assert "Request LinkisManager:EngineAskAsyncResponse(" in first["log"]
    assert "Succeed to create new ec : ServiceInstance(linkis-cg-engineconn," in first["log"]
    assert "started in" in first["log"]
    instance = second["task"]["engineInstance"]
    assert (
        f"Succeed to reuse ec : ServiceInstance(linkis-cg-engineconn, {instance}" in second["log"]
    )
    assert first["task"]["engineInstance"] == second["task"]["engineInstance"]
    assert second["task"]["isReuse"] is True and first["task"]["isReuse"] is False


def test_engine_start_is_a_step_of_progress(server: ServerProcess) -> None:
    job = server.submit("print('hi')", engine="python", run_type="python", creator="progress")
    server.wait(job["execID"])
    stages = server.get_data(f"entrance/{job['execID']}/progressWithResource")["progressInfo"]
    start = next(s for s in stages if s["id"].endswith("_engineconn_start"))
    assert start == {**start, "totalTasks": 1, "succeedTasks": 1, "runningTasks": 0}


def test_creators_and_users_get_their_own_engines(
    server: ServerProcess, guest: requests.Session
) -> None:
    mine = _py(server, "secret = 'alice'", creator="nbA")
    other_creator = _py(server, "print(secret)", creator="nbB")
    other_user = _py(server, "print(secret)", creator="nbA", session=guest)
    for result in (other_creator, other_user):
        assert result["task"]["status"] == wire.FAILED
        assert "NameError: name 'secret' is not defined" in result["task"]["errDesc"]
    instances = {r["task"]["engineInstance"] for r in (mine, other_creator, other_user)}
    assert len(instances) == 3


def test_shell_jobs_run_in_their_own_process(server: ServerProcess) -> None:
    server.wait(server.submit("export KEPT=1", engine="shell", run_type="shell")["execID"])
    job = server.submit("echo kept=${KEPT:-no}", engine="shell", run_type="shell")
    server.wait(job["execID"])
    assert _text(_finished(server, job)) == "kept=no"


def test_kill_interrupts_the_statement_and_keeps_the_engine(server: ServerProcess) -> None:
    _py(server, "kept = 'still here'", creator="kill")
    job = server.submit(SLEEP, engine="python", run_type="python", creator="kill")
    wait_for_state(server, job["execID"], wire.RUNNING)
    wait_until(lambda: "Succeed to reuse ec" in _log_so_far(server, job), 10)
    server.client.get(server.api(f"entrance/{job['execID']}/kill"), timeout=10)
    assert server.wait(job["execID"], timeout=10) == wire.CANCELLED
    after = _py(server, "print(kept)", creator="kill")
    assert _text(after) == "still here"
    assert "Succeed to reuse ec" in after["log"]


def _log_so_far(server: ServerProcess, job: dict) -> str:
    return server.get_data(f"entrance/{job['execID']}/log", fromLine=0, size=-1)["log"][3]


def test_a_statement_that_ignores_the_kill_ends_its_engine(server: ServerProcess) -> None:
    first = _py(server, "kept = 1", creator="grace")
    job = server.submit(STUBBORN, engine="python", run_type="python", creator="grace")
    wait_for_state(server, job["execID"], wire.RUNNING)
    wait_until(lambda: "Succeed to reuse ec" in _log_so_far(server, job), 10)
    server.client.get(server.api(f"entrance/{job['execID']}/kill"), timeout=10)
    assert server.wait(job["execID"], timeout=20) == wire.CANCELLED
    killed = _finished(server, job)
    assert "did not stop within 5 s of the kill" in killed["log"]
    assert wait_until(lambda: _gone(_pid(first)), 10)
    after = _py(server, "print('kept' in globals())", creator="grace")
    assert _text(after) == "False"
    assert "The previous engine with these labels is gone" in after["log"]
    assert "killed and did not stop within the grace period" in after["log"]


@pytest.mark.parametrize(("engine", "run_type"), [("python", "python"), ("spark", "py")])
def test_the_kill_grace_is_a_serve_option(tmp_path: Path, engine: str, run_type: str) -> None:
    """Python engines wait 5 s by default and Spark engines 20 s (cancelling Spark jobs takes
    longer than a Python interrupt); `--engine-kill-grace` sets the grace of both."""
    with start_server(tmp_path / "data", args=["--engine-kill-grace", "1"]) as quick:
        first = _py(quick, "kept = 1", engine=engine)
        job = quick.submit(STUBBORN, engine=engine, run_type=run_type)
        wait_until(lambda: "Succeed to reuse ec" in _log_so_far(quick, job), 10)
        quick.client.get(quick.api(f"entrance/{job['execID']}/kill"), timeout=10)
        assert quick.wait(job["execID"], timeout=20) == wire.CANCELLED
        assert "did not stop within 1 s of the kill" in _finished(quick, job)["log"]
        assert wait_until(lambda: _gone(_pid(first)), 10)


def test_an_engine_that_dies_fails_its_job_and_is_replaced(server: ServerProcess) -> None:
    first = _py(server, "kept = 1", creator="crash")
    crashed = _py(server, "import os\nos._exit(3)", creator="crash")
    assert crashed["task"]["status"] == wire.FAILED
    assert crashed["task"]["errCode"] == 60003
    assert "exited with status 3 while running this job" in crashed["task"]["errDesc"]
    after = _py(server, "print('kept' in globals())", creator="crash")
    assert _text(after) == "False"
    assert after["task"]["engineInstance"] != first["task"]["engineInstance"]
    assert "exited with status 3" in after["log"]


def test_idle_engines_end_after_the_idle_timeout(tmp_path: Path) -> None:
    with start_server(tmp_path / "data", args=["--engine-idle-timeout", "1s"]) as short:
        first = _py(short, "x = 1")
        assert wait_until(lambda: _gone(_pid(first)), 10)
        after = _py(short, "print('x' in globals())")
        assert _text(after) == "False"
        assert "idle longer than the idle timeout" in after["log"]


def test_at_most_n_engines_per_user(tmp_path: Path) -> None:
    with start_server(tmp_path / "data", args=["--max-engines-per-user", "1"]) as capped:
        first = _py(capped, "x = 1", creator="one")
        second = _py(capped, "print('x' in globals())", creator="two")
        assert "Ending idle engine EngineConn " + first["task"]["engineInstance"] in second["log"]
        assert wait_until(lambda: _gone(_pid(first)), 10)

        busy = capped.submit(SLEEP, engine="python", run_type="python", creator="two")
        wait_for_state(capped, busy["execID"], wire.RUNNING)
        waiting = capped.submit("print('ran')", engine="python", run_type="python", creator="one")
        wait_until(lambda: "all busy" in _log_so_far(capped, waiting), 10)
        assert capped.status(waiting["execID"]) == wire.SCHEDULED
        capped.client.get(capped.api(f"entrance/{busy['execID']}/kill"), timeout=10)
        assert capped.wait(waiting["execID"]) == wire.SUCCEED
        assert _text(_finished(capped, waiting)) == "ran"


def test_stopping_the_server_ends_its_engines(tmp_path: Path) -> None:
    with start_server(tmp_path / "data") as stopping:
        result = _py(stopping, "x = 1")
        running = stopping.submit(SLEEP, engine="python", run_type="python", creator="other")
        wait_for_state(stopping, running["execID"], wire.RUNNING)
        wait_until(lambda: "started in" in _log_so_far(stopping, running), 10)
        task = stopping.get_data(f"jobhistory/{running['taskID']}/get")["task"]
    pids = [_pid(result), _pid({"task": task})]
    assert wait_until(lambda: all(_gone(pid) for pid in pids), 10)


def test_even_a_frozen_engine_ends_with_its_killed_server(tmp_path: Path) -> None:
    """(What a crashed server still left is ended by the next start: tests/security.)"""
    data = tmp_path / "data"
    crashed = start_server(data)
    result = _py(crashed, "x = 1")
    pid = _pid(result)
    os.kill(pid, signal.SIGSTOP)  # it cannot notice that its server is gone
    crashed.process.kill()
    crashed.stop()
    assert wait_until(lambda: _gone(pid), 10)
    with start_server(data) as restarted:
        assert _text(_py(restarted, "print('fresh')")) == "fresh"


# -- the LinkisManager endpoints against the Linkis examples --------------------------------------

MANAGER_CASES: dict[str, tuple[str, str, int, Any, str]] = {
    # example: (method, path, HTTP code, body, who asks)
    "linkisManager-listUserEngines.json": ("GET", "linkisManager/listUserEngines", 200, None, "me"),
    "linkisManager-rm-userresources.json": ("POST", "linkisManager/rm/userresources", 200, None,
                                            "me"),
    "linkisManager-rm-applicationlist.json": (
        "POST", "linkisManager/rm/applicationlist", 200, {"userCreator": "({user},shapes)"}, "me"),
    "linkisManager-rm-engineType.json": ("GET", "linkisManager/rm/engineType", 200, None, "me"),
    "linkisManager-ecrHistoryList.json": ("GET", "linkisManager/ecinfo/ecrHistoryList", 200, None,
                                          "me"),
    "error-listEMEngines-not-admin.json": ("POST", "linkisManager/listEMEngines", 400, {}, "guest"),
    "error-killEngineConn-no-permission.json": (
        "POST", "linkisManager/killEngineConn", 400,
        {"applicationName": "linkis-cg-engineconn", "instance": "{instance}"}, "guest"),
    "linkisManager-rm-enginekill.json": (
        "POST", "linkisManager/rm/enginekill", 200, [{"engineInstance": "nowhere:1"}], "me"),
}  # fmt: skip


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, list):
        return [_fill(item, names) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, names) for key, item in value.items()}
    return value


@pytest.fixture(scope="module")
def shapes_engine(server: ServerProcess) -> dict[str, str]:
    result = _py(server, "print('shapes')", creator="shapes")
    return {"user": server.user, "instance": result["task"]["engineInstance"]}


@pytest.mark.parametrize("example", sorted(MANAGER_CASES))
def test_manager_answers_match_the_examples(
    server: ServerProcess, guest: requests.Session, shapes_engine: dict[str, str], example: str
) -> None:
    method, path, http, body, who = MANAGER_CASES[example]
    session = guest if who == "guest" else server.client
    kwargs = {} if body is None else {"json": _fill(body, shapes_engine)}
    response = session.request(method, server.api(path), timeout=10, **kwargs)
    assert response.status_code == http, response.text
    answer, expected = response.json(), load_example(example)
    assert list(answer) == ["method", "status", "message", "data"]
    assert answer["status"] == expected["status"]
    assert answer["method"] == (expected["method"] and f"/api/{path}")
    assert shape_differences(expected["data"], answer["data"]) == [], answer
    if example != "error-killEngineConn-no-permission.json":
        assert answer["message"] == expected["message"]


def test_each_user_sees_and_ends_only_their_own_engines(
    server: ServerProcess, guest: requests.Session
) -> None:
    mine = _py(server, "x = 1", creator="own")
    instance = mine["task"]["engineInstance"]
    listed = server.get_data("linkisManager/listUserEngines")["engines"]
    assert instance in [e["serviceInstance"]["instance"] for e in listed]
    theirs = server.get_data("linkisManager/listUserEngines", session=guest)["engines"]
    assert all(e["owner"] == GUEST["name"] for e in theirs)
    body = {"applicationName": "linkis-cg-engineconn", "instance": instance}
    refused = guest.post(server.api("linkisManager/killEngineConn"), json=body, timeout=10)
    assert refused.json()["status"] == 1 and "no permission" in refused.json()["message"]
    skipped = guest.post(server.api("linkisManager/rm/enginekill"),
                         json=[{"engineInstance": instance}], timeout=10)  # fmt: skip
    assert skipped.json()["status"] == 0 and not _gone(_pid(mine))
    ended = server.client.post(server.api("linkisManager/killEngineConn"), json=body, timeout=10)
    assert ended.json()["message"] == "Kill engineConn succeed."
    assert wait_until(lambda: _gone(_pid(mine)), 10)
    records = server.get_data("linkisManager/ecinfo/ecrHistoryList", instance=instance)
    (record,) = records["engineList"]
    assert record["status"] == "Success" and record["releaseTime"] is not None
    assert record["labelValue"] == f"{server.user}-own,python-python2"
    after = _py(server, "print('x' in globals())", creator="own")
    assert _text(after) == "False" and "killEngineConn" in after["log"]
