"""Argument parsing for `%%linkis` and the `%linkis` subcommands, and `${var}` filling.

Kept apart from the magic so the wrapper kernel and tests can parse without an IPython shell.
"""

from __future__ import annotations

import argparse
import datetime as dt
import numbers
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic_arguments import (
    MagicArgumentParser,
    argument,
    magic_arguments,
    parse_argstring,
)

from .display import PROGRESS_MODES
from .job import default_run_type
from .wire import (
    BUILTIN_VARIABLES,
    CANCELLED,
    FAILED,
    INITED,
    RUNNING,
    SCHEDULED,
    SHELL_RUN_TYPES,
    SQL_RUN_TYPES,
    SUCCEED,
    TIMEOUT,
)

F = TypeVar("F", bound=Callable[..., Any])

# `%linkis jobs --status` takes the job states in lower case.
JOB_STATUS_CHOICES = tuple(
    state.lower() for state in (RUNNING, FAILED, SUCCEED, CANCELLED, TIMEOUT, SCHEDULED, INITED)
)
# `${name}` and `${name + 1}` reference `name`; `{name}` is never touched.
VARIABLE_REFERENCE = re.compile(r"\$\{\s*([A-Za-z_][A-Za-z0-9_]*)")
# `--@set name=value` (SQL) and `#@set name=value` (Python, shell) lines define a variable.
SET_LINE = re.compile(r"^\s*(?:--|#)\s*@set\s+([A-Za-z_][A-Za-z0-9_]*)\s*=", re.MULTILINE)


@dataclass
class CellOptions:
    """The options of one `%%linkis` cell; None means "use the setting"."""

    engine: str | None = None
    run_type: str | None = None
    creator: str | None = None
    output: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    runtime: dict[str, str] = field(default_factory=dict)
    startup: dict[str, str] = field(default_factory=dict)
    limit: int | None = None
    run_async: bool = False
    quiet: bool = False
    progress: str | None = None


def row_limit(text: str) -> int:
    """`--limit N`: a positive row count, or `all` (0) to fetch every row."""
    if text.lower() == "all":
        return 0
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a row count or 'all', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a row limit cannot be negative, got {value}")
    return value


_CELL_ARGUMENTS = (
    argument("-e", "--engine", help="engine type, e.g. spark, hive, python, shell, spark-2.4.3"),
    argument("-t", "--run-type", help="run type, e.g. sql, py, hql, python, shell"),
    argument("-c", "--creator", help="creator label (default IDE)"),
    argument("-o", "--output", metavar="VAR", help="bind the result (the Job with --async)"),
    argument("--var", action="append", nargs="+", default=[], metavar="K=V",
             help="Linkis variable ${K}; Python variables of that name are used otherwise"),
    argument("--runtime", action="append", nargs="+", default=[], metavar="K=V",
             help="runtime parameter, e.g. wds.linkis.rm.yarnqueue=dev"),
    argument("--startup", action="append", nargs="+", default=[], metavar="K=V",
             help="engine startup parameter, e.g. spark.executor.memory=4g"),
    argument("--limit", type=row_limit, metavar="N",
             help="fetch at most N rows per result ('all' or 0: every row)"),
    argument("--async", dest="run_async", action="store_true",
             help="return the Job at once; the panel keeps updating"),
    argument("--quiet", action="store_true", help="no progress and no job card, only the result"),
    argument("--progress", choices=PROGRESS_MODES, help="progress display (default: setting)"),
)  # fmt: skip


def cell_magic_arguments(func: F) -> F:
    """Attach the `%%linkis` options to a magic so `%%linkis?` shows them."""
    for decorator in reversed(_CELL_ARGUMENTS):
        func = decorator(func)
    return magic_arguments(name="%linkis")(func)  # the usage line then reads %%linkis


def key_values(groups: Iterable[Iterable[str]], option: str) -> dict[str, str]:
    """`[["a=1", "b=2"], ["c=3"]]` -> {"a": "1", ...}; a malformed item names the option."""
    pairs: dict[str, str] = {}
    for item in (item for group in groups for item in group):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} expects KEY=VALUE, got {item!r}")
        pairs[key.strip()] = value
    return pairs


def parse_cell_options(magic: Callable[..., Any], line: str) -> CellOptions:
    """Parse the first line of a `%%linkis` cell; bad options raise UsageError."""
    args = parse_argstring(magic, line)
    return CellOptions(
        engine=args.engine,
        run_type=args.run_type,
        creator=args.creator,
        output=args.output,
        variables=key_values(args.var, "--var"),
        runtime=key_values(args.runtime, "--runtime"),
        startup=key_values(args.startup, "--startup"),
        limit=args.limit,
        run_async=args.run_async,
        quiet=args.quiet,
        progress=args.progress,
    )


def build_line_parser() -> MagicArgumentParser:
    """The `%linkis <subcommand>` parser; errors raise UsageError."""
    # The help formatter puts the "%" in front of the program name.
    parser = MagicArgumentParser(prog="linkis", description="Linkis jobs from IPython.")
    commands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    connect = commands.add_parser(
        "connect", help="connect to a gateway (no URL: LINKIS_URL, else the embedded server)"
    )
    connect.add_argument("url", nargs="?", help="gateway URL, e.g. http://gateway:9001")
    connect.add_argument("--user", help="user name (default LINKIS_USER)")
    connect.add_argument(
        "--token-env", metavar="NAME", help="environment variable holding the token"
    )
    commands.add_parser("status", help="where we are connected, as whom, how")
    jobs = commands.add_parser("jobs", help="job history as a DataFrame")
    jobs.add_argument("-n", type=int, default=20, help="how many (default 20)")
    jobs.add_argument(
        "--status",
        nargs="+",
        choices=JOB_STATUS_CHOICES,
        metavar="STATE",
        help=f"only these states: {', '.join(JOB_STATUS_CHOICES)}",
    )
    attach = commands.add_parser("attach", help="follow a job and return its result")
    attach.add_argument("id", help="task id or exec id")
    kill = commands.add_parser("kill", help="kill a job")
    kill.add_argument("id", help="task id or exec id")
    log = commands.add_parser("log", help="a job's log")
    log.add_argument("id", help="task id or exec id")
    log.add_argument("--level", choices=("error", "warn", "info", "all"), default="all")
    log.add_argument("--tail", type=int, metavar="N", help="only the last N lines")
    result = commands.add_parser("result", help="a finished job's result")
    result.add_argument("id", help="task id or exec id")
    result.add_argument("-o", "--output", metavar="VAR", help="bind the DataFrame to VAR")
    result.add_argument("--limit", type=row_limit, metavar="N", help="fetch at most N rows")
    download = commands.add_parser("download", help="save a result to a file")
    download.add_argument("id", help="task id or exec id")
    download.add_argument("path", help="file to write")
    download.add_argument(
        "--format",
        choices=("csv", "xlsx", "parquet"),
        default=None,
        help="csv or xlsx (the server's export) or parquet (every row, typed); default: the "
        "file name's suffix, else csv",
    )
    variables = commands.add_parser(
        "vars", help="your global variables (Linkis fills them into ${NAME} in every job)"
    )
    variables.add_argument(
        "assignments",
        nargs="*",
        metavar="NAME=VALUE",
        help="set these (NAME= deletes one); none: list them",
    )
    engines = commands.add_parser("engines", help="your engines (Python sessions); free them")
    freeing = engines.add_mutually_exclusive_group()
    freeing.add_argument("--kill", metavar="ID", help="end the engine ID (host:port, or its port)")
    freeing.add_argument("--all", action="store_true", help="end all your engines")
    commands.add_parser("refresh", help="forget cached database, table and column names")
    commands.add_parser("help", help="this help")
    return parser


LINE_PARSER = build_line_parser()


def parse_line(line: str) -> argparse.Namespace:
    """Parse `%linkis <subcommand> ...`; an empty line means `help`."""
    try:
        args = LINE_PARSER.parse_argstring(line)
    except UsageError as error:
        command = line.split()[0] if line.split() else ""
        raise UsageError(f"%linkis {command}: {error} (see `%linkis help`)") from None
    if args.command is None:
        args.command = "help"
    return args


def line_help() -> str:
    """`%linkis help`: the subcommands and each one's usage."""
    commands = next(
        action for action in LINE_PARSER._actions if isinstance(action, argparse._SubParsersAction)
    )
    usages = [
        "  " + parser.format_usage().removeprefix("::").strip()
        for parser in commands.choices.values()
    ]
    # IPython's help formatter starts the usage with "::" (for its docstrings); a user reads
    # the help as plain text.
    overview = LINE_PARSER.format_help().removeprefix("::").lstrip()
    return overview + "\nusage of each:\n" + "\n".join(usages)


def referenced_variables(code: str) -> list[str]:
    """Names used as `${name}` in the code, in order of first use."""
    return list(dict.fromkeys(VARIABLE_REFERENCE.findall(code)))


def is_sql(run_type: str | None, engine: str) -> bool:
    """Whether Linkis treats the code as SQL: by the run type, else the engine's default one
    (an engine without a known default is left for the submit to reject)."""
    return _run_type_of(run_type, engine) in SQL_RUN_TYPES


def is_shell(run_type: str | None, engine: str) -> bool:
    """Whether the code is a shell script, where `${NAME}` is also the shell's own syntax."""
    return _run_type_of(run_type, engine) in SHELL_RUN_TYPES


def _run_type_of(run_type: str | None, engine: str) -> str:
    try:
        return (run_type or default_run_type(engine)).lower()
    except ValueError:
        return ""


def undefined_variables(code: str, variables: Mapping[str, str]) -> list[str]:
    """The `${name}`s that neither `variables` (from --var and Python), an `@set` line of the
    code, nor a Linkis built-in such as `run_date` define. Linkis may still know them (a user's
    global variables live on the server), so they call for a warning, not an error."""
    set_here = set(SET_LINE.findall(code))
    return [
        name
        for name in referenced_variables(code)
        if name not in variables and name not in set_here and name not in BUILTIN_VARIABLES
    ]


def undefined_warning(names: Sequence[str]) -> str:
    """The warning for `undefined_variables`, pointing at `--var`."""
    refs = ", ".join(f"${{{name}}}" for name in names)
    fix = " ".join(f"{name}=..." for name in names)
    verb = "is" if len(names) == 1 else "are"
    return (
        f"Warning: {refs} {verb} not defined here (no --var, no Python variable, not a Linkis "
        f"built-in such as ${{run_date}}); unless Linkis defines it (e.g. as a global "
        f"variable), the engine gets it as written. Define it with `--var {fix}`."
    )


def sql_literal(name: str, value: Any) -> str:
    """A Python value as a SQL literal; unsupported types name the variable."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (numbers.Real, Decimal)):
        return str(value)
    if isinstance(value, dt.datetime):
        return "'" + value.isoformat(sep=" ") + "'"
    if isinstance(value, dt.date | dt.time):
        return "'" + value.isoformat() + "'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise UsageError(
        f"${{{name}}}: the Python variable {name!r} is a {type(value).__name__}, which has no "
        f"SQL literal; pass the text to use with --var {name}=..."
    )


def fill_variables(
    code: str,
    explicit: Mapping[str, str],
    namespace: Mapping[str, Any],
    *,
    sql: bool,
) -> dict[str, str]:
    """The `variables` to send: `--var` values as given, else Python variables of that name
    (SQL literals by type for SQL code, escaped without the outer quotes where the code quotes
    them already; plain `str()` otherwise); other `${...}` stay for Linkis."""
    variables = dict(explicit)
    for name in referenced_variables(code):
        if name in variables or name not in namespace:
            continue
        value = namespace[name]
        if not sql:
            variables[name] = str(value)
        elif in_quotes(code, name):
            variables[name] = sql_literal(name, value).removeprefix("'").removesuffix("'")
        else:
            variables[name] = sql_literal(name, value)
    return variables


def in_quotes(code: str, name: str) -> bool:
    """Whether the code already quotes `${name}` (`'${name}'`), so only its inside is sent.

    A name used both inside and outside quotes cannot get one value that fits both.
    """
    uses = re.finditer(r"(.?)\$\{\s*" + re.escape(name) + r"\b[^}]*\}(.?)", code)
    quoted = {before == after == "'" for before, after in (use.groups() for use in uses)}
    if len(quoted) > 1:
        raise UsageError(
            f"${{{name}}} is used both inside and outside quotes; write it one way (the Python "
            f"value is quoted for you), or pass the text with --var {name}=..."
        )
    return quoted == {True}
