"""Linkis variable substitution: `${name}`, `@set` lines, built-in dates
(docs/linkis-rest.md, "Variables").
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ..wire import SHELL_RUN_TYPES, SQL_RUN_TYPES

PYTHON_LANGUAGE = frozenset({"python", "py", "pyspark"})
_SET_PREFIX = {"sql": "--", "python": "#", "shell": "#"}
_PROTECTED = ("user", "execute_user", "submit_user")
_REF = re.compile(r"\$\{\s*([A-Za-z][A-Za-z0-9_.]*)\s*(?:([-+*/])\s*([A-Za-z0-9_.]+)\s*)?\}")
_DATE_PATTERN = re.compile(r"&\{([^}%]+)(?:%([^}]*))?\}")
_DATE_OFFSET = re.compile(r"([+-]\d+)([yMdHms])")
# Java DateTimeFormatter letters -> strftime, longest first.
_JAVA_FORMAT = (
    ("yyyy", "%Y"), ("yy", "%y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"),
    ("ss", "%S"),
)  # fmt: skip


class VariableError(ValueError):
    """Substitution failed (Linkis error 20050)."""


def language(run_type: str, sql_like: frozenset[str] = frozenset()) -> str | None:
    """The substitution language of a run type: sql, python, shell, or None (left untouched)."""
    run_type = run_type.lower()
    if run_type in SQL_RUN_TYPES or run_type in sql_like:
        return "sql"
    if run_type in PYTHON_LANGUAGE:
        return "python"
    if run_type in SHELL_RUN_TYPES:
        return "shell"
    return None


def render_number(value: float | int) -> str:
    """Numbers as Linkis re-renders them: whole values without a fraction."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _parse_number(text: str) -> float | int | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _add_months(day: date, months: int) -> date:
    month_index = day.year * 12 + day.month - 1 + months
    year, month = divmod(month_index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


class _Value:
    def render(self) -> str:
        raise NotImplementedError

    def apply(self, op: str, operand: str) -> str:
        raise VariableError(f"operator {op} is not supported for this variable")


@dataclass
class _Text(_Value):
    text: str

    def render(self) -> str:
        return self.text

    def apply(self, op: str, operand: str) -> str:
        if op != "+":
            raise VariableError(f"strings only support '+', not '{op}'")
        return self.text + operand


@dataclass
class _Number(_Value):
    value: float | int

    def render(self) -> str:
        return render_number(self.value)

    def apply(self, op: str, operand: str) -> str:
        other = _parse_number(operand)
        if other is None:
            raise VariableError(f"'{operand}' is not a number")
        if op == "+":
            return render_number(self.value + other)
        if op == "-":
            return render_number(self.value - other)
        if op == "*":
            return render_number(self.value * other)
        if other == 0:
            raise VariableError("division by zero")
        return render_number(self.value / other)


def _int_operand(op: str, operand: str) -> int:
    if op not in "+-":
        raise VariableError(f"dates only support '+' and '-', not '{op}'")
    if not operand.isdecimal():
        raise VariableError(f"'{operand}' is not a whole number of days/months/hours")
    return int(operand) if op == "+" else -int(operand)


@dataclass
class _Day(_Value):
    day: date
    std: bool

    def render(self) -> str:
        return self.day.strftime("%Y-%m-%d" if self.std else "%Y%m%d")

    def apply(self, op: str, operand: str) -> str:
        return _Day(self.day + timedelta(days=_int_operand(op, operand)), self.std).render()


@dataclass
class _Month(_Value):
    """A month (`yyyyMM`), arithmetic in months."""

    day: date
    std: bool

    def render(self) -> str:
        return self.day.strftime("%Y-%m" if self.std else "%Y%m")

    def apply(self, op: str, operand: str) -> str:
        return _Month(_add_months(self.day, _int_operand(op, operand)), self.std).render()


@dataclass
class _PeriodEdge(_Value):
    """First or last day of the month/quarter/half-year/year holding `day`; +/- whole periods."""

    day: date
    months: int
    end: bool
    std: bool

    def render(self) -> str:
        first_month = (self.day.month - 1) // self.months * self.months + 1
        begin = date(self.day.year, first_month, 1)
        edge = _add_months(begin, self.months) - timedelta(days=1) if self.end else begin
        return _Day(edge, self.std).render()

    def apply(self, op: str, operand: str) -> str:
        shifted = _add_months(self.day, _int_operand(op, operand) * self.months)
        return _PeriodEdge(shifted, self.months, self.end, self.std).render()


@dataclass
class _Hour(_Value):
    moment: datetime
    std: bool

    def render(self) -> str:
        return self.moment.strftime("%Y-%m-%d %H" if self.std else "%Y%m%d%H")

    def apply(self, op: str, operand: str) -> str:
        return _Hour(self.moment + timedelta(hours=_int_operand(op, operand)), self.std).render()


def _date_variables(run_date: date, now: datetime) -> dict[str, _Value]:
    today = run_date + timedelta(days=1)
    found: dict[str, _Value] = {}
    for std, suffix in ((False, ""), (True, "_std")):
        found[f"run_date{suffix}"] = _Day(run_date, std)
        found[f"run_today{suffix}"] = _Day(today, std)
        found[f"run_mon{suffix}"] = _Month(run_date, std)
        for name, months in (("month", 1), ("quarter", 3), ("half_year", 6), ("year", 12)):
            found[f"run_{name}_begin{suffix}"] = _PeriodEdge(run_date, months, False, std)
            found[f"run_{name}_end{suffix}"] = _PeriodEdge(run_date, months, True, std)
        found[f"run_month_now_begin{suffix}"] = _PeriodEdge(today, 1, False, std)
        found[f"run_month_now_end{suffix}"] = _PeriodEdge(today, 1, True, std)
        hour = datetime(today.year, today.month, today.day, now.hour)
        found[f"run_today_h{suffix}"] = _Hour(hour, std)
        found[f"run_today_hour{suffix}"] = _Hour(hour, std)
    return found


def set_lines(code: str, lang: str) -> dict[str, str]:
    """`--@set k=v` (SQL) / `#@set k=v` (python, shell) lines of a script."""
    prefix = re.escape(_SET_PREFIX[lang])
    pattern = re.compile(rf"^\s*{prefix}\s*@set\s+([^=]+?)\s*=\s*(.*?)\s*$", re.MULTILINE)
    return {m.group(1): m.group(2) for m in pattern.finditer(code)}


def _user_value(text: str) -> _Value:
    number = _parse_number(text)
    return _Text(text) if number is None else _Number(number)


def _parse_run_date(text: str) -> date:
    try:
        return datetime.strptime(text.strip(), "%Y%m%d").date()
    except ValueError:
        raise VariableError(f"run_date must be yyyyMMdd, got '{text}'") from None


def _shift(moment: datetime, amount: int, unit: str) -> datetime:
    if unit == "y":
        return datetime.combine(_add_months(moment.date(), 12 * amount), moment.time())
    if unit == "M":
        return datetime.combine(_add_months(moment.date(), amount), moment.time())
    seconds = {"d": 86400, "H": 3600, "m": 60, "s": 1}[unit]
    return moment + timedelta(seconds=amount * seconds)


def _date_pattern(pattern: str, offsets: str, base: datetime) -> str:
    """`&{yyyy-MM-dd%-1d}`: run_date (with the current time of day) shifted, then formatted."""
    rest = offsets.replace(" ", "")
    for amount, unit in _DATE_OFFSET.findall(rest):
        base = _shift(base, int(amount), unit)
    if _DATE_OFFSET.sub("", rest):
        raise VariableError(f"bad date offset '{offsets}' (use e.g. -1d, +2M, -1y, +3H)")
    text = pattern.replace("%", "%%")
    for java, strf in _JAVA_FORMAT:
        text = text.replace(java, strf)
    return base.strftime(text)


@dataclass
class Substitution:
    code: str
    warnings: list[str]


def substitute(
    code: str,
    lang: str,
    variables: dict[str, object],
    *,
    user: str,
    submit_user: str,
    now: datetime | None = None,
) -> Substitution:
    """Fill `${...}` references. Priority: @set lines, then `variables`, then built-ins."""
    now = now or datetime.now()
    warnings: list[str] = []
    given = {str(k): "" if v is None else str(v) for k, v in variables.items()}
    given.update(set_lines(code, lang))
    for name in _PROTECTED:
        if name in given and name != "user":
            warnings.append(f"The variable {name} cannot be overridden; it stays {user}")
        given.pop(name, None)
    run_date = (
        _parse_run_date(given["run_date"]) if "run_date" in given else now.date() - timedelta(1)
    )
    table: dict[str, _Value] = _date_variables(run_date, now)
    table.update({k: _user_value(v) for k, v in given.items() if k != "run_date"})
    table.update(
        {"user": _Text(user), "execute_user": _Text(user), "submit_user": _Text(submit_user)}
    )

    def replace(match: re.Match[str]) -> str:
        name, op, operand = match.groups()
        value = table.get(name)
        if value is None:
            warnings.append(f"Variable {name} is not defined; ${{{name}}} is left as it is")
            return match.group(0)
        if op is None:
            return value.render()
        if operand in table:
            operand = table[operand].render()
        return value.apply(op, operand)

    base = datetime.combine(run_date, now.time())
    try:
        code = _DATE_PATTERN.sub(lambda m: _date_pattern(m.group(1), m.group(2) or "", base), code)
        code = _REF.sub(replace, code)
    except VariableError:
        raise
    except (OverflowError, ValueError):  # date arithmetic left the years 1..9999
        raise VariableError("a date moved outside the years 1 to 9999") from None
    return Substitution(code.strip(), warnings)
