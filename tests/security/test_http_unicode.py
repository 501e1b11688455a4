"""Text that UTF-8 cannot hold (a lone surrogate escape) never breaks a user's job history.

(docs/linkis-rest.md, "Errors and HTTP codes".) Such input is refused with a 400 naming the
field; rows that already hold it (written before, or by hand) are still listed and read.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from support.bodies import submit_body
from support.serverproc import GUEST, ServerProcess, start_server
from support.twousers import envelope, guest_client, post_raw

LONE = "\\ud800"  # the JSON escape of a lone surrogate


def _submit_text(field: str) -> tuple[str, str]:
    """An entrance/submit (or execute) body with a lone surrogate in `field`; the endpoint."""
    body = submit_body("select 1", engine="duckdb", run_type="sql")
    marker = "@@LONE@@"
    if field == "labels.team":
        body["labels"]["team"] = marker
    elif field == "executionContent.code":
        body["executionContent"]["code"] = "select '" + marker + "'"
    elif field == "params.variable.x":
        body["params"] = {"variable": {"x": marker}}
    else:
        execute = {
            "executionCode": "select 1",
            "executeApplicationName": marker,
            "runType": "sql",
        }
        return json.dumps(execute).replace(marker, LONE), "entrance/execute"
    return json.dumps(body).replace(marker, LONE), "entrance/submit"


@pytest.mark.parametrize(
    "field",
    ["labels.team", "executionContent.code", "params.variable.x", "executeApplicationName"],
)
def test_a_lone_surrogate_is_refused_naming_the_field(
    linkis_server: ServerProcess, field: str
) -> None:
    guest = guest_client(linkis_server)
    text, path = _submit_text(field)
    response = post_raw(guest, linkis_server.api(path), text)
    assert response.status_code == 400, response.text
    body = envelope(response)
    assert body["status"] == 1
    assert field in body["message"] and "UTF-8" in body["message"]
    # Nothing was stored: the guest's history still answers.
    listed = envelope(guest.get(linkis_server.api("jobhistory/list"), timeout=10))
    assert listed["status"] == 0


def test_a_lone_surrogate_in_a_global_variable_is_refused(linkis_server: ServerProcess) -> None:
    guest = guest_client(linkis_server)
    text = json.dumps({"globalVariables": [{"key": "k", "value": "@"}]}).replace("@", LONE)
    response = post_raw(guest, linkis_server.api("variable/saveGlobalVariable"), text)
    assert response.status_code == 400
    assert "globalVariables[0].value" in envelope(response)["message"]


def _poison(data_dir: Path, task_id: int) -> tuple[int, int]:
    """Copy task `task_id` twice: once with an escaped lone surrogate in its labels (JSON),
    once with bytes that are not UTF-8 in its code. Returns the two new task ids."""
    db = sqlite3.connect(data_dir / "history.sqlite")
    columns = [row[1] for row in db.execute("PRAGMA table_info(tasks)") if row[1] != "task_id"]
    names = ", ".join(columns)
    ids = []
    for labels, code in (
        ("'[\"team:\\ud800\"]'", "execution_code"),
        ("labels_json", "CAST(X'73656c656374eda080ff' AS TEXT)"),
    ):
        chosen = ", ".join(
            labels if c == "labels_json" else code if c == "execution_code" else c for c in columns
        )
        cursor = db.execute(
            f"INSERT INTO tasks ({names}) SELECT {chosen} FROM tasks WHERE task_id = ?",
            (task_id,),
        )
        ids.append(int(cursor.lastrowid or 0))
    db.commit()
    db.close()
    return ids[0], ids[1]


def test_poisoned_history_rows_still_list_and_get(tmp_path: Path) -> None:
    with start_server(tmp_path, users=[GUEST]) as server:
        guest = guest_client(server)
        submitted = server.submit("select 1", engine="duckdb", session=guest)
        task_id = submitted["taskID"]
        server.wait(submitted["execID"], session=guest)
        listed = envelope(guest.get(server.api("jobhistory/list"), timeout=10))
        assert listed["data"]["tasks"]
    surrogate_id, bad_bytes_id = _poison(tmp_path, task_id)
    with start_server(tmp_path, users=[GUEST]) as server:
        guest = guest_client(server)
        listed = envelope(guest.get(server.api("jobhistory/list"), timeout=10))
        assert listed["status"] == 0, listed
        codes = {task["taskID"]: task["executionCode"] for task in listed["data"]["tasks"]}
        assert codes[bad_bytes_id].startswith("select\ufffd")  # the bad bytes, replaced
        got = envelope(guest.get(server.api(f"jobhistory/{surrogate_id}/get"), timeout=10))
        assert got["status"] == 0 and got["data"]["task"]["labels"] == ["team:\ud800"]
        got = envelope(guest.get(server.api(f"jobhistory/{bad_bytes_id}/get"), timeout=10))
        assert got["status"] == 0 and got["data"]["task"]["taskID"] == bad_bytes_id
