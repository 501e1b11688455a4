"""The job layer's pure parts: engine expansion, the submit body, progress and dtype rules."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from linkis_kernel.client import Column
from linkis_kernel.job import (
    UnknownEngineError,
    build_submit_body,
    clamp_progress,
    default_run_type,
    expand_engine,
    queue_position,
)
from linkis_kernel.results import (
    ResultSet,
    convert_column,
    engine_cap_reason,
    table_frame,
)
from linkis_kernel.wire import DEFAULT_ENGINE_VERSIONS, QUEUE_POSITION_LOG


def test_bare_engine_takes_the_default_version_and_a_versioned_one_is_kept() -> None:
    assert expand_engine("spark", DEFAULT_ENGINE_VERSIONS) == "spark-3.2.1"
    assert expand_engine("hive", DEFAULT_ENGINE_VERSIONS) == "hive-3.1.3"
    assert expand_engine("spark-2.4.3", DEFAULT_ENGINE_VERSIONS) == "spark-2.4.3"
    assert expand_engine("spark", {"spark": "2.4.3"}) == "spark-2.4.3"
    with pytest.raises(UnknownEngineError, match=r"engine='doris-VERSION'") as unknown:
        expand_engine("doris", DEFAULT_ENGINE_VERSIONS)
    assert unknown.value.closest is None and "spark" in unknown.value.known
    with pytest.raises(ValueError, match=r"did you mean engine='spark'\?") as typo:
        expand_engine("sparkk", DEFAULT_ENGINE_VERSIONS)
    assert typo.value.closest == "spark"
    assert typo.value.describe("-e {}").startswith(
        "Unknown engine 'sparkk': did you mean -e spark?"
    )


def test_default_run_types_follow_the_engine() -> None:
    expected = {"spark-3.2.1": "sql", "hive-3.1.3": "hql", "jdbc-4": "sql", "trino-371": "sql"}
    expected |= {"duckdb-1": "sql", "python-python2": "python", "shell-1": "shell"}
    assert {label: default_run_type(label) for label in expected} == expected
    with pytest.raises(ValueError, match="run_type="):
        default_run_type("flink-1.16.2")


def test_submit_body_has_the_contract_shape() -> None:
    body = build_submit_body(
        "select ${d}",
        engine_label="spark-3.2.1",
        run_type="sql",
        user_creator="alice-IDE",
        variables={"d": "2024"},
        runtime={"wds.linkis.rm.yarnqueue": "dev"},
        startup={"spark.executor.memory": "4g"},
        labels={"executeOnce": "true"},
    )
    assert body == {
        "executionContent": {"code": "select ${d}", "runType": "sql"},
        "params": {
            "variable": {"d": "2024"},
            "configuration": {
                "startup": {"spark.executor.memory": "4g"},
                "runtime": {"wds.linkis.rm.yarnqueue": "dev"},
            },
        },
        "labels": {
            "engineType": "spark-3.2.1",
            "userCreator": "alice-IDE",
            "codeType": "sql",
            "executeOnce": "true",
        },
        "source": {"scriptPath": "linkis-kernel"},
    }


def test_progress_is_monotonic_below_one_until_final() -> None:
    shown = 0.0
    seen = []
    for reported in (0.2, 0.5, 0.3, 1.0, 0.99, -0.5):
        shown = clamp_progress(shown, reported, final=False)
        seen.append(shown)
    assert seen == [0.2, 0.5, 0.5, 0.99, 0.99, 0.99]
    assert clamp_progress(0.4, 0.0, final=True) == 1.0


def test_queue_position_comes_from_the_last_matching_line() -> None:
    lines = [QUEUE_POSITION_LOG.format(ahead=3), "other", QUEUE_POSITION_LOG.format(ahead=1)]
    assert queue_position(lines) == 1
    assert queue_position(["2024-01-01 00:00:00.000 INFO running"]) is None


def test_every_type_converts_to_its_dtype_with_nulls() -> None:
    columns = [
        Column("i", "int", None),
        Column("b", "bigint", None),
        Column("s", "short", None),
        Column("t", "tinyint", None),
        Column("f", "double", None),
        Column("d", "decimal", "decimal(10,2)"),
        Column("ok", "boolean", None),
        Column("day", "date", None),
        Column("ts", "timestamp", None),
        Column("v", "string", None),
        Column("l", "array", None),
    ]
    rows = [
        ["1", "9007199254740993", "-2", "7", "1.5", "12.50", "true", "2024-02-29",
         "2024-02-29 13:14:15.123456", "NULL", "[1, 2]"],
        [None, None, None, None, None, None, None, None, None, None, None],
        ["-3", "5", "300", "-128", "inf", "0.01", "false", "1999-12-31",
         "1999-12-31 23:59:59", "x", "[]"],
    ]  # fmt: skip
    frame = table_frame(columns, rows)
    dtypes = {name: str(dtype) for name, dtype in frame.dtypes.items()}
    assert dtypes == {
        "i": "Int32",
        "b": "Int64",
        "s": "Int16",
        "t": "Int8",
        "f": "float64",
        "d": "object",
        "ok": "boolean",
        "day": "datetime64[us]",
        "ts": "datetime64[us]",
        "v": "string",
        "l": "object",
    }
    assert frame["b"][0] == 9007199254740993  # beyond float precision: parsed as an integer
    assert frame["d"].tolist() == [Decimal("12.50"), None, Decimal("0.01")]
    assert frame["f"][2] == np.inf
    assert frame["ok"].tolist() == [True, pd.NA, False]
    assert frame["ts"][0] == pd.Timestamp("2024-02-29 13:14:15.123456")
    assert frame["v"][0] == "NULL" and frame["v"][1] is pd.NA
    assert frame["l"].tolist() == ["[1, 2]", None, "[]"]
    assert frame.iloc[1][["i", "b", "s", "t"]].isna().all()
    assert pd.isna(frame["f"][1]) and pd.isna(frame["day"][1]) and pd.isna(frame["ts"][1])


def test_decimal_float_option_and_unparseable_values_stay_strings() -> None:
    values = np.array(["1.25", None], dtype=object)
    floats = convert_column(values, "decimal(10,2)", decimal="float")
    assert str(floats.dtype) == "float64" and floats[0] == 1.25
    odd = convert_column(np.array(["1.5", "x"], dtype=object), "int")
    assert odd.dtype == object and odd.tolist() == ["1.5", "x"]
    assert convert_column(np.array(["maybe"], dtype=object), "boolean").tolist() == ["maybe"]
    zoned = convert_column(np.array(["2024-01-01 10:00:00+08", None], dtype=object), "timestamp")
    assert zoned[0] == pd.Timestamp("2024-01-01 02:00:00", tz="UTC") and pd.isna(zoned[1])


def test_an_empty_table_keeps_its_columns_and_dtypes() -> None:
    frame = table_frame([Column("n", "bigint", None), Column("s", "string", None)], [])
    assert list(frame.columns) == ["n", "s"] and len(frame) == 0
    assert str(frame["n"].dtype) == "Int64" and str(frame["s"].dtype) == "string"


def test_duplicate_column_names_survive() -> None:
    frame = table_frame([Column("a", "int", None), Column("a", "string", None)], [["1", "x"]])
    assert list(frame.columns) == ["a", "a"]
    assert frame.iloc[0].tolist() == [1, "x"]


def test_engine_cap_applies_to_ide_sql_or_when_the_log_says_so() -> None:
    assert "5000-row cap for creator IDE" in engine_cap_reason("IDE", "sql", [])
    assert engine_cap_reason("nb", "sql", []) is None
    assert engine_cap_reason("IDE", "python", []) is None
    warned = ["2024-01-01 00:00:00.000 WARN The result of statement 1 was limited to 5000 rows"]
    assert engine_cap_reason("nb", "sql", warned) is not None
    own_limit = [
        "2024-01-01 00:00:00.000 WARN The code you submit will not be limited by the limit"
    ]
    assert engine_cap_reason("IDE", "sql", own_limit) is None


def test_result_set_reprs_show_the_footer() -> None:
    frame = table_frame([Column("a", "int", None)], [["1"], ["2"]])
    table = ResultSet(
        0, "/r/_0.dolphin", "2", "table", None, frame, 2, True, "fetch limit of 2 rows"
    )
    footer = "Result 1 (table): 2 rows fetched; truncated by fetch limit of 2 rows"
    assert table.footer() == footer and repr(table).endswith("\n" + footer)
    assert "truncated by fetch limit of 2 rows" in table._repr_html_()
    text = ResultSet(1, "/r/_1.dolphin", "1", "text", None, "a <b>", 1)
    assert repr(text).startswith("a <b>\n") and "&lt;b&gt;" in text._repr_html_()


def test_importing_the_job_module_loads_no_pandas_ipython_widgets_nor_upper_layers() -> None:
    code = (
        "import sys, linkis_kernel.job, linkis_kernel.results; "
        "upper = ('display', 'magics', 'kernel', 'runner', 'local'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'IPython', "
        "'ipywidgets') or m.split('.')[:2] in [['linkis_kernel', u] for u in upper]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_run_command_loads_no_ipython_or_widgets() -> None:
    code = (
        "import sys, linkis_kernel.runner; "
        "print(sorted(m for m in ('IPython', 'ipywidgets') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_without_a_user_the_user_creator_label_is_left_to_linkis() -> None:
    body = build_submit_body(
        "select 1", engine_label="spark-3.2.1", run_type="sql", user_creator=None
    )
    assert body["labels"] == {"engineType": "spark-3.2.1", "codeType": "sql"}
    assert body["params"] == {"variable": {}, "configuration": {"startup": {}, "runtime": {}}}


def test_the_run_command_renders_tables_with_their_limits() -> None:
    from linkis_kernel.runner import render_result

    frame = table_frame([Column("n", "int", None)], [[str(i)] for i in range(3)])
    whole = ResultSet(0, "/r/_0.dolphin", "2", "table", None, frame, 3)
    assert render_result(whole).splitlines() == [" n", " 0", " 1", " 2", "3 rows; complete"]
    assert render_result(whole, display_rows=2).splitlines()[-1] == (
        "showing 2 of 3 rows fetched; complete; display limit 2"
    )
    text = ResultSet(1, "/r/_1.dolphin", "1", "text", None, "line one\nline two", 2)
    assert render_result(text) == "line one\nline two"


def test_polling_backs_off_unless_the_job_moves_and_resets_on_a_state_change() -> None:
    from dataclasses import replace

    from linkis_kernel.job import Job, Snapshot

    job = Job(None, "exec_id-x", 1)  # type: ignore[arg-type]  (pacing needs no client)
    running = Snapshot("exec_id-x", 1, "Running", 0.5)
    assert (
        job._next_interval(1.0, running, replace(running, warning="still Running"), job.poll_min)
        == 1.5
    )
    assert job._next_interval(1.9, running, running, job.poll_min) == job.poll_max
    assert (
        job._next_interval(1.9, running, None, job.poll_min) == job.poll_max
    )  # the server did not answer
    assert job._next_interval(1.9, running, replace(running, progress=0.6), job.poll_min) == 0.5
    assert job._next_interval(
        0.1, running, replace(running, progress=0.6), job.poll_min
    ) == pytest.approx(0.15)
    logged = replace(running, new_log={"error": [], "warn": [], "info": ["x"], "all": ["x"]})
    assert job._next_interval(1.9, running, logged, job.poll_min) == job.poll_active_max
    assert (
        job._next_interval(1.9, running, replace(running, state="Succeed"), job.poll_min)
        == job.poll_min
    )
