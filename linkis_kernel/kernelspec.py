"""The Linkis kernelspecs and `linkis-kernel install`.

Each folder of `kernelspec/` holds one kernelspec: `kernel.json` (the defaults travel in
`env`: LINKIS_KERNEL_ENGINE, LINKIS_KERNEL_RUN_TYPE, LINKIS_KERNEL_LANGUAGE) and its logos.
The wheel ships them as they are in `share/jupyter/kernels/` (shared data), so `pip install`
registers them with the environment's Jupyter; their `argv` starts with plain `python`, as
ipykernel's python3 does. `linkis-kernel install` (--user, --sys-prefix, --prefix) writes them
with `argv` naming the Python that runs the install. The kernelspec `language` is `python` for
every kernel: papermill picks its Python translator from it (see kernel.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KERNEL_MODULE = "linkis_kernel.kernel"
_PACKAGE_DIR = Path(__file__).resolve().parent
# In a wheel the folders sit inside the package (kernelspecs/); in a checkout, at the top.
_SOURCE_DIRS = (_PACKAGE_DIR / "kernelspecs", _PACKAGE_DIR.parent / "kernelspec")


@dataclass(frozen=True)
class KernelSpecSource:
    """One kernelspec folder: its name, where it lives, and its kernel.json."""

    name: str
    directory: Path
    spec: dict[str, Any]

    @property
    def display_name(self) -> str:
        return str(self.spec.get("display_name", self.name))

    def kernel_json(self, python: str) -> dict[str, Any]:
        """The kernel.json to install: the shipped one with `argv` running `python`."""
        argv = [python, "-m", KERNEL_MODULE, "-f", "{connection_file}"]
        return {**self.spec, "argv": argv}


def source_dir() -> Path:
    """The `kernelspec/` folder shipped with the package."""
    for candidate in _SOURCE_DIRS:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        "The Linkis kernelspec folder is missing (looked in "
        + " and ".join(str(path) for path in _SOURCE_DIRS)
        + "); reinstall linkis-kernel."
    )


def kernelspecs() -> dict[str, KernelSpecSource]:
    """Every kernelspec shipped, by name."""
    found = {}
    for folder in sorted(source_dir().iterdir()):
        spec_file = folder / "kernel.json"
        if spec_file.is_file():
            found[folder.name] = KernelSpecSource(
                folder.name, folder, json.loads(spec_file.read_text())
            )
    return found


def install_kernelspec(
    source: KernelSpecSource, *, user: bool = False, prefix: str | None = None
) -> str:
    """Install one kernelspec (replacing an older one of that name); returns where it went."""
    from jupyter_client.kernelspec import KernelSpecManager

    with tempfile.TemporaryDirectory() as staging:
        target = Path(staging) / source.name
        shutil.copytree(source.directory, target)
        spec = source.kernel_json(sys.executable)
        (target / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
        return KernelSpecManager().install_kernel_spec(
            str(target), kernel_name=source.name, user=user, prefix=prefix, replace=True
        )


def install_location(args: argparse.Namespace) -> tuple[bool, str | None, str]:
    """(user, prefix, description) from `--user`, `--sys-prefix` or `--prefix`; without any,
    the active virtual environment if there is one, else the user's Jupyter directory."""
    if args.prefix:
        return False, args.prefix, f"prefix {args.prefix}"
    in_venv = sys.prefix != sys.base_prefix
    if args.sys_prefix or (not args.user and in_venv):
        return False, sys.prefix, f"sys.prefix {sys.prefix}"
    return True, None, "the user's Jupyter directory"


def install_main(args: argparse.Namespace) -> int:
    """`linkis-kernel install [--user|--sys-prefix|--prefix P] [--name N ...]`."""
    try:
        available = kernelspecs()
    except (OSError, ValueError) as exc:
        print(f"linkis-kernel install: cannot read the kernelspecs: {exc}", file=sys.stderr)
        return 1
    names = args.name or list(available)
    unknown = [name for name in names if name not in available]
    if unknown:
        print(
            f"linkis-kernel install: no kernelspec named {', '.join(unknown)}; "
            f"choose from {', '.join(available)}.",
            file=sys.stderr,
        )
        return 2
    user, prefix, where = install_location(args)
    for name in names:
        source = available[name]
        try:
            path = install_kernelspec(source, user=user, prefix=prefix)
        except OSError as exc:
            print(
                f"linkis-kernel install: could not install {name} into {where}: {exc}. "
                "Try --user, --sys-prefix or --prefix DIR.",
                file=sys.stderr,
            )
            return 1
        print(f"Installed kernelspec {name} ({source.display_name}) in {path}")
    print(f"Python for the kernels: {sys.executable}. List them with `jupyter kernelspec list`.")
    return 0
