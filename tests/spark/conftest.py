"""One embedded server running a real local Spark, shared by a module's tests.

pyspark is part of the test extra: without it (or without Java) these tests fail, they do not
skip. The rest of the suite runs engine spark on DuckDB's stand-in (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pyspark  # noqa: F401 (fails the folder loudly when the spark extra is missing)
import pytest
from support.serverproc import ServerProcess, start_server

from linkis_kernel import LinkisClient

SPARK_START_TIMEOUT = 180.0


@pytest.fixture(scope="module")
def spark_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose engine spark is a real local Spark (LINKIS_KERNEL_SPARK=pyspark)."""
    server = start_server(
        tmp_path_factory.mktemp("spark-data"), env={"LINKIS_KERNEL_SPARK": "pyspark"}
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def spark_client(spark_server: ServerProcess) -> LinkisClient:
    """A client of that server whose first job has started the Spark engine."""
    client = spark_server.linkis_client()
    client.submit("print('warm')", engine="spark", run_type="python").wait(SPARK_START_TIMEOUT)
    return client
