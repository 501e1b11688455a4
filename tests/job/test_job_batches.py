"""Big results against the real embedded server: `job.iter_batches()`, Parquet downloads, and
`job.result()` agreeing on every type and value; a failed page leaves no file behind."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from support.faultproxy import FaultProxy

from linkis_kernel.client import LinkisError, LinkisValidationError
from linkis_kernel.job import Job
from linkis_kernel.results import PARQUET_INSTALL

pytest.importorskip("pyarrow")

REPEATS = 40
# Every type the converters know, with nulls, the text "NULL", extreme integers, a hugeint (no
# declared precision) and a decimal(18,2), dates, microsecond timestamps and booleans.
TYPED_SQL = f"""
select r.range * 3 + t.id as id, t.tiny, t.big, t.huge, t.dec, t.flt, t.flag, t.day, t.ts, t.txt
from (values
  (0, 127::tinyint, 9223372036854775807::bigint,
   170141183460469231731687303715884105727::hugeint, 12.34::decimal(18,2), 1.5::double,
   true, date '2024-02-29', timestamp '2024-02-29 23:59:59.123456', 'NULL'),
  (1, null, (-9223372036854775807 - 1)::bigint, null, null, null, null, null, null, null),
  (2, (-128)::tinyint, null, (-170141183460469231731687303715884105727)::hugeint,
   (-0.01)::decimal(18,2), (-0.25)::double, false, date '1970-01-01',
   timestamp '1970-01-01 00:00:00', '')
) t(id, tiny, big, huge, dec, flt, flag, day, ts, txt), range({REPEATS}) r
order by id
"""


@pytest.fixture(scope="module")
def typed_job(linkis_server) -> Job:
    job = linkis_server.linkis_client().submit(TYPED_SQL, engine="spark", creator="nb")
    job.wait(timeout=60)
    return job


def test_batches_and_parquet_hold_the_types_and_values_of_result(
    typed_job: Job, tmp_path: Path
) -> None:
    frame = typed_job.result()
    assert len(frame) == 3 * REPEATS
    assert [str(t) for t in frame.dtypes] == [
        "Int64",
        "Int8",
        "Int64",
        "object",
        "object",
        "float64",
        "boolean",
        "datetime64[us]",
        "datetime64[us]",
        "string",
    ]
    first, second = frame.iloc[0], frame.iloc[1]
    assert first["txt"] == "NULL" and pd.isna(second["txt"]) and frame.iloc[2]["txt"] == ""
    assert first["big"] == 2**63 - 1 and second["big"] == -(2**63)
    assert first["huge"] == Decimal(2**127 - 1) and second["huge"] is None
    assert first["dec"] == Decimal("12.34") and first["ts"] == pd.Timestamp(
        "2024-02-29 23:59:59.123456"
    )

    batches = list(typed_job.iter_batches(batch_rows=7, page_size=5))
    assert [len(b) for b in batches] == [7] * (len(frame) // 7) + [len(frame) % 7]
    pd.testing.assert_frame_equal(pd.concat(batches), frame)
    assert all(list(b.dtypes) == list(frame.dtypes) for b in batches)

    seen: list[tuple[int, int | None]] = []
    path = typed_job.download(
        tmp_path / "typed.parquet", batch_rows=50, on_progress=lambda *a: seen.append(a)
    )
    assert path == tmp_path / "typed.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame)
    assert seen and seen[-1][0] == len(frame) and seen[-1][1] is not None
    assert abs(seen[-1][1] - len(frame)) < len(frame) * 0.2, "the estimate is near the truth"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["typed.parquet"]


def test_parquet_row_groups_follow_the_batches(typed_job: Job, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    path = typed_job.download(tmp_path / "groups.parquet", batch_rows=50, page_size=20)
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [50, 50, 20]
    decimal_field = pq.read_schema(path).field("dec").type
    assert (decimal_field.precision, decimal_field.scale) == (18, 2)


def test_an_empty_table_gives_one_empty_batch_and_a_parquet_file_with_its_columns(
    linkis_server, tmp_path: Path
) -> None:
    job = linkis_server.linkis_client().submit(
        "select 1::int as a, 'x' as b where false", engine="spark", creator="nb"
    )
    job.wait(timeout=30)
    (batch,) = list(job.iter_batches())
    assert batch.empty and list(batch.columns) == ["a", "b"]
    read = pd.read_parquet(job.download(tmp_path / "empty.parquet"))
    pd.testing.assert_frame_equal(read, job.result())


def test_a_page_failing_mid_stream_raises_and_leaves_no_file(
    linkis_server, typed_job: Job, tmp_path: Path
) -> None:
    target = tmp_path / "out.parquet"
    target.write_bytes(b"an older file")
    with FaultProxy(linkis_server.url) as proxy:
        job = linkis_server.linkis_client(proxy.url, retries=0).job(typed_job.task_id)
        pages: list[int] = []

        def fail_after_first_page(rows: int, total: int | None) -> None:
            pages.append(rows)
            if len(pages) == 1:
                proxy.inject("html502", r"/filesystem/openFile$", count=None)

        with pytest.raises(LinkisError) as caught:
            job.download(target, page_size=10, batch_rows=20, on_progress=fail_after_first_page)
        failed = [r for r in proxy.requests if r.fault]
    assert caught.value.http_status == 502
    assert failed and len(pages) < 3 * REPEATS / 10, "it stopped before the end"
    assert target.read_bytes() == b"an older file", "the older file is left as it was"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"], "no partial file"


def test_the_format_comes_from_the_suffix_unless_given(typed_job: Job, tmp_path: Path) -> None:
    csv = typed_job.download(tmp_path / "out.csv")
    assert csv.read_text().splitlines()[0] == "id,tiny,big,huge,dec,flt,flag,day,ts,txt"
    forced = typed_job.download(tmp_path / "out.data", format="parquet")
    assert len(pd.read_parquet(forced)) == 3 * REPEATS
    with pytest.raises(LinkisValidationError, match="formats are csv, xlsx, parquet"):
        typed_job.download(tmp_path / "out.json", format="json")
    with pytest.raises(LinkisValidationError, match="not charset"):
        typed_job.download(tmp_path / "x.parquet", charset="gbk")
    with pytest.raises(LinkisValidationError, match="does not exist"):
        typed_job.download(tmp_path / "missing" / "x.parquet")
    with pytest.raises(ValueError, match="batch_rows must be at least 1"):
        typed_job.iter_batches(batch_rows=0)


def test_a_text_result_is_not_read_as_batches(linkis_server) -> None:
    job = linkis_server.linkis_client().submit("print('hi')", engine="python")
    job.wait(timeout=30)
    with pytest.raises(LinkisError, match="is not a table"):
        next(job.iter_batches())


def test_without_pyarrow_parquet_names_the_install_command() -> None:
    code = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "from linkis_kernel.results import require_pyarrow\n"
        "try:\n    require_pyarrow()\nexcept Exception as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "needs pyarrow" in out.stdout and PARQUET_INSTALL in out.stdout


def test_reading_a_small_result_costs_one_history_read_one_listing_and_one_page(
    linkis_server, typed_job: Job
) -> None:
    with FaultProxy(linkis_server.url) as proxy:
        job = linkis_server.linkis_client(proxy.url).job(typed_job.task_id)
        proxy.requests.clear()
        assert len(job.result()) == 3 * REPEATS
        kinds = [path.rsplit("/", 1)[-1] for path in proxy.paths()]
    assert kinds == ["get", "getDirFileTrees", "openFile"]
