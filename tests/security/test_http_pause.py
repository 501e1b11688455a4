"""entrance/{id}/pause answers success only to the job's owner (docs/linkis-rest.md, "Kill").

Linkis accepts and ignores a pause of a job its entrance holds; another user's job is answered
as Linkis answers a job it cannot find.
"""

from __future__ import annotations

from support.serverproc import ServerProcess
from support.twousers import envelope, guest_client


def test_only_the_owner_may_pause_a_job(linkis_server: ServerProcess) -> None:
    running = linkis_server.submit("sleep 60", engine="shell", run_type="shell")
    exec_id = running["execID"]
    try:
        refused = guest_client(linkis_server).get(linkis_server.api(f"entrance/{exec_id}/pause"))
        assert refused.status_code == 400
        body = envelope(refused)
        assert body["status"] == 1 and body["message"].startswith("can not find the job")
        assert linkis_server.user not in body["message"].replace(exec_id, "")
        own = envelope(linkis_server.client.get(linkis_server.api(f"entrance/{exec_id}/pause")))
        assert own["status"] == 0 and own["data"] == {"execID": exec_id}
        assert own["message"] == "success to pause job (成功pause了job)"
    finally:
        linkis_server.client.get(linkis_server.api(f"entrance/{exec_id}/kill"), timeout=10)


def test_pausing_an_unknown_job_is_not_found(linkis_server: ServerProcess) -> None:
    body = envelope(guest_client(linkis_server).get(linkis_server.api("entrance/999999/pause")))
    assert body["status"] == 1 and "can not find the job of exexID :999999" in body["message"]
