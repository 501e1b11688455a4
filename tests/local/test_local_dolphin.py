"""`.dolphin` result sets: exact bytes, round trips, paging through the sparse index."""

from __future__ import annotations

from pathlib import Path

import pytest

from linkis_kernel.local.dolphin import (
    INDEX_STRIDE,
    Column,
    DolphinFormatError,
    ResultWriter,
    index_path,
    iter_rows,
    read_header,
    read_page,
)
from linkis_kernel.wire import RESULT_TABLE, RESULT_TEXT


def test_contract_example_bytes(tmp_path: Path) -> None:
    path = tmp_path / "_0.dolphin"
    columns = [Column("id", "int", "NULL"), Column("name", "string", "user name")]
    with ResultWriter(path, RESULT_TABLE, columns) as w:
        w.write_row(["1", "alice"])
        w.write_row(["2", None])
    expected = (
        b"dolphin0000000002"
        b"0000000050" b"0000000012" b"2,3,4,4,6,9," b"idintNULLnamestringuser name"
        b"0000000020" b"0000000004" b"1,5," b"1alice"
        b"0000000027" b"0000000005" b"1,11," b"2LINKIS_NULL"
    )  # fmt: skip
    assert path.read_bytes() == expected


def test_table_round_trip_keeps_nulls_apart_from_text(tmp_path: Path) -> None:
    path = tmp_path / "_0.dolphin"
    rows = [["1", "NULL", "héllo ✓"], ["2", None, ""], ["3", "", None]]
    columns = [Column("id", "int"), Column("s", "string", "a comment"), Column("u", "string")]
    with ResultWriter(path, RESULT_TABLE, columns) as w:
        for row in rows:
            w.write_row(row)
    assert read_header(path) == (RESULT_TABLE, columns)
    assert list(iter_rows(path)) == rows
    assert read_page(path, 1, 10)[2] == rows


def test_text_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "_0.dolphin"
    lines = ["hello", "", "NULL", "wörld"]
    with ResultWriter(path, RESULT_TEXT) as w:
        for line in lines:
            w.write_line(line)
    assert path.read_bytes().startswith(b"dolphin00000000010000000004NULL")
    assert read_header(path) == (RESULT_TEXT, None)
    assert list(iter_rows(path)) == [[line] for line in lines]


def _numbers(path: Path, count: int) -> None:
    with ResultWriter(path, RESULT_TABLE, [Column("n", "int")]) as w:
        for i in range(count):
            w.write_row([str(i)])


@pytest.mark.parametrize(
    ("page", "expected"),
    [(1, list(range(7))), (2, list(range(7, 14))), (15, [98, 99]), (16, []), (40, [])],
)
def test_paging(tmp_path: Path, page: int, expected: list[int]) -> None:
    path = tmp_path / "_0.dolphin"
    _numbers(path, 100)
    type_code, columns, rows = read_page(path, page, 7)
    assert type_code == RESULT_TABLE
    assert columns == [Column("n", "int")]
    assert rows == [[str(n)] for n in expected]


def test_deep_page_seeks_past_unreadable_head(tmp_path: Path) -> None:
    """A page after the first index block never reads the rows before it."""
    path = tmp_path / "_0.dolphin"
    _numbers(path, 3 * INDEX_STRIDE)
    offsets = index_path(path).read_bytes()
    first_row = int.from_bytes(offsets[0:8], "little")
    second_block = int.from_bytes(offsets[8:16], "little")
    data = bytearray(path.read_bytes())
    data[first_row:second_block] = b"#" * (second_block - first_row)
    path.write_bytes(bytes(data))

    rows = read_page(path, 2, INDEX_STRIDE)[2]
    assert rows[0] == [str(INDEX_STRIDE)] and rows[-1] == [str(2 * INDEX_STRIDE - 1)]
    assert read_page(path, 3, 1000)[2] == [[str(n)] for n in range(2000, 3000)]
    with pytest.raises(DolphinFormatError):
        read_page(path, 1, 10)


def test_missing_index_falls_back_to_scanning(tmp_path: Path) -> None:
    path = tmp_path / "_0.dolphin"
    _numbers(path, 2500)
    index_path(path).unlink()
    assert read_page(path, 3, 1000)[2] == [[str(n)] for n in range(2000, 2500)]
    assert read_page(path, 4, 1000)[2] == []


def test_not_a_result_set(tmp_path: Path) -> None:
    path = tmp_path / "x.dolphin"
    path.write_bytes(b"hello world")
    with pytest.raises(DolphinFormatError, match=r"not a \.dolphin"):
        read_header(path)


def test_a_result_still_being_written_reads_up_to_its_last_whole_row(tmp_path: Path) -> None:
    path = tmp_path / "_0.dolphin"
    _numbers(path, 10)
    index_path(path).unlink()  # the index appears only when the writer closes
    path.write_bytes(path.read_bytes()[:-3])
    assert read_page(path, 1, 100)[2] == [[str(n)] for n in range(9)]
    assert len(list(iter_rows(path))) == 9
