"""`pip install linkis-kernel` registers the kernels: the wheel ships them as shared data."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from support.serverproc import REPO_ROOT

KERNEL_NAMES = ("linkis_sql", "linkis_pyspark", "linkis_shell")
ARGV = ["python", "-m", "linkis_kernel.kernel", "-f", "{connection_file}"]


def pip(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_wheel_installs_the_kernelspecs_into_the_environment(tmp_path: Path) -> None:
    pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path / "wheel"), str(REPO_ROOT))
    (wheel,) = (tmp_path / "wheel").glob("linkis_kernel-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shared = [name.split(".data/data/", 1)[1] for name in names if ".data/data/" in name]
    assert sorted(shared) == sorted(
        f"share/jupyter/kernels/{kernel}/{file}"
        for kernel in KERNEL_NAMES
        for file in ("kernel.json", "logo-32x32.png", "logo-64x64.png")
    )

    prefix = tmp_path / "env"  # where a virtual environment's pip puts the shared data
    # --ignore-installed: never touch this environment's own (editable) linkis-kernel.
    pip(
        "install",
        "--quiet",
        "--no-deps",
        "--no-compile",
        "--ignore-installed",
        "--prefix",
        str(prefix),
        str(wheel),
    )
    for kernel in KERNEL_NAMES:
        spec = json.loads((prefix / "share/jupyter/kernels" / kernel / "kernel.json").read_text())
        assert spec["argv"] == ARGV, "plain python: the environment's own, as python3's"
        assert spec["language"] == "python" and spec["env"]["LINKIS_KERNEL_ENGINE"]
