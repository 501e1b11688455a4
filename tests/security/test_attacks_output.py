"""Output that would fill the server's memory: a job writing one line without end (Shell stdout
and stderr, Python print) must not make the server hold it whole; the line is cut into rows of
at most MAX_LINE_BYTES, and a single engine message over MAX_MESSAGE_BYTES is dropped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from support.serverproc import ServerProcess, start_server
from support.twousers import ALICE, BOB, user_session

from linkis_kernel import wire
from linkis_kernel.local.dolphin import MAX_PAGE_BYTES
from linkis_kernel.local.engines import MAX_LINE_BYTES
from linkis_kernel.local.sessions import MSG_MESSAGE_DROPPED


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("output"), users=[ALICE, BOB]) as started:
        yield started


@pytest.fixture(scope="module")
def bob(server: ServerProcess) -> requests.Session:
    return user_session(server, BOB)


def _run(
    server: ServerProcess, bob: requests.Session, code: str, engine: str
) -> tuple[list[str], str]:
    """Run `code` as bob; the rows of its text result and its log."""
    job = server.submit(
        code, session=bob, engine=engine, run_type="py" if engine == "python" else engine
    )
    assert server.wait(job["execID"], session=bob, timeout=90) == wire.SUCCEED
    result = server.result_rows(job["taskID"], session=bob, timeout=60, pageSize=100)
    rows = [row[0] for row in result]
    log = bob.get(server.api(f"entrance/{job['execID']}/log"), params={"fromLine": 1}, timeout=10)
    return rows, "\n".join(log.json()["data"]["log"])


LONG = 5 * MAX_LINE_BYTES // 2
# The row lengths of a LONG line, a newline, then "after": the line cut at MAX_LINE_BYTES.
CUT_ROWS = [MAX_LINE_BYTES, MAX_LINE_BYTES, LONG % MAX_LINE_BYTES, len("after")]


def test_a_shell_line_without_end_is_cut_into_rows(
    server: ServerProcess, bob: requests.Session
) -> None:
    code = f"head -c {LONG} /dev/zero | tr '\\0' a; echo; head -c {LONG} /dev/zero >&2; echo after"
    rows, log = _run(server, bob, code, "shell")
    assert [len(row) for row in rows] == CUT_ROWS
    assert rows[-1] == "after"
    assert max(len(line) for line in log.splitlines()) < MAX_LINE_BYTES + 100


def test_a_python_line_without_end_is_cut_into_rows(
    server: ServerProcess, bob: requests.Session
) -> None:
    code = f"import sys\nsys.stdout.write('a' * {LONG})\nprint()\nprint('after')"
    rows, _ = _run(server, bob, code, "python")
    assert [len(row) for row in rows] == CUT_ROWS


def test_one_engine_message_too_large_is_dropped(
    server: ServerProcess, bob: requests.Session
) -> None:
    code = "print('a' * (65 << 20))\nprint('after')"
    rows, log = _run(server, bob, code, "python")
    assert rows[-1] == "after" and max(len(row) for row in rows) <= MAX_LINE_BYTES
    assert MSG_MESSAGE_DROPPED in log


def test_a_page_of_wide_rows_is_refused_not_read_whole(
    server: ServerProcess, bob: requests.Session
) -> None:
    """openFile reads at most MAX_PAGE_BYTES for one page; asking for fewer rows works."""
    width = 100_000
    rows = MAX_PAGE_BYTES // width + 10
    job = server.submit(f"select repeat('x', {width}) as s from range({rows})", session=bob)
    assert server.wait(job["execID"], session=bob, timeout=90) == wire.SUCCEED
    task = bob.get(server.api(f"jobhistory/{job['taskID']}/get"), timeout=10).json()["data"]
    path = f"{task['task']['resultLocation']}/_0.dolphin"

    def page(size: int) -> dict:
        params = {"path": path, "pageSize": size}
        answer = bob.get(server.api("filesystem/openFile"), params=params, timeout=60)
        assert answer.status_code != 500
        return answer.json()

    refused = page(rows)
    assert refused["status"] != 0
    assert "ask for fewer rows per page" in refused["message"]
    assert str(server.data_dir) not in refused["message"].replace(path, "")
    fits = page(MAX_PAGE_BYTES // width // 2)
    assert fits["status"] == 0 and fits["data"]["fileContent"][0][0] == "x" * width
