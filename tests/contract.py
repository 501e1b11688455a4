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
# The execID the examples use: a job of another entrance, unknown to any test server.
EXAMPLE_EXEC_ID = "exec_id018016linkis-cg-entrancelinkis-host:9104IDE_hadoop_spark_0"


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


def _kind(value: Any) -> str:
    return "bool" if isinstance(value, bool) else type(value).__name__


def shape_differences(expected: Any, actual: Any, where: str = "data") -> list[str]:
    """How `actual` differs in shape from `expected` (keys, JSON types; null fits anything)."""
    if expected is None or actual is None:
        return []
    if _kind(expected) != _kind(actual):
        return [f"{where}: expected {_kind(expected)}, got {_kind(actual)} ({actual!r:.80})"]
    if isinstance(expected, dict):
        problems = [f"{where}: missing key {k!r}" for k in expected if k not in actual]
        problems += [f"{where}: unexpected key {k!r}" for k in actual if k not in expected]
        for key in expected.keys() & actual.keys():
            problems += shape_differences(expected[key], actual[key], f"{where}.{key}")
        return problems
    if isinstance(expected, list) and expected and actual:
        return shape_differences(expected[0], actual[0], f"{where}[0]")
    return []
