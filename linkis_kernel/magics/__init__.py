"""`%%linkis` and `%linkis` for IPython, and the extension that registers them.

`magic` holds `LinkisMagics` (the cell magic, its settings and the dispatch of `%linkis`),
`subcommands` the `%linkis <subcommand>` handlers, `errors` how Linkis errors read in a cell;
parsing the magic's arguments lives in `linkis_kernel.options`.
"""

from __future__ import annotations

import atexit
from typing import Any

from .errors import MAGIC_COMMANDS, short_errors
from .magic import LinkisMagics

__all__ = [
    "MAGIC_COMMANDS",
    "LinkisMagics",
    "linkis_magics",
    "load_ipython_extension",
    "short_errors",
    "unload_ipython_extension",
]

_registered: dict[int, LinkisMagics] = {}


def load_ipython_extension(ipython: Any) -> None:
    """Register `%%linkis`/`%linkis`, make `%config LinkisMagics` work, kill jobs at exit."""
    linkis_magics(ipython)


def linkis_magics(ipython: Any) -> LinkisMagics:
    """The shell's LinkisMagics (registering them first if needed), e.g. for a kernel that
    runs cells through `run_cell` and calls `shutdown` itself."""
    if id(ipython) not in _registered:
        magics = LinkisMagics(shell=ipython, parent=ipython)  # joins ipython.configurables
        ipython.register_magics(magics)
        atexit.register(magics.shutdown)
        _registered[id(ipython)] = magics
    return _registered[id(ipython)]


def unload_ipython_extension(ipython: Any) -> None:
    magics = _registered.pop(id(ipython), None)
    if magics is None:
        return
    atexit.unregister(magics.shutdown)
    ipython.configurables[:] = [each for each in ipython.configurables if each is not magics]
    ipython.magics_manager.magics["line"].pop("linkis", None)
    ipython.magics_manager.magics["cell"].pop("linkis", None)
