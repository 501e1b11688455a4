"""Jobs over HTTP on the real server: lifecycle per engine, results, downloads, kill, isolation."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import openpyxl
import pytest
import requests
from support.serverproc import ServerProcess, start_server, wait_for_state
from support.twousers import guest_client
from support.waiting import wait_until

from linkis_kernel import wire

ROWS = 20
PAGE_SIZE = 7


def _get(server: ServerProcess, endpoint: str, **params: Any) -> requests.Response:
    return server.client.get(server.api(endpoint), params=params, timeout=10)


def _all_pages(server: ServerProcess, path: str) -> tuple[Any, list[list[str | None]], list[int]]:
    """Read a result with openFile, PAGE_SIZE rows at a time, until an empty page."""
    rows: list[list[str | None]] = []
    sizes = []
    for page in range(1, 100):
        data = server.get_data(
            "filesystem/openFile",
            path=path,
            page=page,
            pageSize=PAGE_SIZE,
            nullValue="LINKIS_NULL",
        )
        assert data["page"] == page and data["totalPage"] == 0
        assert data["totalLine"] == len(data["fileContent"])
        sizes.append(data["totalLine"])
        if not data["fileContent"]:
            return data["metadata"], rows, sizes
        rows += data["fileContent"]
    raise AssertionError("openFile never returned an empty page")


def _wait_with_log(server: ServerProcess, exec_id: str) -> tuple[str, list[int]]:
    """Poll status and the log (echoing fromLine) to the end; returns the state and fromLines."""
    from_lines = [0]

    def read_page() -> dict:
        log = server.get_data(f"entrance/{exec_id}/log", fromLine=from_lines[-1], size=3)
        assert len(log["log"]) == 4
        return log

    def final_state() -> str | None:
        state = server.get_data(f"entrance/{exec_id}/status")["status"]
        from_lines.append(read_page()["fromLine"])
        return state if state in wire.TERMINAL_STATES else None

    state = wait_until(final_state, 30, message=f"{exec_id} did not finish")
    while (next_line := read_page()["fromLine"]) != from_lines[-1]:  # drain what is left
        from_lines.append(next_line)
    return state, from_lines


ENGINES = {
    "sql-on-spark": (
        "spark",
        "sql",
        f"select range as n, 'row ' || range as label, "
        f"case when range % 5 = 0 then null else range * 1.5 end as x from range({ROWS})",
    ),
    "python": ("python", "python", f"for i in range({ROWS}):\n    print(f'line {{i}}')"),
    "shell": ("shell", "shell", f"for i in $(seq 0 {ROWS - 1}); do echo line $i; done"),
}


@pytest.mark.parametrize("engine_case", sorted(ENGINES))
def test_job_lifecycle(linkis_server: ServerProcess, engine_case: str) -> None:
    engine, run_type, code = ENGINES[engine_case]
    job = linkis_server.submit(code, engine=engine, run_type=run_type)
    assert isinstance(job["taskID"], int) and job["execID"].startswith(wire.EXEC_ID_PREFIX)

    state, from_lines = _wait_with_log(linkis_server, job["execID"])
    assert state == wire.SUCCEED
    assert from_lines == sorted(from_lines) and from_lines[-1] > 3  # it advanced, in steps
    progress = linkis_server.get_data(f"entrance/{job['execID']}/progress")
    assert progress["progress"] == 1.0
    task = linkis_server.get_data(f"jobhistory/{job['taskID']}/get")["task"]
    assert task["status"] == wire.SUCCEED and task["progress"] == "1.0"

    (path,) = linkis_server.result_paths(job["taskID"])
    metadata, rows, sizes = _all_pages(linkis_server, path)
    assert sizes == [7, 7, 6, 0]
    csv = _get(linkis_server, "filesystem/resultsetToExcel", path=path, nullValue="NULL")
    assert csv.status_code == 200
    assert csv.headers["Content-Disposition"] == "attachment;filename=downloadResultset.csv"
    lines = csv.text.splitlines()
    if engine == "spark":
        names = [column["columnName"] for column in metadata]
        assert names == ["n", "label", "x"]
        assert rows[0] == ["0", "row 0", None] and rows[1][:2] == ["1", "row 1"]
        assert lines[0] == "n,label,x"
        expected = [",".join("NULL" if v is None else v for v in row) for row in rows]
        assert lines[1:] == expected
        _assert_xlsx_matches(linkis_server, path, names, rows)
    else:
        assert metadata == "NULL"
        assert rows == [[f"line {i}"] for i in range(ROWS)]
        assert lines == [f"line {i}" for i in range(ROWS)]
        xlsx = _get(linkis_server, "filesystem/resultsetToExcel", path=path, outputFileType="xlsx")
        assert xlsx.status_code == 200 and xlsx.text.startswith("error(错误):")
        assert "80024" in xlsx.text


def _assert_xlsx_matches(
    server: ServerProcess, path: str, names: list[str], rows: list[list[str | None]]
) -> None:
    response = _get(
        server,
        "filesystem/resultsetToExcel",
        path=path,
        outputFileType="xlsx",
        outputFileName="numbers",
        sheetName="data",
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert response.headers["Content-Disposition"] == "attachment;filename=numbers.xlsx"
    sheet = openpyxl.load_workbook(io.BytesIO(response.content))["data"]
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == names
    assert len(values) == len(rows) + 1
    for got, want in zip(values[1:], rows, strict=True):
        assert got[0] == int(want[0]) and got[1] == want[1]
        assert got[2] == ("NULL" if want[2] is None else float(want[2]))


@pytest.fixture(scope="module")
def table_result(linkis_server: ServerProcess) -> str:
    """A result set with awkward cells: separators, quotes, newlines, nulls, unicode."""
    code = (
        "select 1 as id, 'a,b' as text, 'say \"hi\"' as quoted, null as empty "
        "union all select 2, 'two\nlines', '中文', 'x' order by id"
    )
    job = linkis_server.submit(code)
    assert linkis_server.wait(job["execID"]) == wire.SUCCEED
    return linkis_server.result_paths(job["taskID"])[0]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, 'id,text,quoted,empty\n1,a,b,say "hi",NULL\n2,two lines,中文,x\n'),
        ({"csvSeparator": "t"}, 'id\ttext\tquoted\tempty\n1\ta,b\tsay "hi"\tNULL\n'),
        ({"csvSeperator": ";"}, 'id;text;quoted;empty\n1;a,b;say "hi";NULL\n'),
        ({"nullValue": "BLANK"}, 'id,text,quoted,empty\n1,a,b,say "hi",\n'),
        ({"nullValue": "-"}, 'id,text,quoted,empty\n1,a,b,say "hi",-\n'),
        (
            {"quoteRetouchEnable": "true"},
            '"id","text","quoted","empty"\n"1","a,b","say hi","NULL"\n',
        ),
        ({"keepNewline": "true"}, "2,two\nlines,中文,x\n"),
        ({"limit": "1"}, 'id,text,quoted,empty\n1,a,b,say "hi",NULL\n'),
    ],
)
def test_csv_download_options(
    linkis_server: ServerProcess, table_result: str, params: dict, expected: str
) -> None:
    response = _get(linkis_server, "filesystem/resultsetToExcel", path=table_result, **params)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    text = response.content.decode()
    assert expected in text
    if params.get("limit") == "1":
        assert text.count("\n") == 2


def test_csv_download_in_another_charset(linkis_server: ServerProcess, table_result: str) -> None:
    response = _get(
        linkis_server,
        "filesystem/resultsetToExcel",
        path=table_result,
        charset="gbk",
        outputFileName="结果",
    )
    assert response.headers["Content-Type"] == "text/plain; charset=gbk"
    assert "中文" in response.content.decode("gbk")
    # Linkis labels the UTF-8 bytes of the name as ISO-8859-1.
    disposition = response.headers["Content-Disposition"].encode("latin-1").decode()
    assert disposition == "attachment;filename=结果.csv"


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"outputFileType": "pdf"}, "Unsupported outputFileType 'pdf'; use csv or xlsx"),
        ({"charset": "no-such-charset"}, "Unknown charset"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "many"}, "Parameter limit must be an integer"),
        ({"outputFileType": "xlsx", "sheetName": "bad[name]"}, "Invalid sheetName"),
    ],
)
def test_download_errors_are_text_bodies(
    linkis_server: ServerProcess, table_result: str, params: dict, fragment: str
) -> None:
    response = _get(linkis_server, "filesystem/resultsetToExcel", path=table_result, **params)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.text.startswith("error(错误):") and fragment in response.text


def test_download_of_missing_path(linkis_server: ServerProcess) -> None:
    response = _get(linkis_server, "filesystem/resultsetToExcel")
    assert response.status_code == 200
    assert response.text.startswith("error(错误):") and "80004" in response.text


def test_download_is_capped_at_5000_rows_by_default(linkis_server: ServerProcess) -> None:
    # Not creator IDE: Linkis appends `limit 5000` to IDE SQL, so the result would be capped.
    job = linkis_server.submit("select range as n from range(6000)", creator="nbtest")
    assert linkis_server.wait(job["execID"]) == wire.SUCCEED
    path = linkis_server.result_paths(job["taskID"])[0]
    page = linkis_server.get_data("filesystem/openFile", path=path, page=1, pageSize=100000)
    assert page["totalLine"] == 6000
    text = _get(linkis_server, "filesystem/resultsetToExcel", path=path).text
    assert text.count("\n") == 1 + 5000
    smaller = _get(linkis_server, "filesystem/resultsetToExcel", path=path, limit=10).text
    assert smaller.count("\n") == 1 + 10


# -- kill, restart, isolation --------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that runs one job at a time, so the next one queues."""
    with start_server(tmp_path_factory.mktemp("one-worker"), args=["--workers", "1"]) as server:
        yield server


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_kill_queued_and_running_jobs(one_worker: ServerProcess, method: str) -> None:
    running = one_worker.submit("sleep 30", engine="shell", run_type="shell")
    wait_for_state(one_worker, running["execID"], wire.RUNNING)
    queued = [one_worker.submit(f"select {n} as answer") for n in range(2)]
    try:
        for ahead, job in enumerate(queued):
            status = one_worker.get_data(f"entrance/{job['execID']}/status")["status"]
            assert status == wire.SCHEDULED
            log = one_worker.get_data(f"entrance/{job['execID']}/log", fromLine=0, size=-1)
            assert f"{ahead} job(s) ahead of you in the queue" in log["log"][3]
        started = time.monotonic()
        for job in (queued[1], running):
            answer = one_worker.client.request(
                method, one_worker.api(f"entrance/{job['execID']}/kill"), timeout=10
            ).json()
            assert answer["message"] == "Successfully killed the job(成功kill了job)"
            assert answer["data"] == {"execID": job["execID"]}
        assert one_worker.wait(queued[1]["execID"]) == wire.CANCELLED
        assert one_worker.wait(running["execID"]) == wire.CANCELLED
        assert time.monotonic() - started < 25  # the kill ended it, not its 30 s sleep
        assert one_worker.wait(queued[0]["execID"]) == wire.SUCCEED  # the worker moved on
    finally:
        for job in (running, *queued):
            one_worker.client.get(one_worker.api(f"entrance/{job['execID']}/kill"), timeout=10)
    task = one_worker.get_data(f"jobhistory/{running['taskID']}/get")["task"]
    assert task["status"] == wire.CANCELLED and task["progress"] == "1.0"


def test_kill_jobs_in_a_batch(one_worker: ServerProcess) -> None:
    jobs = [one_worker.submit("sleep 30", engine="shell", run_type="shell") for _ in range(2)]
    answer = one_worker.client.post(
        one_worker.api("entrance/killJobs"),
        json={"idList": [j["execID"] for j in jobs], "taskIDList": [j["taskID"] for j in jobs]},
        timeout=10,
    ).json()
    assert answer["status"] == 0 and answer["message"] == "success"
    assert [m["status"] for m in answer["data"]["messages"]] == [0, 0]
    for job in jobs:
        assert one_worker.wait(job["execID"]) == wire.CANCELLED


def test_restart_keeps_history_results_and_logs(tmp_path_factory: pytest.TempPathFactory) -> None:
    data_dir = tmp_path_factory.mktemp("restart")
    with start_server(data_dir) as first:
        job = first.submit("select 7 as seven")
        assert first.wait(job["execID"]) == wire.SUCCEED
        before = first.get_data(f"jobhistory/{job['taskID']}/get")["task"]
        credentials = (first.password, first.token)
    assert not (data_dir / "connection.json").exists()  # removed on a clean stop
    with start_server(data_dir) as second:
        assert (second.password, second.token) == credentials  # stable across restarts
        after = second.get_data(f"jobhistory/{job['taskID']}/get")["task"]
        assert after == before
        status = second.get_data(f"entrance/{job['taskID']}/status")
        assert status == {"status": wire.SUCCEED, "execID": "", "taskID": str(job["taskID"])}
        (path,) = second.result_paths(job["taskID"])
        assert second.get_data("filesystem/openFile", path=path)["fileContent"] == [["7"]]
        log = second.get_data("filesystem/openLog", path=after["logPath"])["log"]
        assert "Congratulations" in log[3]
        newer = second.submit("select 8")
        assert newer["taskID"] > job["taskID"] and newer["execID"] != job["execID"]
        assert second.wait(newer["execID"]) == wire.SUCCEED


@pytest.fixture(scope="module")
def owner_job(linkis_server: ServerProcess) -> dict[str, Any]:
    """A finished job of the main user, with its result and log paths."""
    job = linkis_server.submit("select 'mine' as secret")
    assert linkis_server.wait(job["execID"]) == wire.SUCCEED
    task = linkis_server.get_data(f"jobhistory/{job['taskID']}/get")["task"]
    result = linkis_server.result_paths(job["taskID"])[0]
    return {**job, "log": task["logPath"], "dir": task["resultLocation"], "result": result}


@pytest.fixture(scope="module")
def guest(linkis_server: ServerProcess) -> requests.Session:
    return guest_client(linkis_server)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("entrance/{execID}/status", {}),
        ("entrance/{execID}/log", {}),
        ("entrance/{execID}/progress", {}),
        ("entrance/{execID}/progressWithResource", {}),
        ("entrance/{taskID}/status", {}),
        ("jobhistory/{taskID}/get", {}),
        ("filesystem/getDirFileTrees", {"path": "{dir}"}),
        ("filesystem/openFile", {"path": "{result}"}),
        ("filesystem/openLog", {"path": "{log}"}),
    ],
)
def test_users_cannot_see_each_others_jobs(
    linkis_server: ServerProcess, owner_job: dict, guest: requests.Session, path: str, params: dict
) -> None:
    filled = {key: value.format(**owner_job) for key, value in params.items()}
    response = guest.get(linkis_server.api(path.format(**owner_job)), params=filled, timeout=10)
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["status"] == wire.STATUS_NO_PERMISSION
    assert "mine" not in response.text


def test_guest_cannot_download_or_kill_the_owners_job(
    linkis_server: ServerProcess, owner_job: dict, guest: requests.Session
) -> None:
    download = guest.get(
        linkis_server.api("filesystem/resultsetToExcel"),
        params={"path": owner_job["result"]},
        timeout=10,
    )
    assert download.text.startswith("error(错误):") and "mine" not in download.text
    kill = guest.get(linkis_server.api(f"entrance/{owner_job['execID']}/kill"), timeout=10)
    assert kill.status_code == 400
    assert kill.json()["message"].startswith("You have no permission to kill this job")
    history = guest.get(linkis_server.api("jobhistory/list"), timeout=10).json()["data"]
    assert owner_job["taskID"] not in [task["taskID"] for task in history["tasks"]]


TRAVERSALS = [
    "/etc/passwd",
    "file:///etc/passwd",
    "{data_dir}/credentials.json",
    "{data_dir}/connection.json",
    "{dir}/../../../../../credentials.json",
    "{dir}/../../guest/1",
    "hdfs:///tmp/linkis/result",
    "relative/path",
]


@pytest.mark.parametrize("endpoint", ["getDirFileTrees", "openFile", "openLog"])
@pytest.mark.parametrize("raw", TRAVERSALS)
def test_path_traversal_is_refused(
    linkis_server: ServerProcess, owner_job: dict, endpoint: str, raw: str
) -> None:
    path = raw.format(data_dir=linkis_server.data_dir, **owner_job)
    response = _get(linkis_server, f"filesystem/{endpoint}", path=path)
    assert response.status_code == 403, response.text
    assert response.json()["status"] == wire.STATUS_NO_PERMISSION
    assert linkis_server.password not in response.text


@pytest.mark.parametrize("raw", TRAVERSALS)
def test_path_traversal_is_refused_for_downloads(
    linkis_server: ServerProcess, owner_job: dict, raw: str
) -> None:
    path = raw.format(data_dir=linkis_server.data_dir, **owner_job)
    response = _get(linkis_server, "filesystem/resultsetToExcel", path=path)
    # resultsetToExcel reports every error as an HTTP 200 text body
    # (docs/linkis-rest.md, "Result files").
    assert response.status_code == 200
    assert response.text.startswith("error(错误):Path ")
    assert linkis_server.password not in response.text


def test_all_databases_with_tables(one_worker: ServerProcess) -> None:
    job = one_worker.submit("create schema old_bak; create table old_bak.t (a int)")
    assert one_worker.wait(job["execID"]) == wire.SUCCEED
    dbs = [db["dbName"] for db in one_worker.get_data("datasource/dbs")["dbs"]]
    assert "old_bak" in dbs
    everything = one_worker.get_data("datasource/all")["dbs"]
    names = [db["databaseName"] for db in everything]
    assert names == [name for name in dbs if "bak" not in name]  # wds.linkis.db.filter.keywords
    demo = next(db for db in everything if db["databaseName"] == "demo")
    tables = one_worker.get_data("datasource/tables", database="demo")["tables"]
    assert demo["tables"] == tables and tables
