"""Global variables over HTTP: stored per user, kept across restarts, filled into `${name}`."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.serverproc import GUEST, ServerProcess, start_server

from linkis_kernel import wire

SAVE, LIST = "variable/saveGlobalVariable", "variable/listGlobalVariable"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own: the variables saved here would fill `${...}` in other tests' jobs."""
    with start_server(tmp_path_factory.mktemp("globalvars"), users=[GUEST]) as process:
        yield process


def _save(server: ServerProcess, items: Any, session: requests.Session | None = None) -> dict:
    session = session or server.client
    response = session.post(server.api(SAVE), json={"globalVariables": items}, timeout=10)
    return {"http": response.status_code, **response.json()}


def _listing(server: ServerProcess, session: requests.Session | None = None) -> list[dict]:
    envelope = (session or server.client).get(server.api(LIST), timeout=10).json()
    assert envelope["status"] == 0, envelope
    return envelope["data"]["globalVariables"]


def _as_dict(server: ServerProcess, session: requests.Session | None = None) -> dict[str, str]:
    return {item["key"]: item["value"] for item in _listing(server, session)}


def _first_cells(server: ServerProcess, task_id: int) -> list[str]:
    return server.result_rows(task_id)[0]


def test_saving_replaces_the_whole_list_and_keeps_ids_of_kept_names(server: ServerProcess) -> None:
    assert _save(server, [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])["status"] == 0
    ids = {item["key"]: item["keyID"] for item in _listing(server)}
    assert _save(server, [{"key": "b", "value": "20"}, {"key": "c", "value": 3}])["status"] == 0
    listing = _listing(server)
    assert [(i["key"], i["value"]) for i in listing] == [("b", "20"), ("c", "3")]
    assert listing[0]["keyID"] == ids["b"] == listing[0]["valueID"]
    assert _save(server, [])["status"] == 0
    assert _listing(server) == []


@pytest.mark.parametrize(
    ("items", "says"),
    [
        ([{"key": "a", "value": " "}], "Key or value cannot be empty"),
        ([{"key": "", "value": "x"}], "Key or value cannot be empty"),
        ([{"value": "x"}], "Key or value cannot be empty"),
        ("a=1", "globalVariables must be an array"),
        (["a=1"], "must be an object with key and value"),
        ([{"key": "k" * 51, "value": "x"}], "at most 50 characters"),
        ([{"key": "a", "value": "v" * 201}], "values at most 200"),
    ],
)
def test_a_bad_list_is_refused_and_changes_nothing(
    server: ServerProcess, items: Any, says: str
) -> None:
    _save(server, [{"key": "kept", "value": "yes"}])
    answer = _save(
        server, [{"key": "new", "value": "1"}, *items] if isinstance(items, list) else items
    )
    assert (answer["http"], answer["status"]) == (400, 1)
    assert says in answer["message"]
    assert _as_dict(server) == {"kept": "yes"}


def test_each_user_has_their_own_variables(server: ServerProcess) -> None:
    guest = server.session(GUEST["name"], GUEST["password"])
    _save(server, [{"key": "team", "value": "owner-team"}])
    _save(server, [{"key": "team", "value": "guest-team"}], guest)
    assert _as_dict(server) == {"team": "owner-team"}
    assert _as_dict(server, guest) == {"team": "guest-team"}
    _save(server, [], guest)
    assert _as_dict(server) == {"team": "owner-team"}


def test_code_takes_set_lines_then_job_variables_then_global_ones(server: ServerProcess) -> None:
    _save(
        server,
        [
            {"key": "g", "value": "global"},
            {"key": "j", "value": "global"},
            {"key": "s", "value": "global"},
        ],
    )
    code = "--@set s=set\nselect '${g}' as g, '${j}' as j, '${s}' as s, '${user}' as u"
    params = {"variable": {"j": "job", "s": "job"}}
    submitted = server.submit(code, params=params)
    assert server.wait(submitted["execID"]) == wire.SUCCEED
    assert _first_cells(server, submitted["taskID"]) == ["global", "job", "set", server.user]
    extra = server.client.get(
        server.api("jobhistory/job-extra-info"), params={"jobId": submitted["taskID"]}
    ).json()["data"]["metricsMap"]
    assert "'global' as g, 'job' as j, 'set' as s" in extra["executionCode"]


def test_another_users_globals_do_not_fill_my_code(server: ServerProcess) -> None:
    _save(server, [], server.client)
    _save(
        server,
        [{"key": "only_guest", "value": "secret"}],
        server.session(GUEST["name"], GUEST["password"]),
    )
    submitted = server.submit("select '${only_guest}' as v")
    assert server.wait(submitted["execID"]) == wire.SUCCEED
    assert _first_cells(server, submitted["taskID"]) == ["${only_guest}"]


def test_variables_survive_a_restart_in_a_private_file(tmp_path: Path) -> None:
    with start_server(tmp_path) as first:
        _save(first, [{"key": "region", "value": "eu"}])
    with start_server(tmp_path) as second:
        assert _as_dict(second) == {"region": "eu"}
    mode = stat.S_IMODE((tmp_path / "variables.sqlite").stat().st_mode)
    assert mode == 0o600
