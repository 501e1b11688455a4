"""`make lab` (tools/lab.py): kernels installed, embedded server up, JupyterLab on 127.0.0.1 with a
token, everything stopped on Ctrl-C."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from support.jupyterenv import free_port, private_jupyter_env
from support.waiting import wait_until

from linkis_kernel.wire import API_PREFIX

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0


def read_lines(stream: object, lines: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)


def wait_for_line(lines: queue.Queue[str], prefix: str, seen: list[str]) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if line.startswith(prefix):
            return line
    raise AssertionError(f"no line starting {prefix!r} in:\n{''.join(seen)}")


def test_lab_starts_server_and_jupyterlab_then_stops_both_on_ctrl_c(tmp_path: Path) -> None:
    env = private_jupyter_env(tmp_path, tmp_path / "prefix")
    env["PYTHONUNBUFFERED"] = "1"
    port = free_port()
    command = [sys.executable, str(REPO / "tools" / "lab.py"), "--port", str(port)]
    command += ["--prefix", str(tmp_path / "prefix")]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        lab_pid, server_pid = check_running_lab(tmp_path, lines, seen, port)
    finally:
        process.send_signal(signal.SIGINT)
        status = process.wait(30)
    assert status == 0
    reader.join(timeout=10)  # the output is closed now: the reader ends once it has read it all
    output = "".join(seen) + "".join(drain(lines))
    assert "Stopping JupyterLab" in output
    assert f"Stopped the embedded Linkis server (pid {server_pid})" in output
    assert not Path(f"/proc/{lab_pid}").exists()
    wait_until(
        lambda: not Path(f"/proc/{server_pid}").exists(),
        10,
        0.1,
        message=f"the embedded server (pid {server_pid}) outlived the lab",
    )


def check_running_lab(
    tmp_path: Path, lines: queue.Queue[str], seen: list[str], port: int
) -> tuple[int, int]:
    """What a running `make lab` offers; returns the pids of JupyterLab and the server."""
    server_line = wait_for_line(lines, "Embedded Linkis server started at ", seen)
    lab_line = wait_for_line(lines, "JupyterLab: ", seen)
    assert "Linkis kernels installed (--prefix" in "".join(seen)
    url = lab_line.split()[1]
    assert seen[-2].startswith("====="), "the URL is set apart by a rule"
    assert not [line for line in seen if line.startswith("[I ")], "no JupyterLab INFO lines"
    assert url.startswith(f"http://127.0.0.1:{port}/lab?token=")
    base, token = url.split("/lab?token=")
    headers = {"Authorization": f"token {token}"}
    specs = requests.get(f"{base}/api/kernelspecs", headers=headers, timeout=10).json()
    assert {"python3", "linkis_sql", "linkis_pyspark", "linkis_shell"} <= set(specs["kernelspecs"])
    listing = requests.get(f"{base}/api/contents", headers=headers, timeout=10).json()
    assert "quickstart.ipynb" in {item["name"] for item in listing["content"]}
    assert requests.get(f"{base}/api/contents", timeout=10).status_code == 403
    # the embedded server is the one kernels find through the Jupyter data dir
    linkis_url = server_line.split()[5]
    connection = json.loads((tmp_path / "data" / "linkis-kernel" / "connection.json").read_text())
    assert connection["url"] == linkis_url
    assert requests.get(f"{linkis_url}{API_PREFIX}/user/publicKey", timeout=5).ok
    # the token is not on JupyterLab's command line
    (info,) = (tmp_path / "runtime").glob("jpserver-*.json")
    lab_pid = json.loads(info.read_text())["pid"]
    assert token not in Path(f"/proc/{lab_pid}/cmdline").read_text()
    return lab_pid, connection["pid"]


def drain(lines: queue.Queue[str]) -> list[str]:
    """The lines still queued."""
    drained = []
    while not lines.empty():
        drained.append(lines.get())
    return drained
