"""Variable substitution as the Linkis entrance does it (docs/linkis-rest.md, "Variables")."""

from __future__ import annotations

from datetime import datetime

import pytest

from linkis_kernel.local.variables import VariableError, language, substitute

NOW = datetime(2024, 3, 1, 9, 30)  # run_date defaults to yesterday: 2024-02-29 (leap day)


def sub(code: str, lang: str = "sql", variables: dict | None = None) -> str:
    return substitute(code, lang, variables or {}, user="alice", submit_user="alice", now=NOW).code


@pytest.mark.parametrize(
    ("ref", "value"),
    [
        ("run_date", "20240229"),
        ("run_date_std", "2024-02-29"),
        ("run_today", "20240301"),
        ("run_today_std", "2024-03-01"),
        ("run_month_begin", "20240201"),
        ("run_month_end_std", "2024-02-29"),
        ("run_mon", "202402"),
        ("run_mon_std", "2024-02"),
        ("run_quarter_begin", "20240101"),
        ("run_year_end", "20241231"),
        ("run_today_h", "2024030109"),
        ("user", "alice"),
        ("execute_user", "alice"),
        ("submit_user", "alice"),
    ],
)
def test_builtins(ref: str, value: str) -> None:
    assert sub(f"select '${{{ref}}}'") == f"select '{value}'"


@pytest.mark.parametrize(
    ("ref", "value"),
    [
        ("run_date-7", "20240222"),
        ("run_date + 1", "20240301"),
        ("run_date_std-29", "2024-01-31"),
        ("run_mon-2", "202312"),
        ("run_month_begin-1", "20240101"),
        ("run_month_end+1", "20240331"),
        ("n + 1", "42"),
        ("n*2", "82"),
        ("n / 2", "20.5"),
        ("s + x", "abcx"),
    ],
)
def test_arithmetic(ref: str, value: str) -> None:
    assert sub(f"${{{ref}}}", variables={"n": "41", "s": "abc"}) == value


def test_given_run_date_drives_the_derived_dates() -> None:
    assert sub("${run_date} ${run_today_std}", variables={"run_date": "20241231"}) == (
        "20241231 2025-01-01"
    )


def test_at_set_lines_win_over_request_variables() -> None:
    code = "--@set city=Paris\nselect '${city}'"
    assert sub(code, variables={"city": "Rome"}).endswith("select 'Paris'")
    py = "#@set n=3\nprint(${n} + 1)"
    assert sub(py, "python", {"n": "9"}).endswith("print(3 + 1)")


def test_numbers_are_rerendered() -> None:
    assert sub(
        "${a} ${b} ${c} ${d}", variables={"a": "001", "b": "1.50", "c": "2.0", "d": "x1"}
    ) == ("1 1.5 2 x1")


def test_unknown_names_stay_and_warn() -> None:
    result = substitute("select ${nope}", "sql", {}, user="alice", submit_user="alice", now=NOW)
    assert result.code == "select ${nope}"
    assert any("nope" in w for w in result.warnings)


def test_protected_names_cannot_be_overridden() -> None:
    result = substitute(
        "${execute_user}", "sql", {"execute_user": "eve"}, user="alice", submit_user="alice"
    )
    assert result.code == "alice"
    assert result.warnings


@pytest.mark.parametrize(
    ("code", "variables"),
    [
        ("${run_date * 2}", {}),
        ("${s - 1}", {"s": "abc"}),
        ("${run_date}", {"run_date": "2024-1"}),
        ("${run_date + 99999999999}", {}),
        ("${run_mon - 999999}", {}),
        ("&{yyyy%+99999y}", {}),
    ],
)
def test_failures(code: str, variables: dict) -> None:
    with pytest.raises(VariableError):
        sub(code, variables=variables)


def test_languages() -> None:
    assert language("hql") == "sql"
    assert language("duckdb", frozenset({"duckdb"})) == "sql"
    assert language("py") == "python"
    assert language("sh") == "shell"
    assert language("scala") is None


@pytest.mark.parametrize(
    ("placeholder", "value"),
    [
        ("&{yyyy-MM-dd}", "2024-02-29"),
        ("&{yyyyMMdd%-1d}", "20240228"),
        ("&{yyyy-MM%+1M}", "2024-03"),
        ("&{yyyy%-1y}", "2023"),
        ("&{yyyy-MM-dd HH%+15H}", "2024-03-01 00"),
    ],
)
def test_date_patterns(placeholder: str, value: str) -> None:
    assert sub(f"select '{placeholder}'") == f"select '{value}'"


def test_bad_date_offset() -> None:
    with pytest.raises(VariableError, match="bad date offset"):
        sub("&{yyyy%-1w}")


def test_the_client_knows_every_built_in_the_server_fills() -> None:
    from datetime import date, datetime

    from linkis_kernel.local.variables import _PROTECTED, _date_variables
    from linkis_kernel.wire import BUILTIN_VARIABLES

    served = set(_date_variables(date(2024, 1, 31), datetime(2024, 2, 1, 9))) | set(_PROTECTED)
    assert served == BUILTIN_VARIABLES
