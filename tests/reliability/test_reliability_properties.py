"""Property tests of the embedded server's file formats and input handling.

Job logs read in pages of any size, `.dolphin` round trips of arbitrary cells, `${var}`
substitution on arbitrary text, and client paths that must never leave the user's area.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from linkis_kernel.local.dolphin import Column, ResultWriter, iter_rows, read_header, read_page
from linkis_kernel.local.errors import ServiceError
from linkis_kernel.local.logfile import ERROR, INFO, WARN, JobLog, read_whole_log
from linkis_kernel.local.paths import Layout
from linkis_kernel.local.variables import VariableError, substitute
from linkis_kernel.wire import NULL_MARKER, RESULT_TABLE, RESULT_TEXT

PROPERTIES = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# One log line: any text without the two characters that end a line in the log file.
_line_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"))
_messages = st.lists(st.tuples(st.sampled_from([INFO, WARN, ERROR]), _line_text), max_size=40)


def _read_in_pages(log: JobLog, start: int, size: int) -> list[str]:
    """Follow `fromLine` from `start` in pages of `size` lines until a page brings nothing."""
    lines: list[str] = []
    from_line = start
    while True:
        page = log.read(from_line, size)
        if page["fromLine"] == from_line:
            return lines
        text = page["log"][3]
        lines.extend(text.split("\n") if text else [])
        from_line = page["fromLine"]


@PROPERTIES
@given(messages=_messages, size=st.integers(1, 12), start=st.sampled_from([0, 1]))
def test_a_log_read_in_pages_of_any_size_is_the_whole_log(
    messages: list[tuple[str, str]], size: int, start: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = JobLog(Path(tmp) / "1.log")
        for level, message in messages:
            log.write(level, message)
        paged = _read_in_pages(log, start, size)
        assert len(paged) == len(messages) == log.line_count
        for line, (level, message) in zip(paged, messages, strict=True):
            assert line.endswith(f" {level} {message}")
        persisted = read_whole_log(log.path)[3]
        assert persisted == "".join(line + "\n" for line in paged)


_cell = st.one_of(
    st.none(),
    st.just(""),
    st.just("NULL"),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=30),
)


@PROPERTIES
@given(
    width=st.integers(1, 4),
    data=st.data(),
    page_size=st.integers(1, 7),
    comment=st.none() | st.text(st.characters(exclude_categories=["Cs"]), max_size=10),
)
def test_dolphin_tables_round_trip_any_cells(
    width: int, data: st.DataObject, page_size: int, comment: str | None
) -> None:
    rows = data.draw(st.lists(st.lists(_cell, min_size=width, max_size=width), max_size=25))
    assume(all(cell != NULL_MARKER for row in rows for cell in row))  # the format's null marker
    columns = [Column(f"c{i} ✓", "string", comment) for i in range(width)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "_0.dolphin"
        with ResultWriter(path, RESULT_TABLE, columns) as writer:
            for row in rows:
                writer.write_row(row)
        type_code, read_columns = read_header(path)
        assert type_code == RESULT_TABLE and [c.name for c in read_columns] == [
            c.name for c in columns
        ]
        assert list(iter_rows(path)) == rows
        pages = [read_page(path, n, page_size)[2] for n in range(1, len(rows) // page_size + 2)]
        assert [row for page in pages for row in page] == rows


@PROPERTIES
@given(lines=st.lists(st.text(st.characters(exclude_categories=["Cs"]), max_size=40)))
def test_dolphin_text_round_trips_any_lines(lines: list[str]) -> None:
    assume(NULL_MARKER not in lines)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "_0.dolphin"
        with ResultWriter(path, RESULT_TEXT) as writer:
            for line in lines:
                writer.write_line(line)
        assert list(iter_rows(path)) == [[line] for line in lines]


_undefined_name = st.from_regex(r"q_[A-Za-z0-9_]{0,8}", fullmatch=True)
_code_piece = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["${", "}", "${run_date}", "${run_date-1}", "&{yyyyMMdd%-1d}", "@set a=1\n"]),
    st.sampled_from(["${ run_date + x }", "${a*b}", "--@set b=2\n", "${user}", "$", "{"]),
)


@PROPERTIES
@given(
    pieces=st.lists(_code_piece, max_size=12),
    undefined=st.lists(_undefined_name, max_size=3),
    given_vars=st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), st.text(max_size=8)),
    lang=st.sampled_from(["sql", "python", "shell"]),
)
def test_substitution_never_crashes_and_leaves_unknown_names_alone(
    pieces: list[str], undefined: list[str], given_vars: dict[str, str], lang: str
) -> None:
    references = [f"${{{name}}}" for name in undefined]
    code = " ".join([*pieces, *references])
    try:
        result = substitute(code, lang, dict(given_vars), user="alice", submit_user="alice")
    except VariableError:
        return  # a clear, reported refusal (e.g. a date pushed out of the calendar)
    for reference in references:
        assert reference in result.code
        assert any(reference[2:-1] in warning for warning in result.warnings)


_segment = st.one_of(
    st.sampled_from(["..", ".", "", "result", "log", "2026-01-01", "IDE", "alice", "bob"]),
    st.sampled_from(["escape", "%2e%2e", "~", "..\\..", "x\x00y", "/", "file:", "outside"]),
    st.text(st.characters(codec="utf-8", exclude_characters="/"), max_size=6),
)


@settings(PROPERTIES, max_examples=300)
@given(
    segments=st.lists(_segment, max_size=8),
    rooted=st.booleans(),
    scheme=st.booleans(),
)
def test_no_client_path_leaves_the_users_area(
    segments: list[str], rooted: bool, scheme: bool
) -> None:
    root = _path_world()
    own_area = {root / area for area in ("result", "log")}
    text = "/".join(segments)
    if rooted:
        text = f"{root}/{text}"
    raw = f"file://{text}" if scheme else text
    try:
        found = Layout(root).user_path("alice", raw)
    except ServiceError as err:
        assert err.status in (3,) or err.code == 80004, err.message
        return
    real = Path(os.path.realpath(found))
    area = next((a for a in own_area if real.is_relative_to(a)), None)
    assert area is not None, f"{raw!r} resolved to {real}"
    assert real.relative_to(area).parts[2] == "alice", f"{raw!r} resolved to {real}"


_WORLD: list[Path] = []


def _path_world() -> Path:
    """A data dir with alice's and bob's files and symlinks that point out of alice's area."""
    if _WORLD:
        return _WORLD[0]
    root = Path(tempfile.mkdtemp(prefix="linkis-paths-")).resolve()
    for user in ("alice", "bob"):
        for area in ("result", "log"):
            folder = root / area / "2026-01-01" / "IDE" / user
            folder.mkdir(parents=True)
            (folder / "1.log").write_text("x")
    alice = root / "result" / "2026-01-01" / "IDE" / "alice"
    (root / "outside").mkdir()
    (alice / "escape").symlink_to(root / "outside")
    (alice / "bob").symlink_to(root / "result" / "2026-01-01" / "IDE" / "bob")
    _WORLD.append(root)
    return root
