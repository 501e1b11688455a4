"""A result-set download holds at most 5000 rows whatever `limit` asks; `limit` only lowers it.

(docs/linkis-rest.md, "Result files".)
"""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from support.serverproc import ServerProcess
from support.twousers import guest_client

from linkis_kernel import wire
from linkis_kernel.local.excel import DOWNLOAD_ROW_LIMIT


@pytest.fixture(scope="module")
def big_result(linkis_server: ServerProcess) -> str:
    """The path of a guest's result set of 6000 rows (creator nbtest: no IDE `limit 5000`)."""
    guest = guest_client(linkis_server)
    job = linkis_server.submit(
        "select range as n from range(6000)", engine="duckdb", creator="nbtest", session=guest
    )
    assert linkis_server.wait(job["execID"], session=guest) == wire.SUCCEED
    return linkis_server.result_paths(job["taskID"], session=guest)[0]


def _download(server: ServerProcess, path: str, **params: object) -> bytes:
    response = guest_client(server).get(
        server.api("filesystem/resultsetToExcel"), params={"path": path, **params}, timeout=60
    )
    assert response.status_code == 200 and not response.content.startswith(b"error")
    return response.content


@pytest.mark.parametrize("limit", [0, 5001, 6000, 10**9])
def test_csv_download_is_capped_whatever_limit_asks(
    linkis_server: ServerProcess, big_result: str, limit: int
) -> None:
    text = _download(linkis_server, big_result, limit=limit).decode()
    assert text.count("\n") == 1 + DOWNLOAD_ROW_LIMIT


def test_xlsx_download_is_capped_whatever_limit_asks(
    linkis_server: ServerProcess, big_result: str
) -> None:
    data = _download(linkis_server, big_result, outputFileType="xlsx", limit=10**6)
    sheet = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    assert len(re.findall(r"<row ", sheet)) == 1 + DOWNLOAD_ROW_LIMIT


def test_a_smaller_limit_still_lowers_the_cap(
    linkis_server: ServerProcess, big_result: str
) -> None:
    text = _download(linkis_server, big_result, limit=7).decode()
    assert text.count("\n") == 1 + 7
