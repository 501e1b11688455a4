"""Attacks from inside the process sandbox beyond tests/security/test_sandbox.py: a job runs as
the server's user (root on many machines), so its own /proc must not let it change the kernel's
settings, which hold for the whole machine (kernel.core_pattern even runs a program of the
job's choice outside the sandbox)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.serverproc import ServerProcess, start_server
from support.twousers import ALICE, BOB, user_client

# Writes back the value a setting already has: harmless if it works, and it must not.
SAME_VALUE_WRITE = """
echo 1 > $HOME/setting
for setting in /proc/sys/vm/max_map_count /proc/sys/kernel/pid_max $HOME/setting; do
  value=$(cat $setting)
  if (echo "$value" > $setting) 2>/dev/null
  then echo "$setting=written"; else echo "$setting=refused"; fi
done
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("sandbox-attacks"), users=[BOB, ALICE]) as started:
        yield started


@pytest.mark.parametrize(
    ("engine", "code"),
    [
        ("shell", SAME_VALUE_WRITE),
        ("python", f"import subprocess\nprint(subprocess.run(['bash', '-c', {SAME_VALUE_WRITE!r}],"
                   " capture_output=True, text=True).stdout)"),
    ],
)  # fmt: skip
def test_a_sandboxed_job_cannot_change_the_kernels_settings(
    server: ServerProcess, engine: str, code: str
) -> None:
    before = Path("/proc/sys/vm/max_map_count").read_text()
    job = user_client(server, BOB).submit(code, engine=engine)
    job.wait(timeout=90, raise_on_failure=False)
    assert job.state == "Succeed", job.failure()
    seen = dict(
        line.split("=", 1) for r in job.results() for line in str(r.data).split() if "=" in line
    )
    home = next(name for name in seen if name.endswith("/setting"))
    assert seen == {
        "/proc/sys/vm/max_map_count": "refused",
        "/proc/sys/kernel/pid_max": "refused",
        home: "written",  # the same write works where the job may write
    }
    assert Path("/proc/sys/vm/max_map_count").read_text() == before
