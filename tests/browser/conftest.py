"""One JupyterLab and one headless Chromium for the browser tests.

* `lab` (session): JupyterLab on 127.0.0.1 (free port, token, temporary config, runtime, data and
  IPython dirs, no news or update toasts) whose kernels reach the `linkis_server` test server
  through LINKIS_URL/LINKIS_USER/LINKIS_TOKEN. The Linkis kernelspecs are installed into a
  temporary prefix on JUPYTER_PATH. Its root dir holds the notebooks that `write_notebook`
  creates.
* `app` (session): Debian's /usr/bin/chromium driven by Playwright, with JupyterLab loaded once;
  `app.open(name)` opens a notebook in it. Every request the page makes is recorded so a test
  can check that none leaves 127.0.0.1.

`running_lab` and `lab_in_chromium` give a module its own pair (e.g. on another Linkis server).

Screenshots go to `test-artifacts/browser/`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nbformat
import pytest
import requests
from support.jupyterenv import free_port, install_linkis_kernelspecs, private_jupyter_env
from support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
LAB_START_TIMEOUT = 60.0
KERNEL_IDLE_TIMEOUT = 60_000
PYTHON_KERNELSPEC = {
    "name": "python3",
    "display_name": "Python 3 (ipykernel)",
    "language": "python",
}
LINKIS_SQL_KERNELSPEC = {"name": "linkis_sql", "display_name": "Linkis SQL", "language": "sql"}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@dataclass
class Lab:
    """A running JupyterLab server."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    kernelspec_error: str | None = None

    def write_notebook(self, name: str, sources: list[str], kernelspec: dict[str, str]) -> str:
        """Create `name` in the root dir with one code cell per source; returns its path."""
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = kernelspec
        nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
        nbformat.write(nb, self.root / name)
        return name

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def quiet_notifications(config_dir: Path) -> None:
    """No "news" or "update" toast over the screenshots."""
    settings = config_dir / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


def lab_environment(base: Path, linkis_server: Any, prefix: Path, token: str) -> dict[str, str]:
    env = private_jupyter_env(base, prefix)
    env.update(
        JUPYTER_TOKEN=token,
        LINKIS_URL=linkis_server.url,
        LINKIS_USER=linkis_server.user,
        LINKIS_TOKEN=linkis_server.token,
    )
    return env


def wait_until_ready(lab: Lab) -> None:
    def answers() -> bool:
        if lab.process.poll() is not None:
            pytest.fail(f"JupyterLab exited on start:\n{lab.log_tail()}", pytrace=False)
        try:
            headers = {"Authorization": f"token {lab.token}"}
            return requests.get(f"{lab.url}/api/status", headers=headers, timeout=2).ok
        except requests.RequestException:
            return False

    wait_until(
        answers,
        LAB_START_TIMEOUT,
        0.2,
        message=lambda: f"JupyterLab did not answer:\n{lab.log_tail()}",
    )


@contextmanager
def running_lab(
    base: Path, linkis_server: Any, extra_env: dict[str, str] | None = None
) -> Iterator[Lab]:
    """JupyterLab under `base` whose kernels use `linkis_server` (and see `extra_env`); stopped
    on exit."""
    root = base / "notebooks"
    root.mkdir()
    prefix = base / "prefix"
    kernelspec_error = install_linkis_kernelspecs(prefix)
    token = secrets.token_hex(16)
    env = {**lab_environment(base, linkis_server, prefix, token), **(extra_env or {})}
    quiet_notifications(base / "config")
    port = free_port()
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1"]
    command += [f"--port={port}", "--port-retries=0", f"--ServerApp.root_dir={root}"]
    command += ["--LabApp.news_url=None", "--LabApp.expose_app_in_browser=True"]
    command += ["--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    command += [f"--LabApp.workspaces_dir={base / 'workspaces'}"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log_path = base / "lab.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    server = Lab(f"http://127.0.0.1:{port}", token, root, process, log_path, kernelspec_error)
    try:
        wait_until_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def lab(linkis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab whose kernels use the test Linkis server."""
    with running_lab(tmp_path_factory.mktemp("lab"), linkis_server) as server:
        yield server


@dataclass
class App:
    """JupyterLab in a Chromium page."""

    page: Any
    lab: Lab
    requests_seen: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def open(self, path: str) -> Any:
        """Open a notebook, wait for its kernel to be idle; returns the notebook panel."""
        self.page.evaluate(
            "path => window.jupyterapp.commands.execute('docmanager:open', {path})", path
        )
        self.page.wait_for_function(
            "path => window.jupyterapp.shell.currentWidget?.context?.path === path", arg=path
        )
        panel_id = self.page.evaluate("() => window.jupyterapp.shell.currentWidget.id")
        panel = self.page.locator(f"[id='{panel_id}']")
        self.wait_idle(panel)
        return panel

    def wait_idle(self, panel: Any) -> None:
        panel.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(
            timeout=KERNEL_IDLE_TIMEOUT
        )
        self.page.wait_for_function(
            "() => window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel?.status"
            " === 'idle'",
            timeout=KERNEL_IDLE_TIMEOUT,
        )

    def wait_cell_done(self, cell: Any, timeout: float = 60.0) -> None:
        """Until the cell's prompt shows an execution count instead of `[*]`."""
        from playwright.sync_api import expect

        prompt = cell.locator(".jp-InputArea-prompt")
        expect(prompt).to_have_text(re.compile(r"\[\d+\]"), timeout=timeout * 1000)

    def run_cell(self, panel: Any, index: int) -> Any:
        """Click into cell `index` and press Ctrl-Enter, as a user runs it; returns the cell."""
        cell = panel.locator(".jp-Cell").nth(index)
        cell.locator(".cm-content").click()
        self.page.keyboard.press("Control+Enter")
        return cell

    def screenshot(self, target: Any, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        target.screenshot(path=str(path))
        return path

    def outside_requests(self) -> list[str]:
        return [
            url
            for url in self.requests_seen
            if urlsplit(url).scheme in ("http", "https", "ws", "wss")
            and urlsplit(url).hostname not in LOCAL_HOSTS
        ]


@contextmanager
def lab_in_chromium(lab: Lab) -> Iterator[App]:
    """Chromium with `lab` loaded in one page; closed on exit."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        state = App(page, lab)
        page.on("request", lambda request: state.requests_seen.append(request.url))
        page.on("pageerror", lambda error: state.console_errors.append(str(error)))
        page.on(
            "console",
            lambda message: message.type == "error" and state.console_errors.append(message.text),
        )
        page.goto(f"{lab.url}/lab?reset&token={lab.token}")
        page.wait_for_function("() => window.jupyterapp?.started !== undefined")
        page.evaluate("() => window.jupyterapp.started")
        page.locator(".jp-LauncherCard").first.wait_for(timeout=KERNEL_IDLE_TIMEOUT)
        try:
            yield state
        finally:
            context.close()
            browser.close()


# Module scope: one sync Playwright runs at a time in a process, and test_lab_pyspark.py starts
# its own (against a Lab on a real Spark).
@pytest.fixture(scope="module")
def app(lab: Lab) -> Iterator[App]:
    """Chromium with JupyterLab loaded (one browser, one page for the session)."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    with lab_in_chromium(lab) as state:
        yield state
