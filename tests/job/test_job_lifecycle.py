"""Job lifecycle against the real embedded server: submit, poll, stream, finish, results."""

from __future__ import annotations

import time
from decimal import Decimal

import pandas as pd
import pytest
from support.faultproxy import FaultProxy
from support.waiting import wait_until

from linkis_kernel import Job, LinkisClient, Snapshot
from linkis_kernel.client import (
    ATTACH,
    LinkisError,
    LinkisJobError,
    LinkisTimeoutError,
    LinkisTransportError,
    NextStep,
)
from linkis_kernel.results import PREFETCH_PAGES
from linkis_kernel.wire import CANCELLED, RUNNING, SUCCEED, TERMINAL_STATES


class CountingClient(LinkisClient):
    """Counts `openFile` pages, to check that paging asks for no more than it needs."""

    pages = 0

    def open_file(self, *args, **kwargs):  # type: ignore[override]
        self.pages += 1
        return super().open_file(*args, **kwargs)


@pytest.fixture(scope="module")
def client(linkis_server) -> LinkisClient:
    return CountingClient(linkis_server.url, user=linkis_server.user, token=linkis_server.token)


def run(client: LinkisClient, code: str, **options) -> tuple[Job, list[Snapshot]]:
    snapshots: list[Snapshot] = []
    job = client.submit(code, **options)
    job.wait(timeout=30, on_update=snapshots.append)
    return job, snapshots


def assert_well_formed(snapshots: list[Snapshot], state: str = SUCCEED) -> None:
    progress = [s.progress for s in snapshots]
    assert progress == sorted(progress) and all(0.0 <= p <= 1.0 for p in progress)
    assert [s.final for s in snapshots].count(True) == 1 and snapshots[-1].final
    assert snapshots[-1].state == state and snapshots[-1].progress == 1.0
    assert all(s.progress < 1.0 for s in snapshots[:-1])
    elapsed = [s.elapsed for s in snapshots]
    assert elapsed == sorted(elapsed)


def test_sql_job_runs_to_a_typed_dataframe(client: LinkisClient) -> None:
    job, snapshots = run(client, "select 42 as answer, 'x' as name", engine="spark", creator="nb")
    assert job.state == SUCCEED and job.done and job.progress == 1.0
    assert_well_formed(snapshots)
    assert job.engine == "spark-3.2.1" and job.run_type == "sql"
    streamed = [line for s in snapshots for line in s.new_log["all"]]
    assert streamed == job.log_lines and job.log_lines == job.log()
    frame = job.result()
    assert frame.to_dict("records") == [{"answer": 42, "name": "x"}]
    assert str(frame["answer"].dtype) == "Int32" and str(frame["name"].dtype) == "string"


def test_python_and_shell_jobs_return_text(client: LinkisClient) -> None:
    py, py_snaps = run(client, "print('hello from python')\nprint(6 * 7)", engine="python")
    sh, sh_snaps = run(client, "echo hello from shell; echo oops >&2", engine="shell")
    assert_well_formed(py_snaps)
    assert_well_formed(sh_snaps)
    assert [r.kind for r in py.results()] == ["text"]
    assert py.results()[0].data.splitlines() == ["hello from python", "42"]
    assert sh.results()[0].data == "hello from shell"
    assert any("oops" in line for line in sh.log_lines)


def test_every_column_type_round_trips_with_nulls(client: LinkisClient) -> None:
    code = """
        select * from (values
          (1::int, 9007199254740993::bigint, 2::smallint, 3::tinyint, 1.5::double,
           12.34::decimal(10,2), true, date '2024-02-29', timestamp '2024-02-29 13:14:15.123456',
           'NULL', [1, 2]),
          (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
        ) t(i, b, s, ti, d, dec, ok, day, ts, v, l)
    """
    job, _ = run(client, code, engine="spark", creator="nb")
    frame = job.result()
    assert {c: str(t) for c, t in frame.dtypes.items()} == {
        "i": "Int32",
        "b": "Int64",
        "s": "Int16",
        "ti": "Int8",
        "d": "float64",
        "dec": "object",
        "ok": "boolean",
        "day": "datetime64[us]",
        "ts": "datetime64[us]",
        "v": "string",
        "l": "object",
    }
    first, nulls = frame.iloc[0], frame.iloc[1]
    assert first["b"] == 9007199254740993 and first["ti"] == 3 and first["d"] == 1.5
    assert first["dec"] == Decimal("12.34") and frame["ok"].tolist() == [True, pd.NA]
    assert first["day"] == pd.Timestamp("2024-02-29")
    assert first["ts"] == pd.Timestamp("2024-02-29 13:14:15.123456")
    assert first["v"] == "NULL" and first["l"] == "[1, 2]"
    assert nulls[["i", "b", "s", "ti", "ok", "v"]].isna().all()
    assert pd.isna(nulls["d"]) and nulls["dec"] is None and nulls["l"] is None
    assert pd.isna(nulls["day"]) and pd.isna(nulls["ts"])
    floats = job.result(decimal="float")
    assert str(floats["dec"].dtype) == "float64" and floats["dec"][0] == 12.34


def test_three_statements_give_three_result_sets_in_order(client: LinkisClient) -> None:
    job, _ = run(client, "select 1 as a; select 'two' as b; select 3 as c", engine="spark")
    sets = job.results()
    assert [(s.index, s.kind) for s in sets] == [(0, "table"), (1, "table"), (2, "table")]
    assert [list(s.data.columns) for s in sets] == [["a"], ["b"], ["c"]]
    assert job.result()["c"].tolist() == [3]


def test_paging_crosses_page_boundaries_and_stops_at_the_limit(client: LinkisClient) -> None:
    job, _ = run(client, "select range as n from range(100)", engine="spark", creator="nb")
    client.pages = 0
    (full,) = job.results(page_size=7)
    assert full.data["n"].tolist() == list(range(100)) and not full.truncated
    # 14 full pages and one short one; the page after it may have been asked for ahead
    assert client.pages - 15 in (0, PREFETCH_PAGES - 1)

    client.pages = 0
    (limited,) = job.results(limit=10)
    assert limited.data["n"].tolist() == list(range(10)) and limited.rows_fetched == 10
    assert limited.truncated and limited.truncation == "fetch limit of 10 rows"
    assert client.pages == 1
    (exact,) = job.results(limit=100)
    assert len(exact.data) == 100 and not exact.truncated


def test_a_result_of_exactly_one_page(client: LinkisClient) -> None:
    job, _ = run(client, "select range as n from range(7)", engine="spark", creator="nb")
    client.pages = 0
    (result,) = job.results(page_size=7)
    assert result.data["n"].tolist() == list(range(7)) and not result.truncated
    # the full page, then the empty one that ends it (and perhaps one asked for ahead)
    assert client.pages - 2 in (0, PREFETCH_PAGES - 1)


def test_the_ide_row_cap_is_reported_and_other_creators_get_everything(
    client: LinkisClient,
) -> None:
    ide, _ = run(client, "select range as n from range(6000)", engine="spark", creator="IDE")
    (capped,) = ide.results()
    assert capped.rows_fetched == 5000 and capped.truncated
    assert "5000-row cap for creator IDE" in capped.truncation
    assert "5000-row cap" in capped.footer()
    other, _ = run(client, "select range as n from range(6000)", engine="spark", creator="nb")
    (whole,) = other.results()
    assert whole.rows_fetched == 6000 and not whole.truncated


def test_a_failing_query_raises_with_the_linkis_error(client: LinkisClient) -> None:
    job = client.submit("select * from no_such_table", engine="spark", creator="nb")
    with pytest.raises(LinkisJobError) as caught:
        job.wait(timeout=30)
    error = caught.value
    assert error.task_id == job.task_id and error.state == "Failed"
    assert error.err_code and "no_such_table" in (error.err_desc or "")
    assert error.error_lines and any("no_such_table" in line for line in error.error_lines)
    rendered = "\n".join(error._render_traceback_())
    assert f"errCode {error.err_code}" in rendered and ".log()` to see" in rendered
    assert job.wait(raise_on_failure=False).state == "Failed"


def test_a_wait_timeout_leaves_the_job_running_and_kill_cancels_it(client: LinkisClient) -> None:
    job = client.submit("sleep 30", engine="shell", creator="nb")
    started = time.monotonic()
    with pytest.raises(LinkisTimeoutError) as caught:
        job.wait(timeout=0.5)
    assert time.monotonic() - started < 25  # at its own timeout, not at the job's end (30 s)
    assert caught.value.task_id == job.task_id and f"client.job({job.task_id})`" in str(
        caught.value
    )
    assert client.status(job.exec_id).state not in TERMINAL_STATES
    with pytest.raises(LinkisError, match=r"still Running: wait for it with job\.wait\(\)"):
        job.result()
    report = job.kill()
    assert report.startswith(f"Killed Linkis job {job.task_id}") and job.state == CANCELLED
    assert client.jobhistory_get(job.task_id).status == CANCELLED
    assert "already finished (Cancelled)" in job.kill()


def test_polling_survives_dropped_requests(linkis_server) -> None:
    with FaultProxy(linkis_server.url) as proxy:
        flaky = linkis_server.linkis_client(proxy.url, retries=0)
        job = flaky.submit("sleep 0.5; echo done", engine="shell", creator="nb")
        proxy.inject("reset", r"/status$", count=2)
        proxy.inject("drop", r"/log$", count=1)
        job.wait(timeout=30)
        assert job.state == SUCCEED and job.results()[0].data == "done"
        assert len([r for r in proxy.requests if r.fault]) == 3


def test_a_two_second_job_needs_few_requests_and_a_stale_one_is_only_warned_about(
    linkis_server,
) -> None:
    with FaultProxy(linkis_server.url) as proxy:
        counted = linkis_server.linkis_client(proxy.url)
        job = counted.submit("sleep 2; echo ok", engine="shell", creator="nb")
        job.stale_after = 0.5
        snapshots: list[Snapshot] = []
        job.wait(timeout=30, on_update=snapshots.append)
        assert len(proxy.requests) < 40, proxy.paths()
    assert job.state == SUCCEED and any(s.state == RUNNING for s in snapshots)
    warned = [s for s in snapshots if s.warning]
    assert warned and f"job {warned[0].task_id}" in (warned[0].warning or "")
    assert "still Running" in (warned[0].warning or "") and "Ctrl-C" in (warned[0].warning or "")
    assert warned[0].next_steps == (NextStep(ATTACH, job.task_id, "to attach to it later"),)
    assert snapshots[-1].warning is None and snapshots[-1].next_steps == ()


def test_an_unreachable_server_is_warned_about_then_given_up_on(linkis_server) -> None:
    with FaultProxy(linkis_server.url) as proxy:
        flaky = linkis_server.linkis_client(proxy.url, retries=0)
        job = flaky.submit("sleep 30", engine="shell", creator="nb")
        job.unreachable_warn_after, job.unreachable_give_up_after = 0.2, 1.0
        proxy.inject("html502", r"/status$", count=None)
        snapshots: list[Snapshot] = []
        with pytest.raises(LinkisTransportError) as caught:
            job.wait(timeout=30, on_update=snapshots.append)
        assert any("has not answered" in (s.warning or "") for s in snapshots)
        assert f"job {job.task_id}" in str(caught.value)
        assert f"client.job({job.task_id})`" in str(caught.value)
        proxy.clear()
        assert job.kill().startswith(f"Killed Linkis job {job.task_id}")


def test_refresh_drives_a_job_without_wait(client: LinkisClient) -> None:
    job = client.submit("sleep 0.3; echo polled", engine="shell", creator="nb")
    snapshots = [job.refresh()]

    def final() -> bool:
        snapshots.append(job.refresh())
        return snapshots[-1].final

    if not snapshots[0].final:
        wait_until(final, 20, 0.1, message="refresh() never reported the job final")
    assert snapshots[-1].state == SUCCEED and job.last_snapshot is snapshots[-1]
    assert [line for s in snapshots for line in s.new_log["all"]] == job.log_lines
    assert job.refresh().final and job.refresh().new_log["all"] == []


def test_download_saves_one_result_set(client: LinkisClient, tmp_path) -> None:
    from openpyxl import load_workbook

    job, _ = run(client, "select 1 as a; select 'x' as b, 2 as c", engine="spark", creator="nb")
    last = job.download(tmp_path / "last.csv")
    assert last.read_text().splitlines() == ["b,c", "x,2"]
    first = job.download(tmp_path / "first.xlsx", format="xlsx", index=0)
    sheet = load_workbook(first).active
    assert [[cell.value for cell in row] for row in sheet.iter_rows()][:2] == [["a"], [1]]
    with pytest.raises(LinkisError, match="index 5 is out of range"):
        job.download(tmp_path / "none.csv", index=5)


def test_an_unwatched_wait_reads_only_the_status_then_the_whole_log(linkis_server) -> None:
    with FaultProxy(linkis_server.url) as proxy:
        counted = linkis_server.linkis_client(proxy.url)
        job = counted.submit("sleep 2; echo ok", engine="shell", creator="nb")
        job.wait(timeout=30)
        kinds = [path.rsplit("/", 1)[-1] for path in proxy.paths()]
    assert job.state == SUCCEED
    assert "progressWithResource" not in kinds
    assert kinds.count("log") == 1 and kinds.index("log") > kinds.index("status")
    assert len(kinds) < 30, kinds  # ~20 rounds: the lag stays a small share of the 2 s
    assert job.log_lines == job.log(), "the one final read returns the whole log"


def test_results_wait_for_job_history_to_catch_up_with_the_entrance(linkis_server) -> None:
    client = linkis_server.linkis_client()
    job = client.submit("sleep 1; echo late", engine="shell", creator="nb")
    job.state = SUCCEED  # what the entrance says a moment before job history records the end
    assert job.results()[0].data == "late"
    assert job.info().status == SUCCEED
