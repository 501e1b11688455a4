"""`make lab`: JupyterLab on the notebooks folder with the Linkis kernels and server ready.

Installs the Linkis kernelspecs (`linkis-kernel install --sys-prefix`, or `--prefix P`), starts
the embedded Linkis server in the default Jupyter data dir (or reuses the one running there;
skipped when LINKIS_URL names a gateway), then runs JupyterLab on 127.0.0.1 and prints its URL
with the login token. Ctrl-C stops JupyterLab, and the embedded server if this started it.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_runtime_dir

from linkis_kernel.client.embedded import LocalServerError, ensure_server
from linkis_kernel.wire import default_data_dir, read_connection, server_answers

REPO = Path(__file__).resolve().parents[1]
LAB_START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def install_kernelspecs(prefix: Path | None) -> None:
    """Install the Linkis kernelspecs; a failure is reported, not fatal (python3 still works)."""
    where = ["--prefix", str(prefix)] if prefix else ["--sys-prefix"]
    done = subprocess.run(
        [sys.executable, "-m", "linkis_kernel", "install", *where],
        capture_output=True,
        text=True,
    )
    if done.returncode == 0:
        print(f"Linkis kernels installed ({' '.join(where)}).")
    else:
        print(
            f"Could not install the Linkis kernels ({done.stderr.strip()}); notebooks on the "
            f"python3 kernel with %load_ext linkis_kernel still work.",
            file=sys.stderr,
        )


def start_embedded_server() -> int | None:
    """Start or reuse the embedded server; returns its pid when this call started it."""
    data_dir = default_data_dir()
    running = read_connection(data_dir)
    reused = running is not None and server_answers(running["url"])
    conn = ensure_server(data_dir)
    how = "reusing" if reused else "started"
    print(f"Embedded Linkis server {how} at {conn['url']} (data in {data_dir}).")
    return None if reused else int(conn["pid"])


def lab_command(notebooks: Path, port: int) -> list[str]:
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1"]
    command += [f"--port={port}", f"--ServerApp.root_dir={notebooks}"]
    # Only warnings and errors: the URL this script prints last is then not lost among ~20
    # startup lines (JupyterLab's own URL lines included).
    command += ["--ServerApp.log_level=WARN", "--LabApp.log_level=WARN"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command


def start_lab(notebooks: Path, port: int, token: str) -> subprocess.Popen[bytes]:
    """JupyterLab in its own session, so the terminal's Ctrl-C reaches only this script."""
    # The token goes through the environment: a command line is visible to every local user.
    env = {**os.environ, "JUPYTER_TOKEN": token}
    return subprocess.Popen(
        lab_command(notebooks, port), env=env, stdin=subprocess.DEVNULL, start_new_session=True
    )


def wait_for_lab(process: subprocess.Popen[bytes]) -> dict[str, Any]:
    """The server info JupyterLab writes once it listens (url, port, ...)."""
    info_file = Path(jupyter_runtime_dir()) / f"jpserver-{process.pid}.json"
    deadline = time.monotonic() + LAB_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {process.returncode}; see above.")
        try:
            return json.loads(info_file.read_text())
        except (OSError, ValueError):
            time.sleep(0.2)
    raise RuntimeError(f"JupyterLab did not start within {LAB_START_TIMEOUT:.0f} s; see above.")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_server(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    print(f"Stopped the embedded Linkis server (pid {pid}).")


def banner(url: str) -> str:
    """The URL to open, set apart from everything above it (bold on a terminal)."""
    bold, plain = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")
    rule = "=" * min(100, len(url) + 12)
    return (
        f"\n{rule}\n{bold}JupyterLab: {url}{plain}\n"
        f"Open quickstart.ipynb to begin. Press Ctrl-C to stop.\n{rule}\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888, help="first port to try (8888)")
    parser.add_argument("--notebooks", type=Path, default=REPO / "notebooks", help="folder to open")
    parser.add_argument("--prefix", type=Path, help="install the kernelspecs under this prefix")
    args = parser.parse_args()
    install_kernelspecs(args.prefix)
    started_server = None
    if os.environ.get("LINKIS_URL"):
        print(f"Kernels use the Linkis gateway at {os.environ['LINKIS_URL']} (LINKIS_URL).")
    else:
        try:
            started_server = start_embedded_server()
        except LocalServerError as error:
            print(f"{error}\nStart it by hand with `linkis-kernel serve`.", file=sys.stderr)
            return 1
    token = secrets.token_urlsafe(24)
    process = start_lab(args.notebooks.resolve(), args.port, token)
    status = 0
    try:
        info = wait_for_lab(process)
        print(banner(f"http://127.0.0.1:{info['port']}/lab?token={token}"), flush=True)
        status = process.wait()
    except KeyboardInterrupt:
        print("\nStopping JupyterLab ...", flush=True)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        status = 1
    finally:
        stop(process)
        if started_server is not None:
            stop_server(started_server)
    return status


if __name__ == "__main__":
    sys.exit(main())
