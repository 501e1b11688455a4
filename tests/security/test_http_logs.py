"""Log answers are bounded: openLog refuses logs over 30 MB as Linkis does (80033), and a page of
entrance/{id}/log holds at most 10000 lines and about 4 MiB whatever `size` asks.

(docs/linkis-rest.md, "Logs".)
"""

from __future__ import annotations

from pathlib import Path

from support.serverproc import ServerProcess
from support.twousers import envelope, guest_client
from support.waiting import wait_until

from linkis_kernel.local.logfile import LOG_PAGE_MAX_BYTES, LOG_PAGE_MAX_LINES, OPEN_LOG_MAX_BYTES

# stderr lines become log lines: one line of 6 MB, then 20000 short ones; then the job waits.
# (Python: a Shell job's lines are cut at 1 MiB as they are read.)
_NOISY_PYTHON = (
    "import sys, time\n"
    "sys.stderr.write('x' * 6000000 + '\\n')\n"
    "for n in range(1, 20001):\n    sys.stderr.write(f'line {n}\\n')\n"
    "sys.stderr.flush()\ntime.sleep(60)\n"
)


def test_open_log_of_more_than_30_mb_is_refused(linkis_server: ServerProcess) -> None:
    guest = guest_client(linkis_server)
    submitted = linkis_server.submit("select 1", engine="duckdb", session=guest)
    linkis_server.wait(submitted["execID"], session=guest)
    task_id = submitted["taskID"]
    task = envelope(guest.get(linkis_server.api(f"jobhistory/{task_id}/get"), timeout=10))
    log_path = task["data"]["task"]["logPath"]
    with Path(log_path.removeprefix("file://")).open("ab") as log:
        log.write(b"2026-01-01 00:00:00.000 INFO padding\n" * (OPEN_LOG_MAX_BYTES // 36))
    response = guest.get(linkis_server.api("filesystem/openLog"), params={"path": log_path})
    assert response.status_code == 400
    assert len(response.content) < 10_000
    body = envelope(response)
    assert "80033" in body["message"] and "exceeds 30MB" in body["message"]


def _log_page(server: ServerProcess, exec_id: str, size: int, from_line: int = 1) -> dict:
    response = guest_client(server).get(
        server.api(f"entrance/{exec_id}/log"),
        params={"fromLine": from_line, "size": size},
        timeout=30,
    )
    body = envelope(response)
    assert body["status"] == 0, body["message"]
    assert len(response.content) < 2 * LOG_PAGE_MAX_BYTES + 100_000
    return body["data"]


def test_entrance_log_pages_are_capped(linkis_server: ServerProcess) -> None:
    guest = guest_client(linkis_server)
    submitted = linkis_server.submit(_NOISY_PYTHON, engine="python", run_type="py", session=guest)
    exec_id = submitted["execID"]
    try:
        wait_until(
            lambda: "line 20000" in _log_page(linkis_server, exec_id, 200, 19_950)["log"][3],
            30,
            message="the job's log never got its 20000 lines",
        )
        # The lines before the 6 MB one: it does not fit the page's bytes, so it waits.
        first = _log_page(linkis_server, exec_id, 1_000_000)
        assert 0 < len(first["log"][3].split("\n")) < 20
        assert len(first["log"][3]) < 10_000
        # The 6 MB line alone, cut to the budget.
        big = _log_page(linkis_server, exec_id, 1_000_000, first["fromLine"])
        assert big["fromLine"] == first["fromLine"] + 1
        assert LOG_PAGE_MAX_BYTES - 100 < len(big["log"][3]) <= LOG_PAGE_MAX_BYTES
        # Then at most 10000 lines, whatever size asks.
        rest = _log_page(linkis_server, exec_id, 1_000_000, big["fromLine"])
        assert rest["fromLine"] == big["fromLine"] + LOG_PAGE_MAX_LINES
        lines = rest["log"][3].split("\n")
        assert lines[0].endswith(" line 1") and lines[-1].endswith(f" line {LOG_PAGE_MAX_LINES}")
    finally:
        guest.get(linkis_server.api(f"entrance/{exec_id}/kill"), timeout=10)
