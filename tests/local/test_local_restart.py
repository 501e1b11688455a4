"""A server process that dies mid-job: the next LocalLinkis on the same data dir takes over."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.localsvc import USER, sql_body, wait_final

from linkis_kernel.local.errors import ServiceError
from linkis_kernel.local.service import LocalLinkis
from linkis_kernel.wire import FAILED, SUCCEED

REPO = Path(__file__).resolve().parents[2]
FIRST_LIFE = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from linkis_kernel.job import build_submit_body
    from linkis_kernel.local.service import LocalLinkis

    def body(code):
        return build_submit_body(
            code, engine_label="spark-3.2.1", run_type="sql", user_creator="alice-IDE")

    service = LocalLinkis(Path(sys.argv[1]))
    service.start()
    done = service.submit("alice", body("select 7 as seven"))
    while service.status("alice", done["execID"], None)["status"] != "Succeed":
        time.sleep(0.02)
    running = service.submit("alice", body(
        "select count(*) from range(200000) a, range(200000) b where (a.range * b.range) % 7 = 3"))
    while service.status("alice", running["execID"], None)["status"] != "Running":
        time.sleep(0.02)
    while service.history.row(running["taskID"])["progress"] in (None, "0.0"):
        time.sleep(0.02)  # until its progress was persisted once
    print(json.dumps({"done": done, "running": running}), flush=True)
    time.sleep(60)
    """
)


@pytest.fixture
def after_crash(tmp_path: Path):
    data_dir = tmp_path / "data"
    first = subprocess.Popen(
        [sys.executable, "-c", FIRST_LIFE, str(data_dir)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = first.stdout.readline() if first.stdout else ""
    finally:
        first.kill()
        first.wait(10)
    assert line, "the first server process did not get its jobs going"
    jobs = json.loads(line)
    service = LocalLinkis(data_dir)
    service.start()
    yield service, jobs["done"], jobs["running"]
    service.close()


def test_running_job_becomes_failed_and_finished_results_stay(after_crash) -> None:
    service, done, running = after_crash
    task = service.history_get(USER, running["taskID"])["task"]
    assert task["status"] == FAILED
    assert task["progress"] == "1.0"
    assert task["errCode"] == 21308 and "restarted" in task["errDesc"]
    assert service.status(USER, str(running["taskID"]), None) == {
        "status": FAILED,
        "execID": "",
        "taskID": str(running["taskID"]),
    }
    assert service.status(USER, running["execID"], running["taskID"])["status"] == FAILED
    error_lines = service.open_log(USER, task["logPath"])["log"][0]
    assert "restarted" in error_lines

    finished = service.history_get(USER, done["taskID"])["task"]
    assert finished["status"] == SUCCEED
    tree = service.dir_tree(USER, finished["resultLocation"])["dirFileTrees"]
    page = service.open_file(USER, tree["children"][0]["path"])
    assert page["fileContent"] == [["7"]]


def test_entrance_answers_for_jobs_it_no_longer_holds(after_crash) -> None:
    service, done, _ = after_crash
    with pytest.raises(ServiceError, match="Get job by ID error"):
        service.status(USER, done["execID"], None)
    with pytest.raises(ServiceError, match="The job you just executed has ended"):
        service.log(USER, done["execID"], 0, 10)
    with pytest.raises(ServiceError, match="The job already completed"):
        service.kill(USER, str(done["taskID"]), None)
    assert service.kill(USER, done["execID"], done["taskID"]) == (
        "Forced Kill task (强制杀死任务)",
        {},
    )
    assert service.history_get(USER, done["taskID"])["task"]["status"] == SUCCEED
    progress = service.progress(USER, str(done["taskID"]), None, with_resource=True)
    assert progress["progress"] == "1.0" and progress["yarnResource"] is None


def test_ids_continue_after_the_highest_in_history(after_crash) -> None:
    service, _, running = after_crash
    again = service.submit(USER, sql_body("select 1"))
    assert again["execID"].endswith("IDE_alice_spark_2")
    assert again["taskID"] == running["taskID"] + 1
    assert wait_final(service, again["execID"]) == SUCCEED
