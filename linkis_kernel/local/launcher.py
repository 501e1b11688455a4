"""The embedded server's files in its data directory.

Clients find the server through `connection.json` (see `linkis_kernel.wire`) and start it with
`linkis_kernel.client.embedded`; the server writes that file, privately, with the helper here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_private_json(target: Path, value: Any) -> None:
    """Write a JSON file atomically, readable by its owner only (it may hold secrets)."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(value, handle, indent=2)
    os.replace(temporary, target)
