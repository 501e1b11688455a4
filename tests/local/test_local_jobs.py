"""Jobs end to end through LocalLinkis: engines, results, failures, progress, kill, queue."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from support.localsvc import USER, sql_body, wait_final, wait_state
from support.procfs import stat_fields
from support.waiting import wait_until

from linkis_kernel.local.service import LocalLinkis
from linkis_kernel.wire import (
    CANCELLED,
    FAILED,
    QUEUE_POSITION_PATTERN,
    RUNNING,
    SCHEDULED,
    SUCCEED,
)

SLOW_SQL = "select count(*) from range(25000) a, range(25000) b where (a.range + b.range) % 7 = 3"
ENDLESS_SQL = (
    "select count(*) from range(200000) a, range(200000) b where (a.range * b.range) % 7 = 3"
)


def results(service: LocalLinkis, task_id: int) -> list[dict]:
    location = service.history_get(USER, task_id)["task"]["resultLocation"]
    children = service.dir_tree(USER, location)["dirFileTrees"]["children"]
    paths = sorted((c["path"] for c in children), key=lambda p: int(p.rsplit("_", 1)[1][:-8]))
    return [service.open_file(USER, p, 1, 10000, "LINKIS_NULL") for p in paths]


def full_log(service: LocalLinkis, exec_id: str) -> str:
    return service.log(USER, exec_id, 0, -1)["log"][3]


def test_sql_statements_give_typed_result_sets(linkis: LocalLinkis, run) -> None:
    code = (
        "create table t as select 1 as x;\n"
        "select 1::int i, 2::bigint b, 1.5::double d, 10.50::decimal(10,2) m, true f,"
        " date '2024-01-02' dt, timestamp '2024-01-02 03:04:05.123' ts, 'ü' s, null n,"
        " [1, 2] arr, 'NULL' literal;\n"
        "insert into t values (2);\n"
        "select x from t order by x"
    )
    submitted = run(linkis, code)
    assert linkis.status(USER, submitted["execID"], None)["status"] == SUCCEED
    first, second = results(linkis, submitted["taskID"])
    assert [c["dataType"] for c in first["metadata"]] == [
        "int", "bigint", "double", "decimal", "boolean", "date", "timestamp", "string",
        "string", "array", "string",
    ]  # fmt: skip
    assert first["metadata"][3]["comment"] == "decimal(10,2)"
    assert first["fileContent"] == [
        [
            "1", "2", "1.5", "10.50", "true", "2024-01-02", "2024-01-02 03:04:05.123000", "ü",
            None, "[1, 2]", "NULL",
        ]
    ]  # fmt: skip
    assert second["fileContent"] == [["1"], ["2"]] and second["type"] == "2"
    assert "in place of spark" in full_log(linkis, submitted["execID"])


def test_python_and_shell_write_text_results_and_log_stderr(
    linkis: LocalLinkis, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINKIS_TOKEN", "server-secret")
    py = run(linkis, "import sys\nprint('hello')\nprint('wörld')\nsys.stderr.write('careful\\n')",
             engine="python", run_type="python")  # fmt: skip
    assert linkis.status(USER, py["execID"], None)["status"] == SUCCEED
    (text,) = results(linkis, py["taskID"])
    assert text["type"] == "1" and text["metadata"] == "NULL"
    assert text["fileContent"] == [["hello"], ["wörld"]]
    assert "WARN careful" in linkis.log(USER, py["execID"], 0, -1)["log"][1]
    (engine_start,) = linkis.progress(USER, py["execID"], None)["progressInfo"]
    assert engine_start["id"].endswith("_engineconn_start"), "no stages but the engine start"
    assert engine_start["succeedTasks"] == engine_start["totalTasks"] == 1

    sh = run(linkis, "echo one; echo two; echo ${LINKIS_TOKEN:-no token}", engine="shell",
             run_type="sh")  # fmt: skip
    assert linkis.status(USER, sh["execID"], None)["status"] == SUCCEED
    assert results(linkis, sh["taskID"])[0]["fileContent"] == [["one"], ["two"], ["no token"]]


@pytest.mark.parametrize(
    ("code", "engine", "run_type", "err_code", "needle"),
    [
        ("select * from no_such_table", "hive", "hql", 21304, "no_such_table"),
        ("raise ValueError('boom')", "spark", "py", 21305, "ValueError: boom"),
        ("echo bad >&2; exit 3", "shell", "shell", 21306, "status 3: bad"),
    ],
)
def test_failing_jobs_report_code_desc_and_error_line(
    linkis: LocalLinkis, run, code: str, engine: str, run_type: str, err_code: int, needle: str
) -> None:
    submitted = run(linkis, code, engine=engine, run_type=run_type)
    task = linkis.history_get(USER, submitted["taskID"])["task"]
    assert task["status"] == FAILED
    assert task["errCode"] == err_code
    assert needle in task["errDesc"]
    assert task["progress"] == "1.0"
    error_lines = linkis.log(USER, submitted["execID"], 0, -1)["log"][0]
    assert needle in error_lines
    if run_type == "py":
        assert "Traceback (most recent call last):" in error_lines


def test_progress_is_monotonic_and_reaches_one_only_at_the_end(linkis: LocalLinkis) -> None:
    submitted = linkis.submit(USER, sql_body("select 1;\n" + SLOW_SQL))
    exec_id = submitted["execID"]
    seen: list[float] = []
    stages_seen = []
    persisted: set[str] = set()

    def sample() -> str | None:
        state = linkis.status(USER, exec_id, None)["status"]
        data = linkis.progress(USER, exec_id, None)
        seen.append(data["progress"])
        if state == RUNNING:
            stages_seen.append(data["progressInfo"])
            persisted.add(linkis.history.row(submitted["taskID"])["progress"])
        if state in (SUCCEED, FAILED, CANCELLED):
            return state
        assert data["progress"] < 1.0
        return None

    assert wait_until(sample, 30, 0.05, message="the job did not finish") == SUCCEED
    assert seen == sorted(seen)
    assert linkis.progress(USER, exec_id, None)["progress"] == 1.0
    assert any(0.5 < p < 1.0 for p in seen), seen
    assert stages_seen and all(stages == [] for stages in stages_seen), "DuckDB has no stages"
    assert linkis.history_get(USER, submitted["taskID"])["task"]["progress"] == "1.0"
    assert any(0.0 < float(p) < 1.0 for p in persisted), persisted  # saved while it ran


def test_progress_with_resource_while_running(linkis: LocalLinkis) -> None:
    submitted = linkis.submit(USER, sql_body(ENDLESS_SQL))
    wait_state(linkis, submitted["execID"], RUNNING)

    def sampled() -> dict | None:
        data = linkis.progress(USER, submitted["execID"], None, with_resource=True)
        metrics = data.get("yarnMetrics")
        return data if metrics and metrics["yarnResource"][0]["queueMemory"] else None

    data = wait_until(sampled, 10, message="the running job's resources were never sampled")
    assert "yarnResource" not in data
    metrics = data["yarnMetrics"]
    (resource,) = metrics["yarnResource"]
    assert resource["queueMemory"] > 10_000_000 and isinstance(resource["queueCores"], int)
    assert resource["jobStatus"] == "RUNNING"
    assert 0 < metrics["memoryPercent"] < 1 and 0 <= metrics["corePercent"] <= 1
    assert metrics["coreRGB"] in ("green", "yellow", "red")
    linkis.kill(USER, submitted["execID"], None)
    wait_final(linkis, submitted["execID"])
    done = linkis.progress(USER, submitted["execID"], None, with_resource=True)
    assert done["yarnResource"] is None and "yarnMetrics" not in done


def test_kill_running_sql(linkis: LocalLinkis) -> None:
    submitted = linkis.submit(USER, sql_body(ENDLESS_SQL))
    wait_state(linkis, submitted["execID"], RUNNING)
    wait_until(  # DuckDB reports progress: the statement is executing, so the kill interrupts it
        lambda: linkis.progress(USER, submitted["execID"], None)["progress"] > 0,
        10,
        message="the SQL statement never started",
    )
    message, data = linkis.kill(USER, submitted["execID"], None)
    assert message == "Successfully killed the job(成功kill了job)"
    assert data == {"execID": submitted["execID"]}
    assert wait_final(linkis, submitted["execID"]) == CANCELLED  # ENDLESS_SQL takes minutes
    task = linkis.history_get(USER, submitted["taskID"])["task"]
    assert task["status"] == CANCELLED and task["progress"] == "1.0"
    # killing a finished job answers success and leaves its state
    assert linkis.kill(USER, submitted["execID"], None)[0].startswith("Successfully")
    assert linkis.status(USER, submitted["execID"], None)["status"] == CANCELLED


def queue_positions(service: LocalLinkis, submitted: dict) -> list[int]:
    """The `ahead` numbers of every queue-position line in a job's log, in order."""
    return [
        int(n) for n in re.findall(QUEUE_POSITION_PATTERN, full_log(service, submitted["execID"]))
    ]


def _alive(pid: int) -> bool:
    try:
        state = stat_fields(pid)[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_kill_running_shell_kills_its_process_group(linkis: LocalLinkis, tmp_path: Path) -> None:
    pid_file = tmp_path / "sleep.pid"
    code = f"sleep 30 &\necho $! > {pid_file}\nwait"
    submitted = linkis.submit(USER, sql_body(code, engine="shell", run_type="shell"))
    wait_until(
        lambda: pid_file.exists() and pid_file.read_text().strip(),
        10,
        message="the shell job never wrote its pid file",
    )
    sleeper = int(pid_file.read_text())
    assert _alive(sleeper)
    linkis.kill(USER, submitted["execID"], None)
    assert wait_final(linkis, submitted["execID"], 4.0) == CANCELLED
    wait_until(lambda: not _alive(sleeper), 2, message=f"process {sleeper} outlived the kill")


def test_queue_positions_and_killing_a_queued_job(tmp_path: Path) -> None:
    service = LocalLinkis(tmp_path / "data", workers=1)
    service.start()
    try:
        first = service.submit(USER, sql_body(ENDLESS_SQL))
        second = service.submit(USER, sql_body("select 2"))
        third = service.submit(USER, sql_body("select 3"))
        wait_state(service, first["execID"], RUNNING)
        assert service.status(USER, second["execID"], None)["status"] == SCHEDULED
        assert queue_positions(service, second) == [0]
        assert queue_positions(service, third) == [1]
        message, _ = service.kill(USER, second["execID"], None)
        assert message.startswith("Successfully")
        assert service.status(USER, second["execID"], None)["status"] == CANCELLED
        assert queue_positions(service, third) == [1, 0]
        service.kill(USER, first["execID"], None)
        assert wait_final(service, third["execID"]) == SUCCEED
        assert service.history_get(USER, second["taskID"])["task"]["status"] == CANCELLED
    finally:
        service.close()


@pytest.mark.parametrize(("creator", "rows"), [("IDE", 5000), ("nb", 6000)])
def test_ide_results_are_capped(linkis: LocalLinkis, run, creator: str, rows: int) -> None:
    submitted = run(linkis, "select range as n from range(6000)", creator=creator)
    (table,) = results(linkis, submitted["taskID"])
    assert table["totalLine"] == rows
    warnings = linkis.log(USER, submitted["execID"], 0, -1)["log"][1]
    assert ("limited to 5000 rows" in warnings) == (creator == "IDE")


def test_variables_are_substituted_and_failures_keep_a_failed_row(linkis: LocalLinkis, run) -> None:
    body = sql_body("--@set b=2\nselect ${a} + ${b} as s, '${run_date}' d")
    body["params"]["variable"] = {"a": "40", "run_date": "20240101"}
    submitted = linkis.submit(USER, body)
    wait_final(linkis, submitted["execID"])
    (table,) = results(linkis, submitted["taskID"])
    assert table["fileContent"] == [["42", "20240101"]]
    listed = linkis.history_list(USER, task_id=submitted["taskID"])["tasks"][0]
    assert listed["executionCode"].endswith("select 40 + 2 as s, '20240101' d")

    from linkis_kernel.local.errors import ServiceError

    with pytest.raises(ServiceError) as err:
        linkis.submit(USER, sql_body("select ${run_date * 2}"))
    assert err.value.code == 20050
    failed = linkis.history_list(USER, status=[FAILED])["tasks"][0]
    assert failed["errCode"] == 20050 and failed["progress"] == "1.0"


def test_ids_unique_under_concurrent_submits(linkis: LocalLinkis) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: linkis.submit(USER, sql_body("select 1")), range(50)))
    exec_ids = {a["execID"] for a in answers}
    task_ids = {a["taskID"] for a in answers}
    assert len(exec_ids) == 50 and len(task_ids) == 50
    assert {int(e.rsplit("_", 1)[1]) for e in exec_ids} == set(range(50))
    for answer in answers:
        wait_final(linkis, answer["execID"])
    assert os.cpu_count()  # the pool drained without deadlock


def test_close_cancels_running_and_queued_jobs(tmp_path: Path) -> None:
    service = LocalLinkis(tmp_path / "data", workers=1)
    service.start()
    running = service.submit(USER, sql_body(ENDLESS_SQL))
    queued = service.submit(USER, sql_body("select 1"))
    wait_state(service, running["execID"], RUNNING)
    service.close()  # does not wait for ENDLESS_SQL (minutes): its job ends Cancelled below
    service.close()  # idempotent
    again = LocalLinkis(tmp_path / "data")
    again.start()
    try:
        for job in (running, queued):
            task = again.history_get(USER, job["taskID"])["task"]
            assert task["status"] == CANCELLED
            assert "stopped" in task["errDesc"]
    finally:
        again.close()
