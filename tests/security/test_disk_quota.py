"""Disk quotas: one user cannot fill the disk for everyone. bob over his quota gets a clear error
at submit while alice's jobs run, and a job of his that keeps writing is stopped (Failed)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import requests
from support.bodies import submit_body
from support.serverproc import ServerProcess, start_server
from support.twousers import ALICE, BOB, envelope, user_session
from support.waiting import wait_until

from linkis_kernel import wire
from linkis_kernel.local.paths import Layout
from linkis_kernel.local.quota import ERR_DISK_QUOTA, DiskQuota, parse_size

QUOTA = ["--disk-quota", "5MB"]
KB = 1024
GROW = 'while true; do head -c 262144 /dev/zero >> "$HOME/grow.bin"; sleep 0.05; done'


def _write(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))


def _post_submit(server: ServerProcess, session: requests.Session, user: str, code: str) -> dict:
    body = submit_body(code, user=user, engine="shell", run_type="shell")
    response = session.post(server.api("entrance/submit"), json=body, timeout=10)
    assert response.status_code == (200 if response.json()["status"] == 0 else 400)
    return envelope(response)


def _assert_quota_refusal(server: ServerProcess, answer: dict) -> None:
    assert answer["status"] == 1, answer
    assert answer["data"]["errorMsg"]["errCode"] == ERR_DISK_QUOTA
    message = answer["message"]
    assert "Disk quota exceeded: you use " in message and "may use 5.0 MB" in message, message
    assert "users/bob/files" in message and "--disk-quota" in message
    assert str(server.data_dir) not in message


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


def test_a_user_over_the_quota_is_refused_at_submit_and_others_are_not(tmp_path: Path) -> None:
    with start_server(tmp_path / "data", users=[ALICE, BOB], args=QUOTA) as server:
        alice, bob = user_session(server, ALICE), user_session(server, BOB)
        big = Layout(server.data_dir).user_files("bob") / "big.bin"
        _write(big, 6 << 20)

        refused = _post_submit(server, bob, "bob", "echo hello")
        _assert_quota_refusal(server, refused)
        old_body = {"executionCode": "echo", "executeApplicationName": "shell", "runType": "sh"}
        response = bob.post(server.api("entrance/execute"), json=old_body, timeout=10)
        assert response.status_code == 400
        _assert_quota_refusal(server, envelope(response))
        job = server.submit("echo alice", engine="shell", run_type="shell", session=alice)
        assert server.wait(job["execID"], session=alice) == wire.SUCCEED

        big.unlink()  # what the server's owner does: bob is under his quota again
        accepted = wait_until(
            lambda: (
                (answer := _post_submit(server, bob, "bob", "echo again"))["status"] == 0 and answer
            ),
            10,
            0.2,
        )
        assert server.wait(accepted["data"]["execID"], session=bob) == wire.SUCCEED


def test_a_running_job_that_passes_the_quota_is_stopped(tmp_path: Path) -> None:
    with start_server(tmp_path / "data", users=[ALICE, BOB], args=QUOTA) as server:
        alice, bob = user_session(server, ALICE), user_session(server, BOB)
        growing = server.submit(GROW, engine="shell", run_type="shell", session=bob)
        calm = server.submit("sleep 1; echo alice", engine="shell", run_type="shell", session=alice)

        assert server.wait(growing["execID"], session=bob) == wire.FAILED
        assert server.wait(calm["execID"], session=alice) == wire.SUCCEED
        grow = Layout(server.data_dir).user_files("bob") / "grow.bin"
        size = grow.stat().st_size
        assert size > 5 << 20
        time.sleep(1.0)  # nothing to wait for: the file must not change meanwhile
        assert grow.stat().st_size == size

        task = envelope(bob.get(server.api(f"jobhistory/{growing['taskID']}/get"), timeout=10))
        task = task["data"]["task"]
        assert task["errCode"] == ERR_DISK_QUOTA
        assert "Disk quota exceeded" in task["errDesc"]
        assert "the server stopped this job" in task["errDesc"]
        logs = envelope(
            bob.get(server.api("filesystem/openLog"), params={"path": task["logPath"]}, timeout=10)
        )
        assert "Disk quota exceeded" in logs["data"]["log"][0]  # the ERROR lines

        _assert_quota_refusal(server, _post_submit(server, bob, "bob", "echo more"))
