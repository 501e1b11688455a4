"""Job logs: `entrance/{id}/log` paging semantics and `filesystem/openLog` level inheritance."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from linkis_kernel.local.logfile import ERROR, INFO, WARN, JobLog, format_line, read_whole_log


@pytest.fixture
def log(tmp_path: Path) -> JobLog:
    log = JobLog(tmp_path / "log" / "1.log")
    log.write(INFO, "one")
    log.write(WARN, "two")
    log.write(ERROR, "three\n  at continuation")  # two physical lines, the 2nd unprefixed
    log.write(INFO, "five")
    return log


def _messages(text: str) -> list[str]:
    return [line.split(" ", 3)[-1] if line[:1].isdigit() else line for line in text.split("\n")]


def test_line_format_has_real_milliseconds() -> None:
    from datetime import datetime

    line = format_line(INFO, "hi", datetime(2024, 12, 19, 11, 52, 1, 52_000))
    assert line == "2024-12-19 11:52:01.052 INFO hi"


def test_from_zero_and_from_one_read_the_same_lines(log: JobLog) -> None:
    from_zero = log.read(0, 100)
    from_one = log.read(1, 100)
    assert from_zero["log"] == from_one["log"]
    assert from_zero["fromLine"] == 6 and from_one["fromLine"] == 6
    assert _messages(from_zero["log"][3]) == ["one", "two", "three", "  at continuation", "five"]


def test_levels_are_split_and_unprefixed_lines_count_as_info(log: JobLog) -> None:
    error, warn, info, everything = log.read(0, 100)["log"]
    assert _messages(error) == ["three"]
    assert _messages(warn) == ["two"]
    assert _messages(info) == ["one", "  at continuation", "five"]
    assert not everything.endswith("\n")
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} INFO one$", everything.split("\n")[0])


def test_paging_continues_seamlessly(log: JobLog) -> None:
    first = log.read(0, 3)  # the empty slot at 0 plus lines 1 and 2
    assert first["fromLine"] == 3
    assert _messages(first["log"][3]) == ["one", "two"]
    second = log.read(first["fromLine"], 3)
    assert second["fromLine"] == 6
    assert _messages(second["log"][3]) == ["three", "  at continuation", "five"]
    nothing = log.read(second["fromLine"], 3)
    assert nothing == {"log": ["", "", "", ""], "fromLine": 6}
    log.write(INFO, "six")
    assert _messages(log.read(6, 3)["log"][3]) == ["six"]


def test_negative_size_reads_everything(log: JobLog) -> None:
    for _ in range(200):
        log.write(INFO, "more")
    page = log.read(1, -1)
    assert page["fromLine"] == 206
    assert len(page["log"][3].split("\n")) == 205


def test_distinct_level_false_gives_one_string(log: JobLog) -> None:
    page = log.read(2, 2, distinct_level=False)
    assert isinstance(page["log"], str)
    assert _messages(page["log"]) == ["two", "three"]
    assert page["fromLine"] == 4


def test_open_log_inherits_levels_and_ends_lines(log: JobLog) -> None:
    error, warn, info, everything = read_whole_log(log.path)
    assert _messages(error.rstrip("\n")) == ["three", "  at continuation"]
    assert _messages(warn.rstrip("\n")) == ["two"]
    assert _messages(info.rstrip("\n")) == ["one", "five"]
    assert everything.endswith("five\n") and everything.count("\n") == 5
