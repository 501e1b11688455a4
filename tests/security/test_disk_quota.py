"""Disk quotas: one user cannot fill the disk for everyone, and a user over the quota can still
free space. A job of bob's that passes the quota is stopped (Failed) while alice's jobs run; over
the quota, bob's jobs are accepted with a warning, one that deletes files runs to its end, one
that writes more than the allowance is stopped."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import requests
from support.serverproc import ServerProcess, start_server
from support.twousers import ALICE, BOB, envelope, user_session

from linkis_kernel import wire
from linkis_kernel.local.paths import Layout
from linkis_kernel.local.quota import (
    ALLOWANCE,
    ERR_DISK_QUOTA,
    REFRESH_SECONDS,
    DiskQuota,
    parse_size,
)

QUOTA = ["--disk-quota", "5MB"]
QUOTA_BYTES = 5 << 20
KB = 1024
GROW = 'while true; do head -c 262144 /dev/zero >> "$HOME/grow.bin"; sleep 0.05; done'
# Writes at most 256 KB a second, so it passes the allowance only after a few quota checks.
CHUNK = 64 * KB
SLOW_GROW = f'while true; do head -c {CHUNK} /dev/zero >> "$HOME/grow.bin"; sleep 0.25; done'
SLOW_RATE = CHUNK / 0.25


def _write(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))


def _usage(server: ServerProcess, user: str) -> int:
    """`user`'s disk usage as the server counts it (no job of theirs is running)."""
    return DiskQuota(Layout(server.data_dir), QUOTA_BYTES, lambda _: []).usage(user)


def _run_shell(server: ServerProcess, session: requests.Session, code: str) -> dict:
    """Submit a Shell job and wait for it; its history task (state, errCode, errDesc, logPath)."""
    job = server.submit(code, engine="shell", run_type="shell", session=session)
    server.wait(job["execID"], session=session)
    return _task(server, session, job["taskID"])


def _task(server: ServerProcess, session: requests.Session, task_id: int) -> dict:
    answer = envelope(session.get(server.api(f"jobhistory/{task_id}/get"), timeout=10))
    return answer["data"]["task"]


def _log(server: ServerProcess, session: requests.Session, task: dict) -> list[str]:
    """All the lines of the job's log, [error, warn, info, all] as filesystem/openLog gives."""
    params = {"path": task["logPath"]}
    answer = envelope(session.get(server.api("filesystem/openLog"), params=params, timeout=10))
    return answer["data"]["log"]


def _assert_warned(server: ServerProcess, log: list[str]) -> None:
    """The log opens with the WARN line of a job submitted over the quota."""
    first = log[3].splitlines()[0]
    assert " WARN Over the disk quota: you use " in first, first
    assert "may use 5.0 MB" in first and "may add at most 1.0 MB" in first, first
    assert "users/bob/files" in first and "rm, os.remove" in first and "drop table" in first
    assert "--disk-quota" in first
    assert str(server.data_dir) not in log[3]


@pytest.mark.parametrize(
    ("text", "size"),
    [("500MB", 500 << 20), ("2GB", 2 << 30), ("1.5g", 3 << 29), ("64k", 64 * KB), ("4096", 4096)],
)
def test_sizes_are_read_in_powers_of_1024(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["0", "none", "NONE"])
def test_zero_or_none_is_no_quota(text: str) -> None:
    assert parse_size(text) == 0


@pytest.mark.parametrize("text", ["lots", "-5MB", "5 PB", "MB", ""])
def test_what_is_not_a_size_is_refused(text: str) -> None:
    assert parse_size(text) is None


def test_usage_counts_the_area_results_logs_and_scratch_of_the_user_only(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    scratch = tmp_path / "tmp" / "17"
    mine = [
        layout.user_files("bob") / "data.csv",
        layout.result_dir("2026-01-01", "IDE", "bob", 7) / "_0.dolphin",
        layout.log_file("2026-01-02", "nb", "bob", 8),
        scratch / "out.bin",
    ]
    for path in mine:
        _write(path, 100 * KB)
    hidden = layout.user_files("bob") / "hidden"
    _write(hidden / "inside.bin", 100 * KB)
    hidden.chmod(0)  # a job may take a folder's permissions away: it still counts
    theirs = layout.user_files("alice") / "big.bin"
    _write(theirs, 1024 * KB)
    _write(layout.result_dir("2026-01-01", "IDE", "alice", 9) / "_0.dolphin", 1024 * KB)
    (layout.user_files("bob") / "link").symlink_to(theirs)  # not followed

    quota = DiskQuota(layout, 1, lambda user: [scratch] if user == "bob" else [])
    used = quota.usage("bob")

    assert 500 * KB <= used < 500 * KB + 64 * KB  # the files, plus their folders' own blocks
    assert quota.usage("alice") >= 2048 * KB
    assert quota.usage("carol") == 0


def test_a_running_job_that_passes_the_quota_is_stopped_and_then_can_free_space(
    tmp_path: Path,
) -> None:
    with start_server(tmp_path / "data", users=[ALICE, BOB], args=QUOTA) as server:
        alice, bob = user_session(server, ALICE), user_session(server, BOB)
        growing = server.submit(GROW, engine="shell", run_type="shell", session=bob)
        calm = server.submit("sleep 1; echo alice", engine="shell", run_type="shell", session=alice)

        assert server.wait(growing["execID"], session=bob) == wire.FAILED
        assert server.wait(calm["execID"], session=alice) == wire.SUCCEED
        grow = Layout(server.data_dir).user_files("bob") / "grow.bin"
        size = grow.stat().st_size
        assert size > QUOTA_BYTES
        time.sleep(1.0)  # nothing to wait for: the file must not change meanwhile
        assert grow.stat().st_size == size

        task = _task(server, bob, growing["taskID"])
        assert task["errCode"] == ERR_DISK_QUOTA
        assert "Disk quota exceeded: you use " in task["errDesc"]
        assert "so the server stopped this job" in task["errDesc"]
        assert "started while you were over the quota" not in task["errDesc"]
        assert "Disk quota exceeded" in _log(server, bob, task)[0]  # the ERROR lines

        # Over the quota now, bob frees space himself: his job is accepted with a warning.
        freeing = _run_shell(server, bob, 'rm "$HOME/grow.bin"')
        assert freeing["status"] == wire.SUCCEED, freeing
        _assert_warned(server, _log(server, bob, freeing))
        assert not grow.exists()
        assert _usage(server, "bob") < QUOTA_BYTES
        after = _run_shell(server, bob, "echo under the quota again")
        assert after["status"] == wire.SUCCEED
        assert "Over the disk quota" not in _log(server, bob, after)[3]


def test_over_the_quota_a_job_is_accepted_and_stopped_past_its_allowance(tmp_path: Path) -> None:
    with start_server(tmp_path / "data", users=[ALICE, BOB], args=QUOTA) as server:
        alice, bob = user_session(server, ALICE), user_session(server, BOB)
        _write(Layout(server.data_dir).user_files("bob") / "big.bin", 6 << 20)

        old_body = {"executionCode": "echo", "executeApplicationName": "shell", "runType": "sh"}
        answer = envelope(bob.post(server.api("entrance/execute"), json=old_body, timeout=10))
        assert answer["status"] == 0, answer
        assert server.wait(answer["data"]["execID"], session=bob) == wire.SUCCEED
        _assert_warned(server, _log(server, bob, _task(server, bob, answer["data"]["taskID"])))

        growing = server.submit(SLOW_GROW, engine="shell", run_type="shell", session=bob)
        calm = _run_shell(server, alice, "echo alice")
        assert calm["status"] == wire.SUCCEED
        assert "Over the disk quota" not in _log(server, alice, calm)[3]
        assert server.wait(growing["execID"], session=bob) == wire.FAILED

        task = _task(server, bob, growing["taskID"])
        assert task["errCode"] == ERR_DISK_QUOTA
        assert "started while you were over the quota, may add at most 1.0 MB" in task["errDesc"]
        assert str(server.data_dir) not in task["errDesc"]
        _assert_warned(server, _log(server, bob, task))
        # It was stopped for passing the allowance (its log and folders take a few blocks
        # besides), at the first check after: within one check interval of writing.
        size = (Layout(server.data_dir).user_files("bob") / "grow.bin").stat().st_size
        assert ALLOWANCE - CHUNK < size <= ALLOWANCE + SLOW_RATE * (REFRESH_SECONDS + 1)


def test_a_job_that_waited_while_its_user_went_over_starts_with_an_allowance(
    tmp_path: Path,
) -> None:
    with start_server(tmp_path / "data", users=[BOB], args=[*QUOTA, "--workers", "1"]) as server:
        bob = user_session(server, BOB)
        filling = server.submit(
            'head -c 6291456 /dev/zero > "$HOME/big.bin"; sleep 30',
            engine="shell",
            run_type="shell",
            session=bob,
        )
        # Queued behind it (one job at a time), over the quota for a few checks, then it frees.
        freeing = server.submit(
            'sleep 5; rm "$HOME/big.bin"', engine="shell", run_type="shell", session=bob
        )

        assert server.wait(filling["execID"], session=bob) == wire.FAILED
        assert _task(server, bob, filling["taskID"])["errCode"] == ERR_DISK_QUOTA
        assert server.wait(freeing["execID"], session=bob) == wire.SUCCEED
        assert _usage(server, "bob") < QUOTA_BYTES
