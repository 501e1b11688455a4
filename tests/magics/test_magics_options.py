"""Parsing `%%linkis` options and `%linkis` subcommands, and filling `${var}`."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from IPython.core.error import UsageError

from linkis_kernel.magics import LinkisMagics
from linkis_kernel.options import (
    fill_variables,
    is_sql,
    parse_cell_options,
    parse_line,
    referenced_variables,
    sql_literal,
)

MAGIC = LinkisMagics.linkis


def test_every_cell_option_parses() -> None:
    options = parse_cell_options(
        MAGIC,
        "-e hive-2.3.3 -t hql -c nightly -o df --var a=1 b=x=y --var c= "
        "--runtime wds.linkis.rm.yarnqueue=dev --startup spark.executor.memory=4g "
        "--limit 1000 --async --quiet --progress text",
    )
    assert options.engine == "hive-2.3.3" and options.run_type == "hql"
    assert options.creator == "nightly" and options.output == "df"
    assert options.variables == {"a": "1", "b": "x=y", "c": ""}
    assert options.runtime == {"wds.linkis.rm.yarnqueue": "dev"}
    assert options.startup == {"spark.executor.memory": "4g"}
    assert options.limit == 1000
    assert options.run_async and options.quiet and options.progress == "text"


def test_defaults_leave_everything_to_the_settings() -> None:
    options = parse_cell_options(MAGIC, "")
    assert options.engine is None and options.creator is None and options.limit is None
    assert options.progress is None and not options.run_async and not options.quiet
    assert parse_cell_options(MAGIC, "--limit all").limit == 0


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("--engien spark", "--engien"),
        ("--progress bars", "bars"),
        ("--limit many", "many"),
        ("--var novalue", "--var"),
        ("--runtime =x", "--runtime"),
    ],
)
def test_a_bad_option_is_a_usage_error_naming_it(line: str, named: str) -> None:
    with pytest.raises(UsageError, match=named):
        parse_cell_options(MAGIC, line)


def test_help_text_lists_the_options() -> None:
    assert "%%linkis [-e ENGINE]" in MAGIC.__doc__
    assert "--progress {auto,widget,text,none}" in MAGIC.__doc__
    assert "${name}" in MAGIC.__doc__


def test_subcommands_parse() -> None:
    assert parse_line("").command == "help"
    jobs = parse_line("jobs -n 5 --status running failed")
    assert (jobs.n, jobs.status) == (5, ["running", "failed"])
    log = parse_line("log 42 --level error --tail 20")
    assert (log.id, log.level, log.tail) == ("42", "error", 20)
    download = parse_line("download 42 /tmp/out.xlsx --format xlsx")
    assert (download.path, download.format) == ("/tmp/out.xlsx", "xlsx")
    connect = parse_line("connect http://gw:9001 --user alice --token-env MY_TOKEN")
    assert (connect.url, connect.user, connect.token_env) == ("http://gw:9001", "alice", "MY_TOKEN")
    assert parse_line("result 7 -o frame").output == "frame"
    with pytest.raises(UsageError, match="--password"):
        parse_line("connect http://gw:9001 --password secret")
    with pytest.raises(UsageError, match="frobnicate"):
        parse_line("frobnicate")
    with pytest.raises(UsageError, match=r"^%linkis log: .*required: id"):
        parse_line("log")
    with pytest.raises(UsageError, match="invalid choice: 'done'"):
        parse_line("jobs --status done")


def test_referenced_variables_ignore_plain_braces() -> None:
    code = "select '{name}', ${a}, ${ b }, ${run_date - 1}, ${a} from t -- {x}"
    assert referenced_variables(code) == ["a", "b", "run_date"]


def test_sql_literals_by_type() -> None:
    assert sql_literal("s", "O'Brien") == "'O''Brien'"
    assert sql_literal("n", 42) == "42"
    assert sql_literal("f", 1.5) == "1.5"
    assert sql_literal("d", Decimal("3.10")) == "3.10"
    assert sql_literal("b", True) == "true"
    assert sql_literal("d", dt.date(2024, 1, 2)) == "'2024-01-02'"
    assert sql_literal("t", dt.datetime(2024, 1, 2, 3, 4, 5)) == "'2024-01-02 03:04:05'"
    with pytest.raises(UsageError, match=r"\$\{rows\}.*list.*--var rows="):
        sql_literal("rows", [1, 2])


def test_fill_variables_prefers_var_then_python_then_linkis() -> None:
    namespace = {"city": "O'Hare", "n": 3, "run_date": None, "unused": 1}
    code = "select * from t where city = ${city} and n > ${n} and d = ${run_date} and ${today}"
    filled = fill_variables(code, {"run_date": "20240101"}, namespace, sql=True)
    assert filled == {"run_date": "20240101", "city": "'O''Hare'", "n": "3"}
    quoted = fill_variables(
        "select '${city}', '${n}' where '${city}' <> ''", {}, namespace, sql=True
    )
    assert quoted == {"city": "O''Hare", "n": "3"}
    with pytest.raises(UsageError, match=r"\$\{city\} is used both inside and outside quotes"):
        fill_variables("select '${city}', ${city}", {}, namespace, sql=True)
    plain = fill_variables("print('${city}', ${n})", {}, namespace, sql=False)
    assert plain == {"city": "O'Hare", "n": "3"}


def test_sql_or_not_follows_run_type_then_engine() -> None:
    assert is_sql(None, "spark") and is_sql(None, "hive-3.1.3") and is_sql("hql", "hive")
    assert not is_sql("py", "spark") and not is_sql(None, "python") and not is_sql(None, "shell-1")
