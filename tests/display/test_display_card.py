"""The job card, result headers and footers, and result rendering."""

from __future__ import annotations

import pandas as pd
import pytest

from linkis_kernel.display.card import (
    JobCard,
    Limits,
    LinkisCellError,
    PictureView,
    ResultSummary,
    TextView,
    format_duration,
    result_view,
    summarize_results,
    table_footer,
)
from linkis_kernel.magics import MAGIC_COMMANDS
from linkis_kernel.results import ResultSet

EXEC_ID = "exec_id018030linkis-cg-entrance127.0.0.1:9104IDE_alice_spark_0"


def table(rows: int, *, truncated: bool = False, truncation: str | None = None) -> ResultSet:
    frame = pd.DataFrame({"n": pd.array(range(rows), dtype="Int64"), "s": ["<b>x</b>"] * rows})
    return ResultSet(0, "/r/_0.dolphin", "2", "table", None, frame, rows, truncated, truncation)


def test_succeed_card_names_what_ran_and_how_to_see_the_log() -> None:
    card = JobCard(
        "spark-3.2.1",
        EXEC_ID,
        42,
        "Succeed",
        75.0,
        run_type="sql",
        results=(
            ResultSummary(0, "text", None),
            ResultSummary(1, "table", 5000, "truncated by cap"),
        ),
        commands=MAGIC_COMMANDS,
    )
    text = card.text()
    assert text.splitlines()[0] == "Linkis spark-3.2.1 (sql) · task 42 · Succeed in 1m15s"
    assert EXEC_ID not in text, "users type the task id; the exec id is a tooltip"
    assert "result 1 of 2: text" in text
    assert "result 2 of 2: table, 5,000 rows fetched; truncated by cap" in text
    assert "fetch limit" not in text, "nothing was cut by the fetch limit"
    assert "log: %linkis log 42" in text
    bundle = card._repr_mimebundle_()
    assert bundle["text/plain"] == text
    page = bundle["text/html"]
    assert "Succeed</b>" in page and f'<code title="exec id {EXEC_ID}">42</code>' in page
    assert "<code>%linkis log 42</code>" in page
    assert "<script" not in page


@pytest.mark.parametrize("state", ["Failed", "Cancelled"])
def test_unsuccessful_card_points_at_the_error_log_and_escapes(state: str) -> None:
    card = JobCard(
        "hive",
        EXEC_ID,
        7,
        state,
        3.25,
        note="kill requested: <confirmed> Cancelled",
        log_tail=("ERROR table <t> not found",),
        commands=MAGIC_COMMANDS,
    )
    text = card.text()
    assert f"· {state} in 3.2s" in text
    assert "%linkis log 7 --level error" in text
    assert "  | ERROR table <t> not found" in text
    page = card.html()
    assert "&lt;confirmed&gt;" in page and "<confirmed>" not in page
    assert "table &lt;t&gt; not found" in page
    assert f">{state}</b>" in page
    assert str(card) == text


def test_the_log_hint_is_worded_by_the_caller() -> None:
    shell = {**MAGIC_COMMANDS, "log": "linkis-kernel log {ref}"}
    card = JobCard("shell-1", EXEC_ID, None, "Failed", 1.0, note="see `linkis-kernel jobs`")
    assert "log:" not in card.text() and "%linkis" not in card.text()
    assert "see <code>linkis-kernel jobs</code>" in card.html()
    worded = JobCard("shell-1", EXEC_ID, None, "Failed", 1.0, commands=shell)
    assert f"log: linkis-kernel log {EXEC_ID} --level error" in worded.text()
    assert f"<code>linkis-kernel log {EXEC_ID} --level error</code>" in worded.html()


def test_durations() -> None:
    assert format_duration(0.42) == "0.4s"
    assert format_duration(125) == "2m05s"
    assert format_duration(3725) == "1h02m"


def test_footer_names_display_fetch_and_engine_limits() -> None:
    limits = Limits(
        display_limit=50,
        fetch_limit=1000,
        fetch_limit_source="--limit",
        display_limit_source="LinkisMagics.display_limit",
    )
    assert table_footer(5, table(5), limits) == "5 rows; complete"
    assert table_footer(1, table(1), limits) == "1 row; complete"
    fetch_cut = table(1000, truncated=True, truncation="the fetch limit 1,000 (limit=1000)")
    assert table_footer(50, fetch_cut, limits) == (
        "showing 50 of 1,000 rows fetched (display limit 50, LinkisMagics.display_limit); "
        "fetch limit 1,000 (--limit); more rows exist"
    )
    engine_cut = table(5000, truncated=True, truncation="the engine's default 5000-row cap")
    roomy = Limits(display_limit=50, fetch_limit=100000)
    footer = table_footer(50, engine_cut, roomy)
    assert footer.startswith("showing 50 of 5,000 rows fetched (display limit 50); ")
    assert footer.endswith("truncated by the engine's default 5000-row cap")


def test_table_view_keeps_every_row_but_shows_display_limit_rows() -> None:
    result = table(120)
    frame = result_view(result, Limits(display_limit=10, fetch_limit=None), "result 2 of 3")
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == 120
    assert str(frame["n"].dtype) == "Int64"
    bundle = frame._repr_mimebundle_()
    page = bundle["text/html"]
    assert page.count("<tr") == 11  # header row + 10 rows
    assert "result 2 of 3" in page
    assert "showing 10 of 120 rows fetched" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert bundle["text/plain"].startswith("result 2 of 3\n")
    assert bundle["text/plain"].endswith("(display limit 10); complete")
    assert type(frame.head(3)) is pd.DataFrame


def test_text_html_and_picture_results() -> None:
    limits = Limits(50, None)
    text = ResultSet(0, "p", "1", "text", None, "a < b\nc", 2)
    view = result_view(text, limits, "result 1 of 3")
    assert isinstance(view, TextView)
    assert "<pre>a &lt; b\nc</pre>" in view._repr_mimebundle_()["text/html"]
    html_result = ResultSet(1, "p", "5", "html", None, "<i>hi</i>", 1)
    assert "<i>hi</i>" in result_view(html_result, limits)._repr_mimebundle_()["text/html"]
    png = (
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5E"
        "rkJggg=="
    )
    picture = ResultSet(2, "p", "4", "picture", None, png, 1)
    view = result_view(picture, limits, "result 3 of 3")
    assert isinstance(view, PictureView)
    assert view._repr_mimebundle_()["image/png"] == png


def test_long_text_shows_its_head_and_says_what_was_cut() -> None:
    body = "\n".join(f"line {n}" for n in range(1500))
    result = ResultSet(0, "p", "1", "text", None, body, 1200, True, "the fetch limit")
    view = result_view(result, Limits(50, 1200, "--limit"))
    assert isinstance(view, TextView)
    text = view._repr_mimebundle_()["text/plain"]
    assert "line 999\n" in text and "line 1000" not in text
    assert text.endswith(
        "showing 1,000 of 1,500 lines; fetch limit 1,200 (--limit); more rows exist"
    )
    short = result_view(ResultSet(0, "p", "1", "text", None, "ok", 1), Limits(50, None))
    assert short._repr_mimebundle_()["text/plain"] == "ok"


def test_summaries_list_rows_and_truncation() -> None:
    sets = [ResultSet(0, "p", "1", "text", None, "hi", 1), table(3, truncated=True, truncation="x")]
    fetched = table(100, truncated=True, truncation="the fetch limit")
    assert summarize_results([*sets, fetched], Limits(50, 100, "--limit")) == (
        ResultSummary(0, "text", None, None),
        ResultSummary(1, "table", 3, "truncated by x"),
        ResultSummary(2, "table", 100, "fetch limit 100 (--limit); more rows exist"),
    )


def test_short_error_renders_without_traceback() -> None:
    error = LinkisCellError("LinkisAuthError: login refused.", "Run %linkis connect.")
    assert error._render_traceback_() == [
        "LinkisAuthError: login refused.",
        "Run %linkis connect.",
    ]
