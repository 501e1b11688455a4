"""An in-process IPython shell with the linkis_kernel extension loaded, for the magics tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from IPython.core.interactiveshell import InteractiveShell


@contextmanager
def extension_loaded() -> Iterator[InteractiveShell]:
    """The plain IPython shell with the extension freshly loaded, with no leftover %config of
    LinkisMagics before or after."""
    ip = InteractiveShell.instance()
    ip.config.pop("LinkisMagics", None)
    ip.run_line_magic("load_ext", "linkis_kernel")
    try:
        yield ip
    finally:
        ip.run_line_magic("unload_ext", "linkis_kernel")
        ip.config.pop("LinkisMagics", None)  # %config lands in the shell's config too
