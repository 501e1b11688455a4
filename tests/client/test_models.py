"""Wire models built from hand-made bodies: the edge cases the contract describes."""

from __future__ import annotations

import random
from datetime import timezone

from hypothesis import given
from hypothesis import strategies as st

from linkis_kernel.client import DirTree, FilePage, LogChunk, Progress, TaskInfo


def _child(name: str) -> dict:
    return {"name": name, "path": f"file:///r/1/{name}", "isLeaf": True, "properties": {}}


def test_result_paths_sort_by_the_first_number_in_the_file_name() -> None:
    names = ["_10.dolphin", "_2.dolphin", "_0.dolphin", "_1.dolphin", "alias_3.dolphin"]
    tree = DirTree.from_json(
        {
            "name": "1",
            "path": "file:///r/1",
            "isLeaf": False,
            "children": [_child(n) for n in names],
        }
    )
    assert [p.rsplit("/", 1)[1] for p in tree.result_paths()] == [
        "_0.dolphin",
        "_1.dolphin",
        "_2.dolphin",
        "alias_3.dolphin",
        "_10.dolphin",
    ]


def test_dir_tree_without_children_has_no_result_paths() -> None:
    tree = DirTree.from_json({"name": "1", "path": "file:///r/1", "children": None})
    assert tree.children == [] and tree.result_paths() == [] and tree.size is None


def test_log_string_form_is_split_and_classified_by_level() -> None:
    text = (
        "2024-12-19 11:52:01.052 ERROR boom\n"
        "\tat Foo.bar(Foo.java:1)\n"
        "\n"
        "2024-12-19 11:52:01.052 SYSTEM-WARN careful\n"
        "2024-12-19 11:52:01.052 INFO fine\n"
    )
    chunk = LogChunk.from_json({"log": text, "fromLine": 7})
    assert chunk.all == [line for line in text.split("\n") if line]
    assert chunk.error == ["2024-12-19 11:52:01.052 ERROR boom"]
    assert chunk.warn == ["2024-12-19 11:52:01.052 SYSTEM-WARN careful"]
    assert chunk.info == ["\tat Foo.bar(Foo.java:1)", "2024-12-19 11:52:01.052 INFO fine"]
    assert chunk.from_line == 7


def test_log_with_null_elements_from_failover() -> None:
    chunk = LogChunk.from_json({"log": [None, None, "a\nb", "a\nb\n"], "fromLine": 3})
    assert (chunk.error, chunk.warn, chunk.info, chunk.all) == ([], [], ["a", "b"], ["a", "b"])


def test_log_without_from_line_keeps_the_requested_one() -> None:
    assert LogChunk.from_json({"log": ["", "", "", ""]}, from_line=12).from_line == 12


def test_progress_parsed_from_string_number_and_null() -> None:
    assert Progress.from_json({"progress": "1.0", "progressInfo": []}).progress == 1.0
    assert Progress.from_json({"progress": 0.5}).progress == 0.5
    assert Progress.from_json({"progress": None, "progressInfo": None}).stages == []


def test_task_info_times_are_utc_aware_and_missing_fields_are_none() -> None:
    task = TaskInfo.from_json({"taskID": "7", "status": "Inited", "createdTime": 0})
    assert task.task_id == 7 and task.progress is None and task.labels == []
    assert task.created_time.tzinfo is timezone.utc and task.created_time.year == 1970
    assert task.updated_time is None and task.err_code is None


def test_file_page_keeps_the_decoded_rows_without_copying() -> None:
    rows = [["1", None], ["2", "NULL"]]
    data = {"metadata": [{"columnName": "a", "dataType": "int", "comment": "NULL"}]}
    data |= {"fileContent": rows, "type": "2", "page": 1, "totalLine": 2}
    page = FilePage.from_json(data)
    assert page.rows is rows and page.raw is data
    assert page.columns[0].comment is None and page.rows[0][1] is None


@given(st.lists(st.integers(0, 10_000), unique=True, max_size=30), st.randoms())
def test_result_paths_are_in_numeric_order_whatever_the_listing_order(
    numbers: list[int], rnd: random.Random
) -> None:
    names = [f"_{n}.dolphin" for n in numbers]
    rnd.shuffle(names)
    tree = DirTree.from_json(
        {"name": "1", "path": "hdfs:///r/1", "children": [_child(n) for n in names]}
    )
    assert tree.result_paths() == [f"file:///r/1/_{n}.dolphin" for n in sorted(numbers)]


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=20)))
def test_log_lines_survive_the_round_trip_except_empty_ones(lines: list[str]) -> None:
    text = "\n".join(lines)
    chunk = LogChunk.from_json({"log": ["", "", text, text]})
    assert chunk.all == chunk.info == [line for line in lines if line]
