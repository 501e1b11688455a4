"""LocalLinkis answers: Linkis error messages, isolation, history, filesystem, metadata, shapes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from support.contract import EXAMPLE_EXEC_ID, load_example, shape_differences
from support.localsvc import OTHER, USER, sql_body, wait_final

from linkis_kernel.local.errors import ServiceError
from linkis_kernel.local.service import LocalLinkis
from linkis_kernel.wire import CANCELLED, STATUS_ERROR, STATUS_NO_PERMISSION, SUCCEED

DEMO_COUNTS = (
    "select count(*), sum(hash(name, email, signup_date, lifetime_value)) from demo.customers;"
    "select count(*), count(discount) from demo.order_items;"
    "select count(*) from demo.orders; select count(*) from demo.products"
)


def example(name: str) -> Any:
    return load_example(name)["data"]


def error_of(call, *args, **kwargs) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call(*args, **kwargs)
    return caught.value


@pytest.fixture
def finished(linkis: LocalLinkis, run) -> dict:
    """A finished SQL job with a table result, and its history row."""
    submitted = run(linkis, "select 1 as id, 'alice' as name, 10.50 as amount union all "
                    "select 2, null, 0.00 order by id")  # fmt: skip
    task = linkis.history_get(USER, submitted["taskID"])["task"]
    tree = linkis.dir_tree(USER, task["resultLocation"])["dirFileTrees"]
    return {**submitted, "task": task, "tree": tree, "result": tree["children"][0]["path"]}


def test_shapes_match_the_contract_examples(linkis: LocalLinkis, finished: dict) -> None:
    exec_id, task_id = finished["execID"], finished["taskID"]
    answers = {
        "submit.json": {"execID": exec_id, "taskID": task_id},
        "status-succeed.json": linkis.status(USER, exec_id, None),
        "status-by-taskid-completed.json": linkis.status(USER, str(task_id), None),
        "log.json": linkis.log(USER, exec_id, 0, 100),
        "log-distinctLevel-false.json": linkis.log(USER, exec_id, 0, 100, False),
        "progress-completed.json": linkis.progress(USER, exec_id, None),
        "progressWithResource.json": linkis.progress(USER, exec_id, None, True),
        "progressWithResource-by-taskid-completed.json": linkis.progress(
            USER, str(task_id), None, True
        ),
        "jobhistory-get-succeed.json": linkis.history_get(USER, task_id),
        "jobhistory-list.json": linkis.history_list(USER),
        "getDirFileTrees.json": {"dirFileTrees": finished["tree"]},
        "openFile-table.json": linkis.open_file(USER, finished["result"]),
        "openFile-page-past-end.json": linkis.open_file(USER, finished["result"], 2, 5000),
        "openLog.json": linkis.open_log(USER, finished["task"]["logPath"]),
        "metadata-dbs.json": linkis.databases(USER),
        "metadata-tables.json": linkis.tables(USER, "demo"),
        "metadata-columns.json": linkis.columns(USER, "demo", "orders"),
    }
    problems = {name: shape_differences(example(name), data) for name, data in answers.items()}
    assert {k: v for k, v in problems.items() if v} == {}
    table = answers["openFile-table.json"]
    assert table["fileContent"] == [["1", "alice", "10.50"], ["2", "NULL", "0.00"]]
    assert [m["dataType"] for m in table["metadata"]] == ["int", "string", "decimal"]
    assert answers["openFile-page-past-end.json"]["fileContent"] == []
    assert answers["progressWithResource-by-taskid-completed.json"]["progress"] == "1.0"
    assert answers["status-by-taskid-completed.json"] == {
        "status": SUCCEED,
        "execID": "",
        "taskID": str(task_id),
    }


def test_null_value_choices(linkis: LocalLinkis, finished: dict) -> None:
    def second_name(null_value: str) -> Any:
        return linkis.open_file(USER, finished["result"], 1, 10, null_value)["fileContent"][1][1]

    assert second_name("") == "NULL"
    assert second_name("BLANK") == ""
    assert second_name("LINKIS_NULL") is None
    assert second_name("-") == "-"


def test_execid_format_and_parsing_errors(linkis: LocalLinkis, finished: dict) -> None:
    assert finished["execID"] == ("exec_id018014linkis-cg-entrance127.0.0.1:9001IDE_alice_spark_0")
    malformed = error_of(linkis.status, USER, "exec_idabc", None)
    assert malformed.message == (
        "operation failed(操作失败)s！the reason(原因)："
        'NumberFormatException: For input string: "abc"'
    )
    unknown = error_of(linkis.status, USER, EXAMPLE_EXEC_ID, None)
    assert unknown.message.startswith("Get job by ID error and cannot obtain")
    empty = error_of(linkis.status, USER, finished["execID"][:-1] + "7", None)
    assert empty.message.startswith("ID The corresponding job is empty")
    assert linkis.status(USER, EXAMPLE_EXEC_ID, 999999) == {
        "status": CANCELLED,
        "execID": EXAMPLE_EXEC_ID,
    }
    assert error_of(linkis.status, USER, "999999", None).message == "taskId 999999 is not exists."
    assert error_of(linkis.progress, USER, EXAMPLE_EXEC_ID, None).message.startswith(
        "The job corresponding to the ID is empty"
    )
    assert error_of(linkis.kill, USER, EXAMPLE_EXEC_ID, None).message.startswith(
        "Get job by ID error, kill failed."
    )
    assert error_of(linkis.log, USER, EXAMPLE_EXEC_ID, 0, 10).message.startswith(
        "The job you just executed has ended"
    )


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        (
            {"executionContent": {"code": "select 1", "runType": "sql"}, "labels": {"a": "b"}},
            20009,
            "You need to specify engineTypeLabel in labels,such as spark-3.2.1",
        ),
        (sql_body("   "), 20007, "The param executionCode cannot be empty"),
        ({"executionContent": {"code": "x"}, "labels": {}}, 20008, "labels is null"),
        (sql_body("select 1", engine="flink"), 20009, "duckdb, hive, jdbc, presto, python"),
        (sql_body("x", engine="python", run_type="sql"), 20009, "use one of: py, python"),
        (sql_body("x", creator="a-b"), 20009, "userCreator"),
        (sql_body("x", creator="../../../tmp/evil"), 20009, "may only hold letters"),
    ],
)
def test_submit_errors(linkis: LocalLinkis, body: dict, code: int, needle: str) -> None:
    error = error_of(linkis.submit, USER, body)
    assert error.code == code and error.status == STATUS_ERROR
    assert needle in error.message
    assert error.message.startswith(f"error code(错误码): {code}, error message(错误信息): ")


def test_execute_takes_the_old_body(linkis: LocalLinkis) -> None:
    body = load_example("execute-request.json")
    body["executionCode"] = "select 42 as answer"
    answer = linkis.execute(USER, body)
    assert "IDE_alice_hive_" in answer["execID"]
    assert wait_final(linkis, answer["execID"]) == SUCCEED
    task = linkis.history_get(USER, answer["taskID"])["task"]
    assert task["labels"][1] == "engineType:hive-3.1.3" and task["runType"] == "hql"


def test_other_users_are_kept_out(linkis: LocalLinkis, finished: dict, tmp_path: Path) -> None:
    exec_id, task_id = finished["execID"], finished["taskID"]
    for call, args in [
        (linkis.status, (exec_id, None)),
        (linkis.status, (str(task_id), None)),
        (linkis.log, (exec_id, 0, 10)),
        (linkis.progress, (exec_id, None)),
        (linkis.history_get, (task_id,)),
        (linkis.open_file, (finished["result"],)),
        (linkis.dir_tree, (finished["task"]["resultLocation"],)),
        (linkis.open_log, (finished["task"]["logPath"],)),
        (linkis.kill_jobs, ([exec_id], [task_id])),
    ]:
        error = error_of(call, OTHER, *args)
        assert error.status == STATUS_NO_PERMISSION, call.__name__
        # The refusal does not say whose the job is (only ids the caller sent may name USER).
        assert "of your" in error.message and USER not in error.message.replace(str(args[0]), "")
    kill = error_of(linkis.kill, OTHER, exec_id, None)
    assert kill.status == STATUS_ERROR
    assert kill.message == "You have no permission to kill this job: it is not one of yours"
    assert linkis.history_list(OTHER)["totalPage"] == 0


@pytest.mark.parametrize(
    "path",
    [
        "{result}/../../../../bob/1/_0.dolphin",
        "file:///etc/passwd",
        "{data}/history.sqlite",
        "{data}/result",
        "relative/path",
        "hdfs:///tmp/linkis/result",
        "{result}\x00",
    ],
)
def test_paths_outside_the_users_area(linkis: LocalLinkis, finished: dict, path: str) -> None:
    filled = path.format(result=finished["result"], data=f"file://{linkis.layout.root}")
    error = error_of(linkis.open_file, USER, filled)
    assert error.status == STATUS_NO_PERMISSION


def test_symlink_out_of_the_area_is_refused(linkis: LocalLinkis, finished: dict) -> None:
    folder = Path(finished["task"]["resultLocation"].removeprefix("file://"))
    (folder / "escape.dolphin").symlink_to("/etc/hostname")
    error = error_of(linkis.open_file, USER, f"{folder}/escape.dolphin")
    assert error.status == STATUS_NO_PERMISSION


def test_filesystem_edge_cases(linkis: LocalLinkis, finished: dict) -> None:
    location = finished["task"]["resultLocation"]
    assert linkis.dir_tree(USER, location + "/missing") == {"dirFileTrees": None}
    names = [c["name"] for c in finished["tree"]["children"]]
    assert names == ["_0.dolphin"]  # the hidden row index is not listed
    child = finished["tree"]["children"][0]
    assert child["isLeaf"] and child["parentPath"] == location
    assert set(child["properties"]) == {"size", "modifytime"}
    assert error_of(linkis.dir_tree, USER, "").code == 80004
    assert error_of(linkis.open_file, USER, finished["result"], 1, 100001).code == 80034
    assert error_of(linkis.open_file, USER, finished["result"], 0, 10).status == STATUS_ERROR
    assert error_of(linkis.open_file, USER, finished["task"]["logPath"]).status == STATUS_ERROR
    assert linkis.result_file(USER, finished["result"]).is_file()


def test_history_metrics_record_every_stage(finished: dict) -> None:
    task = finished["task"]
    metrics = json.loads(task["metrics"])
    assert {"submitTime", "scheduleTime", "runningTime", "completeTime"} <= set(metrics)
    assert task["requestStartTime"] <= task["requestEndTime"]


def test_history_list_filters_and_pages(linkis: LocalLinkis, run) -> None:
    first = run(linkis, "select 1", engine="hive", run_type="hql")
    second = run(linkis, "select 2", creator="nb")
    third = run(linkis, "select nope")
    listed = linkis.history_list(USER, page_size=2)
    assert listed["totalPage"] == 3
    assert [t["taskID"] for t in listed["tasks"]] == [third["taskID"], second["taskID"]]
    assert listed["tasks"][1]["executionCode"] == "select 2"
    assert [t["taskID"] for t in linkis.history_list(USER, page_now=2, page_size=2)["tasks"]] == [
        first["taskID"]
    ]
    assert linkis.history_list(USER, engine_type="hive")["totalPage"] == 1
    assert linkis.history_list(USER, creator="nb")["tasks"][0]["taskID"] == second["taskID"]
    assert linkis.history_list(USER, status=["Failed"])["tasks"][0]["taskID"] == third["taskID"]
    assert linkis.history_list(USER, task_id=first["taskID"])["totalPage"] == 1
    now = int(time.time() * 1000)
    assert linkis.history_list(USER, start_date=now + 60_000)["totalPage"] == 0
    created = linkis.history_get(USER, first["taskID"])["task"]["createdTime"]
    assert linkis.history_list(USER, start_date=created, end_date=created)["totalPage"] == 3
    assert error_of(linkis.history_list, USER, page_now=0).status == STATUS_ERROR
    assert linkis.history_get(USER, first["taskID"])["task"]["executionCode"] is None
    assert error_of(linkis.history_get, USER, 999999).message.startswith(
        "The corresponding job was not found"
    )


def test_kill_jobs(linkis: LocalLinkis, finished: dict) -> None:
    message, data = linkis.kill_jobs(USER, [finished["execID"]], [finished["taskID"]])
    assert message == "success"
    (entry,) = data["messages"]
    assert entry["status"] == 0 and entry["data"] == {"execID": finished["execID"]}
    assert entry["method"] == f"/api/entrance/{finished['execID']}/kill"
    assert error_of(linkis.kill_jobs, USER, [finished["execID"]], []).status == STATUS_ERROR


def test_catalog(linkis: LocalLinkis) -> None:
    assert {"dbName": "demo"} in linkis.databases(USER)["dbs"]
    tables = {t["tableName"]: t for t in linkis.tables(USER, "demo")["tables"]}
    assert set(tables) >= {"customers", "products", "orders", "order_items", "order_totals"}
    assert tables["order_totals"]["isView"] and not tables["orders"]["isView"]
    assert isinstance(tables["orders"]["createdAt"], int) and tables["orders"]["createdAt"] > 0
    columns = {c["columnName"]: c for c in linkis.columns(USER, "demo", "customers")["columns"]}
    assert columns["lifetime_value"]["columnType"] == "decimal(12,2)"
    assert columns["customer_id"]["columnComment"] == "primary id"
    assert columns["name"]["columnComment"] is None
    assert linkis.tables(USER, "nope") == {"tables": []}
    assert linkis.tables(USER, None) == {"tables": []}
    assert linkis.columns(USER, "demo", "nope") == {"columns": []}


def test_demo_schema_is_deterministic(tmp_path: Path, run) -> None:
    counts = []
    for name in ("a", "b"):
        service = LocalLinkis(tmp_path / name)
        service.start()
        try:
            submitted = run(service, DEMO_COUNTS)
            location = service.history_get(USER, submitted["taskID"])["task"]["resultLocation"]
            files = sorted(
                c["path"] for c in service.dir_tree(USER, location)["dirFileTrees"]["children"]
            )
            counts.append([service.open_file(USER, f)["fileContent"] for f in files])
        finally:
            service.close()
    assert counts[0] == counts[1]
    assert [rows[0][0] for rows in counts[0]] == ["1000", "15000", "5000", "50"]


def test_demo_is_shared_read_only_and_seeded_once(tmp_path: Path, run) -> None:
    def first_cell(service: LocalLinkis, code: str) -> str:
        submitted = run(service, code, creator="nb")
        location = service.history_get(USER, submitted["taskID"])["task"]["resultLocation"]
        (child,) = service.dir_tree(USER, location)["dirFileTrees"]["children"]
        return service.open_file(USER, child["path"])["fileContent"][0][0]

    service = LocalLinkis(tmp_path / "data")
    service.start()
    try:
        failed = run(service, "delete from demo.products where product_id > 10")
        task = service.history_get(USER, failed["taskID"])["task"]
        assert "shared and read-only" in task["errDesc"]
        run(service, "create table mine as select 42 as answer")
    finally:
        service.close()
    demo_file = tmp_path / "data" / "sql" / "demo.duckdb"
    (demo_file.parent / ".created").unlink()  # as if creating it had been cut short
    demo_file.write_bytes(b"half written")
    service = LocalLinkis(tmp_path / "data")
    service.start()
    try:
        assert first_cell(service, "select count(*) from demo.products") == "50"
        assert first_cell(service, "select answer from mine") == "42"  # survives a restart
    finally:
        service.close()


def test_huge_numbers_are_not_found_rather_than_crashing(
    linkis: LocalLinkis, finished: dict
) -> None:
    huge = 10**30
    assert error_of(linkis.history_get, USER, huge).message.startswith("The corresponding job")
    assert error_of(linkis.status, USER, str(huge), None).message == f"taskId {huge} is not exists."
    assert linkis.status(USER, EXAMPLE_EXEC_ID, huge)["status"] == CANCELLED
    assert linkis.history_list(USER, task_id=huge, start_date=-huge, end_date=huge)["tasks"] == []
    assert linkis.history_list(USER, page_now=huge, page_size=huge)["tasks"] == []
    assert linkis.open_file(USER, finished["result"], huge, 100)["fileContent"] == []
    assert linkis.log(USER, finished["execID"], huge, huge)["fromLine"] == huge


def test_user_names_that_are_not_folder_names_are_refused(linkis: LocalLinkis) -> None:
    for user in ("..", "../evil", "a/b", ""):
        error = error_of(linkis.submit, user, sql_body("select 1"))
        assert "cannot own jobs" in error.message
    body = load_example("execute-request.json")
    body["requestApplicationName"] = ".."
    assert error_of(linkis.execute, USER, body).code == 20009
