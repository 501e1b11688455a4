"""Faults between the client and the embedded server: jobs and results survive, or fail loudly.

Every test talks to a real server through `FaultProxy`, which injects gateway 502/503 pages,
dropped and reset connections, truncated bodies and delays.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from support.faultproxy import KINDS, FaultProxy
from support.inprocess import SESSION_TIMEOUT, InProcessServer
from support.serverproc import ServerProcess, start_server
from support.waiting import wait_until

from linkis_kernel import Job, LinkisClient, Snapshot
from linkis_kernel.client import (
    LinkisAuthError,
    LinkisJobError,
    LinkisSubmitUncertainError,
    LinkisTransportError,
)
from linkis_kernel.magics import MAGIC_COMMANDS
from linkis_kernel.results import PREFETCH_PAGES
from linkis_kernel.wire import CANCELLED, FAILED, RUNNING, SUCCEED

# About a second of DuckDB work (a cross join) with a small, exact answer.
SLOW_SQL = (
    "select a.range % 7 as k, count(*) as n, sum(b.range) as s "
    "from range(10000) a, range(10000) b group by k order by k"
)
SHELL_LINES = 30
# A form feed inside a log line must not split it: line numbers would shift and lines vanish.
NUMBERED_SHELL = (
    f"for i in $(seq 1 {SHELL_LINES}); do echo line-$i; printf 'log-line-%d\\f.\\n' $i >&2; "
    "sleep 0.03; done"
)
POLL_PATHS = r"/(status|log|progress|progressWithResource)$"
RESULT_ROWS = 1000
PAGE_SIZE = 100


def fast_polling(job: Job) -> Job:
    job.poll_min, job.poll_max, job.poll_active_max = 0.05, 0.3, 0.2
    return job


def follow(job: Job) -> list[str]:
    """Wait for `job` with fast polling; returns the log lines its snapshots streamed."""
    snapshots: list[Snapshot] = []
    fast_polling(job).wait(timeout=60, on_update=snapshots.append)
    return [line for snapshot in snapshots for line in snapshot.new_log["all"]]


def persisted_log(job: Job) -> list[str]:
    info = job.info()
    assert info.log_path, f"job {job.task_id} has no log path"
    return job.client.open_log(info.log_path).all


@pytest.fixture(scope="module")
def reference(linkis_server: ServerProcess) -> dict[str, Job]:
    """Fault-free runs of both jobs, for comparison."""
    client = linkis_server.linkis_client()
    jobs = {
        "sql": client.submit(SLOW_SQL, engine="spark", creator="nb"),
        "shell": client.submit(NUMBERED_SHELL, engine="shell", creator="nb"),
    }
    for job in jobs.values():
        fast_polling(job).wait(timeout=60)
    return jobs


@pytest.mark.parametrize("kind", KINDS)
def test_polling_faults_change_neither_state_log_nor_result(
    linkis_server: ServerProcess, reference: dict[str, Job], kind: str
) -> None:
    with FaultProxy(linkis_server.url, seed=len(kind)) as proxy:
        jobs = {
            "sql": linkis_server.linkis_client(proxy.url).submit(
                SLOW_SQL, engine="spark", creator="nb"
            ),
            "shell": linkis_server.linkis_client(proxy.url).submit(
                NUMBERED_SHELL, engine="shell", creator="nb"
            ),
        }
        proxy.inject(kind, POLL_PATHS, count=None, share=0.3, delay_s=0.2)
        with ThreadPoolExecutor(len(jobs)) as pool:  # both are polled while they run
            streamed = dict(zip(jobs, pool.map(follow, jobs.values()), strict=True))
        hits = [r for r in proxy.requests if r.fault == kind]
        proxy.clear()
        assert len(hits) >= 3, f"only {len(hits)} {kind} faults were injected"
        for name, job in jobs.items():
            assert job.state == SUCCEED, name
            assert job.log_lines == persisted_log(job), f"{name}: log differs from openLog"
            assert streamed[name] == job.log_lines, f"{name}: streamed lines differ"
        shell_log = [line for line in jobs["shell"].log_lines if "log-line-" in line]
        numbers = [int(re.search(r"log-line-(\d+)", line)[1]) for line in shell_log]
        assert numbers == list(range(1, SHELL_LINES + 1))
        pd.testing.assert_frame_equal(jobs["sql"].result(), reference["sql"].result())
        assert jobs["shell"].results()[0].data == reference["shell"].results()[0].data


class FaultAfterFirstPage(LinkisClient):
    """Arms `proxy` with a fault when the second `openFile` page is requested (mid-read)."""

    def __init__(
        self, proxy: FaultProxy, server: ServerProcess, kind: str, count: int | None, **options
    ):
        super().__init__(proxy.url, user=server.user, token=server.token, **options)
        self.proxy, self.kind, self.count = proxy, kind, count

    def open_file(self, path: str, *, page: int = 1, **kwargs):  # type: ignore[override]
        if page == 2:
            self.proxy.inject(self.kind, r"/openFile$", count=self.count)
        return super().open_file(path, page=page, **kwargs)


@pytest.fixture(scope="module")
def paged_task(linkis_server: ServerProcess) -> tuple[int, pd.DataFrame]:
    """A finished job with a 1,000-row table (ten pages of 100) and its fault-free frame."""
    client = linkis_server.linkis_client()
    code = f"select range as i, 'row ' || range as label from range({RESULT_ROWS})"
    job = client.submit(code, engine="spark", creator="nb").wait(timeout=30)
    return job.task_id, job.result(page_size=PAGE_SIZE)


@pytest.mark.parametrize("kind", ["html502", "reset", "truncate"])
def test_a_failed_page_is_fetched_again_and_the_result_is_complete(
    linkis_server: ServerProcess, paged_task: tuple[int, pd.DataFrame], kind: str
) -> None:
    task_id, expected = paged_task
    with FaultProxy(linkis_server.url) as proxy:
        client = FaultAfterFirstPage(proxy, linkis_server, kind, count=2)
        frame = client.job(task_id).result(page_size=PAGE_SIZE)
        pages = proxy.paths(r"/openFile$")
        faults = [r for r in proxy.requests if r.fault]
    # every page once, the empty one that ends the result, the two retries, and perhaps the
    # page after the end, asked for ahead
    needed = RESULT_ROWS // PAGE_SIZE + 1 + 2
    assert len(faults) == 2 and len(pages) - needed in (0, PREFETCH_PAGES - 1)
    assert len(frame) == RESULT_ROWS
    pd.testing.assert_frame_equal(frame, expected)


@pytest.mark.parametrize("kind", ["html502", "reset", "truncate"])
def test_a_page_that_keeps_failing_raises_instead_of_returning_a_short_result(
    linkis_server: ServerProcess, paged_task: tuple[int, pd.DataFrame], kind: str
) -> None:
    task_id, _ = paged_task
    with FaultProxy(linkis_server.url) as proxy:
        client = FaultAfterFirstPage(proxy, linkis_server, kind, count=None, retries=1)
        job = client.job(task_id)
        with pytest.raises(LinkisTransportError) as caught:
            job.results(page_size=PAGE_SIZE)
    text = str(caught.value)
    assert "openFile" in text and "2 attempts" in text, text


@pytest.mark.parametrize(("kind", "created"), [("drop", 0), ("reset", 1), ("truncate", 1)])
def test_a_submit_whose_answer_is_lost_is_never_resent(
    linkis_server: ServerProcess, kind: str, created: int
) -> None:
    direct = linkis_server.linkis_client()
    before = direct.jobhistory_list(page_size=1).total
    with FaultProxy(linkis_server.url) as proxy:
        client = linkis_server.linkis_client(proxy.url)
        proxy.inject(kind, r"/entrance/submit$", count=None)
        with pytest.raises(LinkisSubmitUncertainError) as caught:
            client.submit(f"select '{kind}' as fault", engine="spark", creator="nb")
        assert proxy.paths(r"/entrance/submit$") == ["/api/rest_j/v1/entrance/submit"]
    assert direct.jobhistory_list(page_size=1).total == before + created
    text = str(caught.value)
    assert "before submitting" in text and "Run `client.jobhistory_list()`" in text
    assert "Run `%linkis jobs`" in caught.value.describe(MAGIC_COMMANDS)


def test_session_expiry_mid_job_logs_in_again_once(clocked: InProcessServer) -> None:
    server = clocked
    with FaultProxy(server.url) as proxy:
        client = LinkisClient(proxy.url, user=server.user, password=server.password)
        job = fast_polling(client.submit("sleep 1; echo survived", engine="shell", creator="nb"))
        server.clock.advance(SESSION_TIMEOUT + 1)  # no request for longer than the timeout
        job.wait(timeout=30)
        assert job.state == SUCCEED and job.results()[0].data == "survived"
        # Each refusal (401) is followed by one login (after its publicKey) and the retried call.
        calls = [(r.path.rsplit("/", 1)[-1], r.status) for r in proxy.requests]
        trace = " ".join(f"{name}:{status}" for name, status in calls)  # whole, in a failure
        refusals = [i for i, (_, status) in enumerate(calls) if status == 401]
        logins = [i for i, (name, _) in enumerate(calls) if name == "login"]
        assert refusals and len(logins) == 1 + len(refusals), trace
        for refused, login in zip(refusals, logins[1:], strict=True):
            assert calls[refused + 1 : login + 2] == [
                ("publicKey", 200),
                ("login", 200),
                (calls[refused][0], 200),
            ], trace
        wrong = LinkisClient(proxy.url, user=server.user, password="not-the-password")
        before = len(proxy.requests)
        with pytest.raises(LinkisAuthError) as caught:
            wrong.submit("select 1", engine="spark")
        tried = [r.path.rsplit("/", 1)[-1] for r in proxy.requests[before:]]
        assert tried == ["publicKey", "login"], tried  # no retry, and nothing submitted
    text = str(caught.value)
    assert f"login of user {server.user!r}" in text and "LINKIS_PASSWORD" in text
    assert "not-the-password" not in text and server.password not in text


@pytest.mark.parametrize(
    ("how", "state", "reason"),
    [
        ("crash", FAILED, "restarted while this job ran"),
        ("stop", CANCELLED, "stopped before the job could finish"),
    ],
)
def test_a_server_restart_mid_job_ends_the_wait_with_the_reason(
    tmp_path: Path, how: str, state: str, reason: str
) -> None:
    data_dir = tmp_path / "data"
    first = start_server(data_dir)
    proxy = FaultProxy(first.url).start()
    try:
        client = first.linkis_client(proxy.url)
        finished = client.submit("select range as i from range(5)", creator="nb").wait(timeout=30)
        rows = finished.result()
        job = fast_polling(client.submit("sleep 6; echo never", engine="shell", creator="nb"))
        job.unreachable_warn_after = 0.5
        outcome: list[BaseException | Job] = []
        waiter = threading.Thread(target=lambda: outcome.append(_wait_catching(job)))
        waiter.start()
        _wait_for_state(job, RUNNING)
        if how == "crash":
            first.process.kill()  # no shutdown handler runs
        first.stop()
        with start_server(data_dir) as second:
            proxy.target_port = int(second.url.rsplit(":", 1)[1])
            waiter.join(30)
            assert not waiter.is_alive(), "Job.wait() hung after the restart"
            error = outcome[0]
            assert isinstance(error, LinkisJobError), error
            assert job.state == state and reason in str(error)
            again = client.job(finished.task_id)
            pd.testing.assert_frame_equal(again.result(), rows)
            assert again.log() == finished.log_lines
    finally:
        proxy.stop()


def _wait_catching(job: Job) -> BaseException | Job:
    try:
        return job.wait(timeout=60)
    except Exception as err:  # the test inspects what wait() raised
        return err


def _wait_for_state(job: Job, state: str, timeout: float = 10.0) -> None:
    wait_until(
        lambda: job.state == state,
        timeout,
        0.05,
        message=f"job {job.task_id} never reached {state}",
    )


def test_a_stale_job_is_warned_about_with_its_ids_and_left_running(
    linkis_server: ServerProcess,
) -> None:
    client = linkis_server.linkis_client()
    job = fast_polling(client.submit("sleep 1.5; echo still-here", engine="shell", creator="nb"))
    job.stale_after = 0.4
    snapshots: list[Snapshot] = []
    job.wait(timeout=30, on_update=snapshots.append)
    warnings = [s.warning for s in snapshots if s.warning]
    assert warnings, "no stale warning was shown"
    assert str(job.task_id) in warnings[0] and job.exec_id in warnings[0]
    assert job.state == SUCCEED and job.results()[0].data == "still-here"
