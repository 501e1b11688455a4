"""Attaching to jobs the entrance forgot, and `linkis-kernel run` as a real subprocess."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.serverproc import REPO_ROOT, history_state, start_server
from support.waiting import wait_until

from linkis_kernel.client import EMBEDDED_NOTE, LinkisNotFoundError
from linkis_kernel.wire import CANCELLED, SUCCEED, TERMINAL_STATES


def test_attach_by_task_id_and_exec_id_after_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with start_server(data_dir) as first:
        job = first.linkis_client().submit("select 7 as n; select 'x' as s", creator="nb")
        job.wait(timeout=30)
        seen_lines = list(job.log_lines)
        cut_off = first.linkis_client().submit(
            "echo started; sleep 30", engine="shell", creator="nb"
        )
        wait_until(
            lambda: cut_off.refresh() and any("started" in line for line in cut_off.log_lines),
            20,
            0.1,
            message="the shell job never logged 'started'",
        )
        lines_before_restart = len(cut_off.log_lines)
    assert seen_lines

    with start_server(data_dir) as second:
        client = second.linkis_client()
        by_task = client.job(job.task_id)
        assert by_task.state == SUCCEED and by_task.exec_id == job.exec_id
        assert by_task.result()["s"].tolist() == ["x"]
        by_task.wait(timeout=30)  # the entrance is new: status and log come from history
        assert by_task.log_lines == seen_lines
        by_exec = client.job(job.exec_id)
        assert by_exec.task_id == job.task_id and by_exec.engine == "spark-3.2.1"
        assert [list(r.data.columns) for r in by_exec.results()] == [["n"], ["s"]]
        assert by_exec.log() == seen_lines
        assert by_exec.log("error") == [] and by_exec.log(tail=2) == seen_lines[-2:]
        assert by_exec.log(tail=0) == []

        cut_off.client = client  # the same Job object follows its job onto the new entrance
        cut_off.wait(timeout=30, raise_on_failure=False)
        assert cut_off.state in (CANCELLED, "Failed")  # the stop ended the job it interrupted
        assert len(cut_off.log_lines) > lines_before_restart
        assert cut_off.log_lines == cut_off.log()  # nothing lost or repeated across the switch
        with pytest.raises(LinkisNotFoundError, match=r"client\.job"):
            client.job("exec_id018020linkis-cg-entrance127.0.0.1:1IDE_nobody_spark_9")


def test_a_queued_job_reports_its_queue_position(tmp_path: Path) -> None:
    with start_server(tmp_path / "data", args=["--workers", "1"]) as server:
        client = server.linkis_client()
        blockers = [client.submit("sleep 1", engine="shell", creator="nb") for _ in range(2)]
        queued = client.submit("echo next", engine="shell", creator="nb")
        snapshots = []
        queued.wait(timeout=30, on_update=snapshots.append)
        for blocker in blockers:
            blocker.wait(timeout=30)
        assert queued.results()[0].data == "next"
    waiting = [s for s in snapshots if s.state in ("Inited", "Scheduled")]
    assert waiting and waiting[0].queue_position == 1
    assert all(
        s.queue_position is None for s in snapshots if s.state not in ("Inited", "Scheduled")
    )
    assert queued.results()[0].data == "next"


def cli_env(server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKIS_")}
    return {
        **env,
        "LINKIS_URL": server.url,
        "LINKIS_USER": server.user,
        "LINKIS_TOKEN": server.token,
    }


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "linkis_kernel", *args]
    return subprocess.run(
        command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return cli(env, "run", *args)


def test_quiet_run_then_jobs_log_attach_and_kill(linkis_server) -> None:
    env = cli_env(linkis_server)
    done = run_cli(env, "-q", "-e", "shell", "-c", "nb", "--code", "echo one; echo two")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.split() == ["one", "two"]

    listed = cli(env, "jobs", "-n", "1")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["TASK", "STATUS", "ENGINE", "CREATOR", "CREATED"]
    task_id, status = row.split()[:2]
    assert status == SUCCEED

    client = linkis_server.linkis_client()
    tail = cli(env, "log", task_id, "--tail", "2")
    assert tail.returncode == 0 and tail.stdout.splitlines() == client.job(task_id).log(tail=2)
    attached = cli(env, "attach", task_id)
    assert attached.returncode == 0 and attached.stdout == done.stdout
    assert f"Attached to Linkis job {task_id}" in attached.stderr
    finished = cli(env, "kill", task_id)
    assert finished.returncode == 0 and "already finished (Succeed)" in finished.stdout

    running = client.submit("sleep 30", engine="shell", creator="nb")
    killed = cli(env, "kill", str(running.task_id))
    assert killed.returncode == 0, killed.stdout + killed.stderr
    assert killed.stdout.startswith(f"Killed Linkis job {running.task_id}")
    assert client.jobhistory_get(running.task_id).status == CANCELLED


def test_cli_errors_name_cli_commands(linkis_server) -> None:
    env = cli_env(linkis_server)
    missing = cli(env, "log", "987654")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr == (
        "linkis-kernel log: No Linkis job 987654 is visible to you; "
        "`linkis-kernel jobs` lists yours.\n"
    )
    for command in ("attach", "kill"):
        unknown = cli(env, command, "987654")
        assert unknown.returncode == 2
        assert unknown.stderr.startswith(f"linkis-kernel {command}: No Linkis job 987654 is")
    typo = run_cli(env, "-e", "sparkk", "--code", "select 1")
    assert typo.returncode == 2 and typo.stderr.startswith(
        "linkis-kernel run: Unknown engine 'sparkk': did you mean `-e spark`? Known engines:"
    )
    serve_help = cli(env, "serve", "--help")
    assert "(default 9001)" in serve_help.stdout
    failed = run_cli(env, "-e", "spark", "-c", "nb", "--code", "select * from missing_table")
    assert failed.returncode == 1
    assert re.search(r"`linkis-kernel log \d+` to see the full log", failed.stderr)
    usage = cli(env, "jobs", "-n", "0")
    assert usage.returncode == 2 and "expected 1 or more" in usage.stderr


def test_run_prints_the_table_and_writes_csv(linkis_server, tmp_path: Path) -> None:
    out, script = tmp_path / "out.csv", tmp_path / "query.sql"
    script.write_text("select range as n, '${tag}' as tag from range(60)")
    done = run_cli(cli_env(linkis_server), "-e", "spark", "-c", "nb", "-f", str(script),
                   "--var", "tag=v1", "--limit", "55", "--output", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["n", "tag"] and lines[1].split() == ["0", "v1"]
    assert len(lines) == 52 and lines[-1] == (
        "showing 50 of 55 rows fetched; truncated by fetch limit of 55 rows; display limit 50"
    )
    assert re.search(r"^Submitted Linkis job \d+ \(exec_id", done.stderr, re.M)
    assert "Succeed" in done.stderr and "Traceback" not in done.stderr
    assert out.read_text().splitlines() == ["n,tag", *(f"{i},v1" for i in range(55))]


def test_run_without_a_url_says_it_uses_the_embedded_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKIS_")}
    env["JUPYTER_DATA_DIR"] = str(tmp_path)
    connection = tmp_path / "linkis-kernel" / "connection.json"
    try:
        done = run_cli(env, "-e", "spark", "--code", "select 42 as answer")
        assert done.returncode == 0, done.stderr
        url = json.loads(connection.read_text())["url"]
        assert done.stderr.splitlines()[0] == EMBEDDED_NOTE.format(url=url)
        assert done.stdout.split()[:2] == ["answer", "42"]
    finally:
        os.kill(json.loads(connection.read_text())["pid"], signal.SIGTERM)


def test_run_exit_codes_for_failures_and_usage_errors(linkis_server, tmp_path: Path) -> None:
    env = cli_env(linkis_server)
    failed = run_cli(env, "-e", "spark", "-c", "nb", "--code", "select * from missing_table")
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr and failed.stdout == ""
    quiet = run_cli(env, "-q", "-e", "spark", "-c", "nb", "--code", "select * from missing_table")
    assert quiet.returncode == 1
    first, reason, *rest, last = quiet.stderr.splitlines()
    task_id = re.fullmatch(r"linkis-kernel run: Linkis job (\d+) ended Failed:", first).group(1)
    assert reason.startswith("  errCode ") and "missing_table does not exist" in reason
    assert "LINE 1: select * from missing_table" in "\n".join(rest)
    assert last == f"Run `linkis-kernel log {task_id}` to see the full log."
    assert " INFO " not in quiet.stderr and " ERROR " not in quiet.stderr
    assert re.search(r"^linkis-kernel run: Linkis job \d+ ended Failed:$", failed.stderr, re.M)

    unknown = run_cli(env, "-e", "doris", "--code", "select 1")
    assert unknown.returncode == 2 and "doris" in unknown.stderr
    missing = run_cli(env, "-e", "spark", "-f", str(tmp_path / "nope.sql"))
    assert missing.returncode == 2 and "nope.sql" in missing.stderr
    offline = run_cli({**env, "LINKIS_URL": "http://127.0.0.1:9"}, "-e", "spark", "--code", "x")
    assert offline.returncode == 2 and "could not connect" in offline.stderr
    for done in (unknown, missing, offline):
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert linkis_server.token not in done.stderr


def test_ctrl_c_kills_the_job_and_exits_130(linkis_server) -> None:
    command = [sys.executable, "-m", "linkis_kernel", "run", "-e", "shell", "-c", "nb"]
    process = subprocess.Popen(
        [*command, "--code", "sleep 30"],
        env=cli_env(linkis_server),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as in a terminal, even when this test runs where SIGINT is ignored (a shell's
        # background job, nohup), which the child would inherit.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in process.stderr], daemon=True)
    reader.start()
    task_id, deadline = None, time.monotonic() + 20
    while time.monotonic() < deadline:
        line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        match = re.search(r"Submitted Linkis job (\d+)", line)
        task_id = int(match.group(1)) if match else task_id
        if task_id and "Running" in line:
            break
    assert task_id, "the run never reported a running job"
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=15) == 130
    reader.join(timeout=10)  # stderr is closed now: the reader ends once it has read it all
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    killed = rf"(Killed|Kill requested for) Linkis job {task_id}\b"  # confirmed, or still due
    assert any(re.search(killed, line) for line in rest), rest
    assert not any("Traceback" in line for line in rest)
    assert history_state(linkis_server.linkis_client(), task_id, TERMINAL_STATES) == CANCELLED
