"""The Linkis contract's example bodies (shared/linkis-api/examples), for tests.

They live outside the repository: in `../shared/linkis-api/examples` next to the checkout, or
wherever `$LINKIS_API_EXAMPLES` says.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_ENV = "LINKIS_API_EXAMPLES"


def examples_dir() -> Path:
    """The example bodies: $LINKIS_API_EXAMPLES, else ../shared/linkis-api/examples."""
    configured = os.environ.get(EXAMPLES_ENV)
    folder = (
        Path(configured) if configured else REPO_ROOT / ".." / "shared" / "linkis-api" / "examples"
    )
    if not folder.is_dir():
        pytest.fail(
            f"Linkis example bodies not found at {folder.resolve()}: check out shared/ next to "
            f"the repository or set {EXAMPLES_ENV} to the examples folder.",
            pytrace=False,
        )
    return folder


def load_example(name: str) -> dict[str, Any]:
    """One example file, parsed."""
    return json.loads((examples_dir() / name).read_text())
