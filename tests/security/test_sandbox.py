"""The process sandbox of the embedded server (local/sandbox.py), against real server processes.

On a server with two extra users, bob's Python and Shell jobs try to read what is not theirs
(users.json, alice's area, the server's environment and processes) and to write outside their
own area: all of it fails, while their own area and their private /tmp work; `--sandbox
always` confines the owner of a one-user server the same way. Without a working bwrap (missing,
or there but failing), only the server's owner runs such jobs. A job never outlives its server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.procfs import stat_fields
from support.serverproc import ServerProcess, start_server
from support.twousers import ALICE, BOB, user_client
from support.waiting import wait_until

from linkis_kernel import LinkisClient
from linkis_kernel.local.engines import ERR_SANDBOX, sample_resources, spawn_engine, stop_process
from linkis_kernel.local.sandbox import ALWAYS, BWRAP_ENV, Sandboxing

SERVER_TOKEN = "server-token-that-no-job-may-see"
SERVER_PASSWORD = "server-password-that-no-job-may-see"
SECRET_ENV = {"LINKIS_TOKEN": SERVER_TOKEN, "LINKIS_PASSWORD": SERVER_PASSWORD}
ALICE_SECRET = "alice's own words"

PYTHON_PROBE = """
import json, os, socket
data, server_pid, host_file, port = {data!r}, {pid}, {host_file!r}, {port}
seen = {{}}

def attempt(name, action):
    try:
        action()
        seen[name] = "allowed"
    except OSError:
        seen[name] = "denied"

def write(path):
    with open(path, "w") as f:
        f.write("x")

attempt("read_users", lambda: open(data + "/users.json").read())
attempt("read_credentials", lambda: open(data + "/credentials.json").read())
attempt("read_alice", lambda: open(data + "/users/alice/files/secret.txt").read())
attempt("list_data_dir", lambda: os.listdir(data + "/result"))
attempt("write_data_root", lambda: write(data + "/planted.txt"))
attempt("write_etc", lambda: write("/etc/planted.txt"))
attempt("read_server_environ", lambda: open(f"/proc/{{server_pid}}/environ").read())
attempt("see_host_tmp", lambda: open(host_file).read())
attempt("reach_server", lambda: socket.create_connection(("127.0.0.1", port), 2).close())
attempt("write_home", lambda: write(os.path.join(os.environ["HOME"], "mine.txt")))
attempt("write_cwd", lambda: write("scratch.txt"))
attempt("write_tmp", lambda: write("/tmp/private.txt"))
environs = ""
for entry in os.listdir("/proc"):
    if entry.isdigit():
        try:
            environs += open(f"/proc/{{entry}}/environ", "rb").read().decode("utf-8", "replace")
        except OSError:
            pass
seen["secret_in_env"] = any(t in environs + repr(dict(os.environ)) for t in {secrets!r})
seen["pids"] = sorted(int(e) for e in os.listdir("/proc") if e.isdigit())
seen["answer"] = sum(range(10))
print("PROBE " + json.dumps(seen))
"""

SHELL_PROBE = """
data={data}; pid={pid}
try() {{ if eval "$2" >/dev/null 2>&1; then echo "$1=allowed"; else echo "$1=denied"; fi; }}
try read_users "cat $data/users.json"
try read_credentials "cat $data/credentials.json"
try read_alice "cat $data/users/alice/files/secret.txt"
try list_data_dir "ls $data/result"
try write_data_root "echo x > $data/planted.txt"
try write_etc "echo x > /etc/planted.txt"
try read_server_environ "cat /proc/$pid/environ"
try see_host_tmp "cat {host_file}"
try reach_server "exec 3<>/dev/tcp/127.0.0.1/{port}"
try write_home "echo x > $HOME/mine.txt"
try write_cwd "echo x > scratch.txt"
try write_tmp "echo x > /tmp/private.txt"
if cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -q -e {token} -e {password}
then echo secret_in_env=true; else echo secret_in_env=false; fi
echo "processes=$(ps -e --no-headers | wc -l)"
echo "answer=$((6 * 7))"
"""

DENIED = (
    "read_users", "read_credentials", "read_alice", "list_data_dir", "write_data_root",
    "write_etc", "read_server_environ", "see_host_tmp", "reach_server",
)  # fmt: skip
ALLOWED = ("write_home", "write_cwd", "write_tmp")


def _client(server: ServerProcess, user: dict[str, str] | None = None) -> LinkisClient:
    return server.linkis_client() if user is None else user_client(server, user)


def _port(server: ServerProcess) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _run(client: LinkisClient, code: str, engine: str, run_type: str | None = None):
    job = client.submit(code, engine=engine, run_type=run_type)
    job.wait(timeout=90, raise_on_failure=False)
    text = "\n".join(str(r.data) for r in job.results()) if job.state == "Succeed" else ""
    return job, text


@pytest.fixture(scope="module")
def host_file() -> Iterator[Path]:
    """A file in the host's /tmp, which sandboxed jobs must not see."""
    path = Path("/tmp") / f"linkis-host-only-{uuid.uuid4().hex}.txt"
    path.write_text("host only")
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with users bob and alice (so it sandboxes), started with secrets in its env."""
    data_dir = tmp_path_factory.mktemp("sandboxed")
    alice_home = data_dir / "users" / "alice" / "files"
    alice_home.mkdir(parents=True)
    (alice_home / "secret.txt").write_text(ALICE_SECRET)
    server = start_server(data_dir, env=SECRET_ENV, users=[BOB, ALICE])
    try:
        yield server
    finally:
        server.stop()


def test_the_server_says_it_sandboxes(shared_server: ServerProcess) -> None:
    assert "Process sandbox: Python, PySpark and Shell jobs run under bwrap" in (
        shared_server.log_text()
    )


def _python_probe(server: ServerProcess, user: dict | None, host_file: Path) -> dict:
    """What PYTHON_PROBE, run as `user` (None: the owner), could and could not do."""
    code = PYTHON_PROBE.format(
        data=str(server.data_dir), pid=server.process.pid, host_file=str(host_file),
        port=_port(server), secrets=[SERVER_TOKEN, SERVER_PASSWORD],
    )  # fmt: skip
    job, text = _run(_client(server, user), code, "python")
    assert job.state == "Succeed", job.failure()
    seen = json.loads(text.split("PROBE ", 1)[1].splitlines()[0])
    assert seen["answer"] == 45
    return seen


def _shell_probe(server: ServerProcess, user: dict | None, host_file: Path) -> dict:
    """What SHELL_PROBE, run as `user` (None: the owner), could and could not do."""
    code = SHELL_PROBE.format(
        data=server.data_dir, pid=server.process.pid, host_file=host_file,
        port=_port(server), token=SERVER_TOKEN, password=SERVER_PASSWORD,
    )  # fmt: skip
    job, text = _run(_client(server, user), code, "shell")
    assert job.state == "Succeed", job.failure()
    seen = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    assert seen["answer"] == "42"
    return seen


def _assert_confined(seen: dict, data: Path) -> None:
    """Everything in DENIED failed, everything in ALLOWED worked, nothing was planted."""
    assert {name: seen[name] for name in DENIED} == dict.fromkeys(DENIED, "denied")
    assert {name: seen[name] for name in ALLOWED} == dict.fromkeys(ALLOWED, "allowed")
    assert seen["secret_in_env"] in (False, "false")
    assert not (data / "planted.txt").exists()
    assert not Path("/tmp/private.txt").exists()


def test_a_python_job_sees_only_its_own_area(shared_server: ServerProcess, host_file: Path) -> None:
    data = shared_server.data_dir
    seen = _python_probe(shared_server, BOB, host_file)
    _assert_confined(seen, data)
    assert shared_server.process.pid not in seen["pids"] and max(seen["pids"]) < 10
    assert (data / "users" / "bob" / "files" / "mine.txt").read_text() == "x"


def test_a_shell_job_sees_only_its_own_area(shared_server: ServerProcess, host_file: Path) -> None:
    seen = _shell_probe(shared_server, BOB, host_file)
    _assert_confined(seen, shared_server.data_dir)
    assert int(seen["processes"]) <= 5  # bwrap, bash, ps and wc: not the host's processes


def test_sandbox_always_confines_the_owners_jobs_on_a_one_user_server(
    tmp_path: Path, host_file: Path
) -> None:
    """With `--sandbox always` and no users.json, the server's own user is confined as any
    user of a shared server: credentials.json and the rest of the data dir are out of reach,
    HOME (their files folder) is theirs to write."""
    data = tmp_path / "data"
    with start_server(data, env=SECRET_ENV, args=["--sandbox", "always"]) as server:
        assert not (data / "users.json").exists() and (data / "credentials.json").exists()
        assert "Process sandbox: Python, PySpark and Shell jobs run under bwrap" in (
            server.log_text()
        )
        home = data / "users" / server.user / "files"
        seen = _python_probe(server, None, host_file)
        _assert_confined(seen, data)
        assert server.process.pid not in seen["pids"] and max(seen["pids"]) < 10
        assert (home / "mine.txt").read_text() == "x"
        (home / "mine.txt").unlink()
        seen = _shell_probe(server, None, host_file)
        _assert_confined(seen, data)
        assert (home / "mine.txt").read_text() == "x\n"


def test_a_kill_interrupts_the_statement_and_the_sandboxed_engine_stays(
    shared_server: ServerProcess,
) -> None:
    client = _client(shared_server, BOB)
    job, _ = _run(client, "kept = 41", "python")
    assert job.state == "Succeed", job.failure()
    began = shared_server.data_dir / "users" / "bob" / "files" / "began"
    code = "import os, time\nopen(os.environ['HOME'] + '/began', 'w').close()\ntime.sleep(60)"
    sleeper = client.submit(code, engine="python")
    wait_until(began.exists, 20, message="the statement never began in the engine")
    sleeper.kill()
    sleeper.wait(timeout=20, raise_on_failure=False)
    assert sleeper.state == "Cancelled"
    job, text = _run(client, "print(kept + 1)", "python")
    assert job.state == "Succeed" and text.strip() == "42"


def test_a_pyspark_job_runs_in_the_sandbox(shared_server: ServerProcess) -> None:
    code = "df = spark.createDataFrame([(1,), (2,), (3,)], ['n'])\nprint('rows', df.count())"
    job, text = _run(_client(shared_server, BOB), code, "spark", "py")
    assert job.state == "Succeed", job.failure()
    assert "rows 3" in text


SPARK_PROBE = """
import json, os
data = {data!r}
seen = {{}}
own = os.environ["HOME"] + "/own.txt"
with open(own, "w") as f:
    f.write("bob's own")
for name, read in (
    ("open_own", lambda: open(own).read()),
    ("spark_own", lambda: spark.read.text("file://" + own).first()[0]),
    ("sql_own", lambda: spark.sql(f"select * from text.`file://{{own}}`").first()[0]),
    ("open_users", lambda: open(data + "/users.json").read()),
    ("spark_users", lambda: spark.read.text("file://" + data + "/users.json").collect()),
    ("sql_users", lambda: spark.sql(f"select * from text.`file://{{data}}/users.json`").collect()),
    ("sql_alice", lambda: spark.sql(
        "select * from text.`file://" + data + "/users/alice/files/secret.txt`").collect()),
):
    try:
        seen[name] = "allowed: " + str(read())[:200]
    except Exception as exc:
        seen[name] = "denied: " + type(exc).__name__
seen["orders"] = spark.sql("select count(*) as n from demo.orders").collect()[0].n
print("PROBE " + json.dumps(seen))
"""


def test_a_real_spark_job_of_bob_reads_the_demo_and_nothing_of_the_server(tmp_path: Path) -> None:
    """PySpark on a real local Spark under the sandbox: the shared demo tables are there;
    users.json and alice's files are not, whether read by Python, Spark's readers or Spark SQL."""
    data = tmp_path / "data"
    alice_files = data / "users" / "alice" / "files"
    alice_files.mkdir(parents=True)
    (alice_files / "secret.txt").write_text(ALICE_SECRET)
    env = {**SECRET_ENV, "LINKIS_KERNEL_SPARK": "pyspark"}
    server = start_server(data, env=env, users=[BOB, ALICE])
    try:
        job, text = _run(_client(server, BOB), SPARK_PROBE.format(data=str(data)), "spark", "py")
        log = "\n".join(job.log("all"))
    finally:
        server.stop()
    assert job.state == "Succeed", job.failure()
    seen = json.loads(text.split("PROBE ", 1)[1].splitlines()[0])
    # the same reads work on bob's own file; on the others they fail as a missing file does
    assert [seen[name] for name in ("open_own", "spark_own", "sql_own")] == [
        "allowed: bob's own"
    ] * 3
    assert seen["open_users"] == "denied: FileNotFoundError", seen
    reads = ("spark_users", "sql_users", "sql_alice")
    assert {name: seen[name] for name in reads} == dict.fromkeys(reads, "denied: AnalysisException")
    assert seen["orders"] > 0
    assert "A real Spark runs this job: Spark " in log


def test_resource_figures_of_a_sandboxed_job_count_the_job_not_bwrap(tmp_path: Path) -> None:
    scratch = tmp_path / "data" / "tmp" / "job"
    scratch.mkdir(parents=True)
    sandbox = Sandboxing.decide(ALWAYS, 1, "owner", tmp_path / "data").for_user("owner")
    assert sandbox is not None
    code = "import sys\nblock = bytearray(64 << 20)\nprint('ready', flush=True)\nsys.stdin.read()"
    process = spawn_engine(
        [sys.executable, "-c", code], scratch, stdin=subprocess.PIPE, what="python", sandbox=sandbox
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        sample = sample_resources(process.pid, 0.0)
        assert sample is not None and sample.pid == process.pid
        assert sample.rss_bytes > 64 << 20  # bwrap alone holds a few MB
    finally:
        stop_process(process)


BROKEN_BWRAP = """#!/bin/sh
echo "bwrap: No permissions to create a new namespace" >&2
exit 1
"""


def _bwrap(tmp_path: Path, kind: str) -> Path:
    """A bwrap that is not there, or one that is there and fails whatever it is asked."""
    if kind == "missing":
        return tmp_path / "missing" / "bwrap"
    program = tmp_path / "bwrap"
    program.write_text(BROKEN_BWRAP)
    program.chmod(0o755)
    return program


@pytest.mark.parametrize("kind", ["missing", "broken"])
def test_without_a_working_bwrap_only_the_owner_runs_python_pyspark_and_shell(
    tmp_path: Path, kind: str
) -> None:
    """Bob's jobs of these kinds fail saying why and what to do (install bwrap, or make the one
    that is there work); the owner's run unconfined, and SQL, which needs no sandbox, runs."""
    program = _bwrap(tmp_path, kind)
    if kind == "missing":
        problem, remedy = "it is not installed", "apt-get install bubblewrap"
    else:
        problem, remedy = "No permissions to create a new", f"set {BWRAP_ENV} to a bwrap that works"
    env = {**SECRET_ENV, BWRAP_ENV: str(program)}
    with start_server(tmp_path / "data", env=env, users=[BOB]) as server:
        said = server.log_text()
        assert f"Process sandbox: bwrap ({program}) cannot be used: " in said
        assert problem in said
        assert f"jobs of users other than {server.user} fail until it works" in said
        assert remedy in said
        runs = [("print(6 * 7)", "python", None), ("echo $((6 * 7))", "shell", None)]
        runs.append(("print(6 * 7)", "spark", "py"))
        for code, engine, run_type in runs:
            job, _ = _run(_client(server, BOB), code, engine, run_type)
            assert job.state == "Failed", engine
            failure = job.failure()
            assert failure.err_code == ERR_SANDBOX
            assert "process sandbox" in str(failure.err_desc)
            assert problem in str(failure.err_desc)
            assert remedy in str(failure.err_desc)
            job, text = _run(_client(server), code, engine, run_type)
            assert job.state == "Succeed" and "42" in text, job.failure()
        job, text = _run(_client(server, BOB), "select 42 as answer", "spark", "sql")
        assert job.state == "Succeed" and "42" in text, job.failure()


def test_sandbox_never_is_refused_with_several_users(tmp_path: Path) -> None:
    (tmp_path / "users.json").write_text(json.dumps([BOB]))
    command = [sys.executable, "-m", "linkis_kernel", "serve", "--port", "0"]
    command += ["--data-dir", str(tmp_path), "--sandbox", "never"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "--sandbox never is only allowed with one user" in result.stderr


# ---- no job outlives its server --------------------------------------------------------

TICKER = "while true; do date +%s%N >> {file}; sleep 0.2; done"


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(f"{entry}: {cmdline.decode(errors='replace')}")
    return found


def _processes_in_groups(groups: set[int]) -> list[str]:
    """Live processes (not zombies) whose process group is one of `groups`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            state, _, group = stat_fields(entry)[:3]
        except OSError:
            continue
        if int(group) in groups and state != "Z":
            found.append(entry)
    return found


def _kill_server_while_ticking(server: ServerProcess, user: dict | None, ticks: Path) -> None:
    job = _client(server, user).submit(TICKER.format(file=ticks), engine="shell")
    wait_until(lambda: ticks.exists() and len(ticks.read_text().split()) >= 3, 20)
    pids = json.loads((server.data_dir / "engines.pids").read_text())
    assert pids, "the shell job's process group is written down"
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
    groups = {entry["pid"] for entry in pids}
    wait_until(
        lambda: (
            not _processes_in_groups(groups) and not _processes_mentioning(str(server.data_dir))
        ),
        10,
        message=lambda: f"still running: {_processes_in_groups(groups)}",
    )
    settled = ticks.read_text()
    # Nothing signals that a write will not come: watch the file for ten ticks of the job.
    time.sleep(2.0)
    assert ticks.read_text() == settled, f"job {job.task_id} still writes after the server died"


@pytest.mark.parametrize("sandboxed", [True, False], ids=["sandboxed", "unconfined"])
def test_a_shell_job_dies_with_a_killed_server(tmp_path: Path, sandboxed: bool) -> None:
    data_dir = tmp_path / "data"
    if sandboxed:
        server = start_server(data_dir, users=[BOB])
        ticks, user = data_dir / "users" / "bob" / "files" / "ticks", BOB
    else:
        server = start_server(data_dir, args=["--sandbox", "never"])
        ticks, user = tmp_path / "ticks", None
    try:
        _kill_server_while_ticking(server, user, ticks)
    finally:
        server.stop()


def test_a_restart_ends_a_shell_job_left_behind(tmp_path: Path) -> None:
    """What a crashed server could not end itself is ended when the next one starts."""
    data_dir = tmp_path / "data"
    script = data_dir / "tmp" / "7" / "main.sh"
    script.parent.mkdir(parents=True)
    script.write_text("sleep 60\n")
    left = subprocess.Popen(["bash", str(script)], start_new_session=True)
    try:
        start = stat_fields(left.pid)[19]
        (data_dir / "engines.pids").write_text(json.dumps([{"pid": left.pid, "start": start}]))
        with start_server(data_dir, args=["--sandbox", "never"]) as server:
            assert left.wait(10) == -signal.SIGKILL
            assert "ended 1 engine process(es)" in server.log_text()
    finally:
        if left.poll() is None:
            left.kill()
