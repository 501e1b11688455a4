"""`serve --engine-memory`: no job of one user can take the server's memory.

Each engine process (a user's SQL engine, Python and PySpark engines, shell jobs) may use at most
the memory the option gives it. A job that asks for more fails with an error saying so, the
server and the other user's jobs go on, and the next job of the same user runs again.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.serverproc import ServerProcess, start_server
from support.twousers import ALICE, BOB

from linkis_kernel import LinkisClient

CAP = "400MB"
PYTHON_HOG = "hog = bytearray(2 << 30)"
SHELL_HOG = "python3 -c 'hog = bytearray(2 << 30)'"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("engine-memory")
    with start_server(data, args=["--engine-memory", CAP], users=[BOB, ALICE]) as started:
        yield started


def _client(server: ServerProcess, user: dict[str, str]) -> LinkisClient:
    return LinkisClient(server.url, user=user["name"], token=user["token"])


def test_a_python_job_gets_a_memory_error_naming_the_cap(server: ServerProcess) -> None:
    bob = _client(server, BOB)
    bob.submit("kept = 41", engine="python").wait(timeout=90)
    hog = bob.submit(PYTHON_HOG, engine="python")
    hog.wait(timeout=90, raise_on_failure=False)
    assert hog.state == "Failed"
    failure = str(hog.failure())
    assert "MemoryError" in failure and "at most 400 MB" in failure
    assert "serve --engine-memory" in failure
    after = bob.submit("print(kept + 1)", engine="python")
    after.wait(timeout=90)
    assert str(after.results()[0].data).strip() == "42"  # the engine lived on


def test_a_shell_job_cannot_take_more_than_the_cap(server: ServerProcess) -> None:
    hog = _client(server, BOB).submit(SHELL_HOG, engine="shell")
    hog.wait(timeout=90, raise_on_failure=False)
    assert hog.state == "Failed"
    assert "MemoryError" in str(hog.failure())


def test_memory_under_the_cap_is_there(server: ServerProcess) -> None:
    job = _client(server, ALICE).submit(
        "fits = bytearray(200 << 20)\nprint(len(fits) >> 20)", engine="python"
    )
    job.wait(timeout=90)
    assert str(job.results()[0].data).strip() == "200"
