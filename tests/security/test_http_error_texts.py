"""Refusals tell a user neither whose a job or file is nor where the server keeps its data.

(docs/linkis-rest.md, "Errors and HTTP codes".) The owner runs jobs; the guest tries every
per-job endpoint and file endpoint on them and on paths of the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support.serverproc import ServerProcess
from support.twousers import envelope, guest_client, post_raw


@pytest.fixture(scope="module")
def owner_jobs(linkis_server: ServerProcess) -> Iterator[dict[str, Any]]:
    """One finished and one running job of the owner, and the finished one's history row."""
    done = linkis_server.submit("select 1", engine="duckdb")
    linkis_server.wait(done["execID"])
    running = linkis_server.submit("sleep 60", engine="shell", run_type="shell")
    task = linkis_server.client.get(
        linkis_server.api(f"jobhistory/{done['taskID']}/get"), timeout=10
    ).json()["data"]["task"]
    try:
        yield {"done": done, "running": running, "task": task}
    finally:
        linkis_server.client.get(linkis_server.api(f"entrance/{running['execID']}/kill"))


def _assert_reveals_nothing(server: ServerProcess, body: dict[str, Any], sent: str = "") -> None:
    assert body["status"] != 0, body
    assert "unknown request URI" not in body["message"], body  # a refusal, not a missing route
    # What the guest sent may be echoed (an exec id names its user); nothing else may be told.
    text = str(body).replace(sent, "<sent>") if sent else str(body)
    for secret in (server.user, str(server.data_dir), str(server.data_dir.resolve())):
        assert secret not in text, text


@pytest.mark.parametrize(
    "template",
    [
        "entrance/{exec}/status",
        "entrance/{exec}/progress",
        "entrance/{exec}/progressWithResource",
        "entrance/{exec}/log?fromLine=1&size=10",
        "entrance/{exec}/kill",
        "entrance/{task}/status",
        "entrance/{task}/kill",
        "entrance/{task}/progress",
        "jobhistory/{task}/get",
        "jobhistory/job-extra-info?jobId={task}",
    ],
)
@pytest.mark.parametrize("which", ["done", "running"])
def test_refusals_of_another_users_job_do_not_name_the_owner(
    linkis_server: ServerProcess, owner_jobs: dict[str, Any], template: str, which: str
) -> None:
    job = owner_jobs[which]
    path = template.format(exec=job["execID"], task=job["taskID"])
    response = guest_client(linkis_server).get(linkis_server.api(path), timeout=10)
    body = envelope(response)
    _assert_reveals_nothing(linkis_server, body, sent=job["execID"] if "{exec}" in template else "")


def test_kill_jobs_of_another_user_does_not_name_the_owner(
    linkis_server: ServerProcess, owner_jobs: dict[str, Any]
) -> None:
    running = owner_jobs["running"]
    text = f'{{"idList": ["{running["execID"]}"], "taskIDList": [{running["taskID"]}]}}'
    body = envelope(
        post_raw(guest_client(linkis_server), linkis_server.api("entrance/killJobs"), text)
    )
    _assert_reveals_nothing(linkis_server, body, sent=running["execID"])
    assert "no permission" in body["message"]


@pytest.mark.parametrize("endpoint", ["openLog", "openFile", "getDirFileTrees"])
@pytest.mark.parametrize("path", ["/etc/passwd", "file:///tmp", "{log}", "{data}/log"])
def test_file_refusals_name_neither_owner_nor_data_dir(
    linkis_server: ServerProcess, owner_jobs: dict[str, Any], endpoint: str, path: str
) -> None:
    task = owner_jobs["task"]
    sent = path.format(log=task["logPath"], data=linkis_server.data_dir)
    response = guest_client(linkis_server).get(
        linkis_server.api(f"filesystem/{endpoint}"), params={"path": sent}, timeout=10
    )
    _assert_reveals_nothing(linkis_server, envelope(response), sent=sent)
