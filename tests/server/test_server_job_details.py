"""Job details over HTTP: extra info, diagnosis, unfinished jobs, user flags and settings."""

from __future__ import annotations

import re
from typing import Any

import requests
from support.serverproc import GUEST, ServerProcess, wait_for_state

from linkis_kernel import wire


def _get(
    server: ServerProcess, endpoint: str, session: requests.Session | None = None, **params: Any
) -> tuple[int, dict]:
    response = (session or server.client).get(server.api(endpoint), params=params, timeout=10)
    return response.status_code, response.json()


def _finished(server: ServerProcess, code: str, **submit: Any) -> int:
    job = server.submit(code, **submit)
    server.wait(job["execID"])
    return int(job["taskID"])


def test_extra_info_gives_the_code_that_ran_and_its_run_time(linkis_server: ServerProcess) -> None:
    task_id = _finished(
        linkis_server, "print(${n} + 1)", engine="python", run_type="python",
        creator="extrainfo",  # labels no other test uses, so this job starts its engine
        params={"variable": {"n": "41"}},
    )  # fmt: skip
    http, answer = _get(linkis_server, "jobhistory/job-extra-info", jobId=task_id)
    assert http == 200 and answer["status"] == 0
    metrics = answer["data"]["metricsMap"]
    assert metrics["executionCode"] == "print(41 + 1)"
    assert re.fullmatch(r"\d+ ms|\d+\.\d s", metrics["runtime"]), metrics
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", metrics["completeTime"])
    assert metrics["isReuse"] is False


def test_extra_info_of_others_and_unknown_jobs_is_refused(linkis_server: ServerProcess) -> None:
    task_id = _finished(linkis_server, "select 1")
    http, answer = _get(
        linkis_server,
        "jobhistory/job-extra-info",
        linkis_server.session(GUEST["name"], GUEST["password"]),
        jobId=task_id,
    )
    assert (http, answer["status"]) == (403, wire.STATUS_NO_PERMISSION)
    same = _get(
        linkis_server,
        f"jobhistory/{task_id}/get",
        linkis_server.session(GUEST["name"], GUEST["password"]),
    )
    assert same == (http, {**answer, "method": same[1]["method"]})
    http, answer = _get(linkis_server, "jobhistory/job-extra-info", jobId=99999999)
    assert (http, answer["status"]) == (400, 1)
    assert answer["message"].startswith("The corresponding job was not found")
    http, answer = _get(linkis_server, "jobhistory/job-extra-info", jobId="x")
    assert (http, answer["status"]) == (400, 1) and "jobId" in answer["message"]


def test_diagnosis_explains_a_failed_job_to_its_owner_only(linkis_server: ServerProcess) -> None:
    failed = _finished(linkis_server, "select * from no_such_table_for_diagnosis")
    _, answer = _get(linkis_server, "jobhistory/diagnosis-query", taskID=failed)
    text = answer["data"]["diagnosisMsg"]
    assert text.startswith(f"Job {failed} Failed (error ")
    assert "no_such_table_for_diagnosis" in text and "ERROR" in text
    _, other = _get(
        linkis_server,
        "jobhistory/diagnosis-query",
        linkis_server.session(GUEST["name"], GUEST["password"]),
        taskID=failed,
    )
    assert other["data"] == {"diagnosisMsg": ""}
    succeeded = _finished(linkis_server, "select 1")
    _, answer = _get(linkis_server, "jobhistory/diagnosis-query", taskID=succeeded)
    assert answer["data"] == {"diagnosisMsg": ""}
    http, answer = _get(linkis_server, "jobhistory/diagnosis-query", taskID="1x")
    assert http == 400 and "21304" in answer["message"]
    http, answer = _get(linkis_server, "jobhistory/diagnosis-query")
    assert http == 400 and answer["message"] == "Invalid jobId cannot be empty"


def test_a_failed_job_leaves_no_result_folder(linkis_server: ServerProcess) -> None:
    failed = _finished(linkis_server, "select * from no_such_table_for_results")
    _, task = _get(linkis_server, f"jobhistory/{failed}/get")
    location = task["data"]["task"]["resultLocation"]
    assert location
    _, tree = _get(linkis_server, "filesystem/getDirFileTrees", path=location)
    assert tree["status"] == 0 and tree["data"] == {"dirFileTrees": None}


def test_unfinished_jobs_are_the_callers_own(linkis_server: ServerProcess) -> None:
    guest = linkis_server.session(GUEST["name"], GUEST["password"])
    done = _finished(linkis_server, "select 1")
    mine = linkis_server.submit("sleep 30", engine="shell", run_type="shell")
    theirs = linkis_server.submit("sleep 30", engine="shell", run_type="shell", session=guest)
    try:
        wait_for_state(linkis_server, mine["execID"], wire.RUNNING)
        _, answer = _get(linkis_server, "jobhistory/listundonetasks", pageSize=100)
        ids = [task["taskID"] for task in answer["data"]["tasks"]]
        assert mine["taskID"] in ids and theirs["taskID"] not in ids and done not in ids
        assert answer["data"]["totalPage"] == len(ids)
        running = next(t for t in answer["data"]["tasks"] if t["taskID"] == mine["taskID"])
        assert running["executionCode"] == "sleep 30" and running["status"] == wire.RUNNING
        _, one = _get(linkis_server, "jobhistory/listundonetasks", startTaskID=mine["taskID"])
        assert [t["taskID"] for t in one["data"]["tasks"]] == [mine["taskID"]]
        _, python = _get(linkis_server, "jobhistory/listundonetasks", engineType="python")
        assert mine["taskID"] not in [t["taskID"] for t in python["data"]["tasks"]]
    finally:
        for job, session in ((mine, linkis_server.client), (theirs, guest)):
            session.get(linkis_server.api(f"entrance/{job['execID']}/kill"), timeout=10)
    http, answer = _get(linkis_server, "jobhistory/listundonetasks", creator="a b")
    assert (http, answer["message"]) == (400, "Invalid creator : a b")
    http, answer = _get(linkis_server, "jobhistory/listundonetasks", engineType="py;thon")
    assert (http, answer["message"]) == (400, "Invalid engienType: py;thon")


def test_flags_settings_and_oauth_need_no_admin(linkis_server: ServerProcess) -> None:
    _, flags = _get(linkis_server, "jobhistory/governanceStationAdmin")
    assert {k: flags["data"][k] for k in ("admin", "historyAdmin", "deptAdmin")} == dict.fromkeys(
        ("admin", "historyAdmin", "deptAdmin"), False
    )
    assert flags["data"]["canResultSet"] is True and "%s" in flags["data"]["errorMsgTip"]
    http, _ = _get(linkis_server, "jobhistory/governanceStationAdmin", requests.Session())
    assert http == 401
    http, info = _get(linkis_server, "user/baseinfo", requests.Session())
    assert http == 200 and info["data"]["resultSetExportEnable"] is True
    http, oauth = _get(linkis_server, "user/oauth-redirect", requests.Session())
    assert (http, oauth["status"]) == (401, wire.STATUS_NOT_LOGGED_IN)
    assert oauth["method"] == f"{wire.API_PREFIX}/user/oauth-redirect"
    _, engines = _get(linkis_server, "configuration/engineType")
    assert {"spark", "hive", "python", "shell"} <= set(engines["data"]["engineType"])
