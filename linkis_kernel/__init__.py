"""Jupyter-native access to Apache Linkis.

`from linkis_kernel import LinkisClient` gives the Python API; `%load_ext linkis_kernel` in IPython
gives the `%%linkis` and `%linkis` magics. Heavy modules load on first use.
"""

from __future__ import annotations

from typing import Any

from .version import __version__ as __version__

_LAZY = {
    "LinkisClient": "linkis_kernel.job",
    "Job": "linkis_kernel.job",
    "Snapshot": "linkis_kernel.job",
    "ResultSet": "linkis_kernel.results",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name.startswith("Linkis") and name.endswith("Error"):
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module 'linkis_kernel' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext linkis_kernel`: register the `%%linkis` and `%linkis` magics."""
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .magics import unload_ipython_extension as unload

    unload(ipython)
