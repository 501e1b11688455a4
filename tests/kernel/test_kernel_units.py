"""SQL completeness, papermill's parameters cell, metadata completion and inspection against the
session's embedded server, and `linkis-kernel install`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jupyter_client.kernelspec import KernelSpecManager
from papermill.translators import PythonTranslator
from support.serverproc import REPO_ROOT, ServerProcess

from linkis_kernel.client import LinkisError
from linkis_kernel.completion import MetadataCache, SqlCompleter, scan_sql, sql_is_complete
from linkis_kernel.job import LinkisClient
from linkis_kernel.kernel import is_magic_cell, is_parameters_cell

KERNEL_NAMES = ("linkis_sql", "linkis_pyspark", "linkis_shell")


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("select 1", "complete"),
        ("select 1;", "complete"),
        ("select 'it''s'", "complete"),
        ("select 'a\\'b'", "complete"),
        ('select "a(" from t', "complete"),
        ("select 1 -- it's (", "complete"),
        ("select /* ( */ 1", "complete"),
        ("select `weird(name` from t", "complete"),
        ("select 'open", "incomplete"),
        ("select 'it''s", "incomplete"),
        ("select count(*", "incomplete"),
        ("select (1 +\n  (2", "incomplete"),
        ("select 1 /* note", "incomplete"),
        ("select 1)", "invalid"),
    ],
)
def test_sql_is_complete_unless_something_is_open(code: str, status: str) -> None:
    assert sql_is_complete(code)["status"] == status


@given(st.text(alphabet="abc ();'\"-*/\n", max_size=40))
def test_closing_an_open_quote_or_parenthesis_completes_the_cell(code: str) -> None:
    scan = scan_sql(code)
    if scan.quote or scan.block_comment or scan.line_comment:
        return
    closed = code + ")" * max(scan.depth, 0)
    expected = "invalid" if scan.depth < 0 else "complete"
    assert sql_is_complete(closed)["status"] == expected


def test_papermill_parameters_are_recognised() -> None:
    values = {"max_id": 7, "name": "x'y", "ratio": float("nan"), "ids": [1, 2], "on": True}
    injected = PythonTranslator.codify(values, "Parameters")
    assert is_parameters_cell(injected.splitlines(keepends=True))
    for code in (
        "# Parameters\nselect 1",
        "# Parameters\nimport os",
        "# Parameters\nx.y = 1",
        "x = 1",
        "-- Parameters\nx = 1",
    ):
        assert not is_parameters_cell(code.splitlines(keepends=True)), code


def test_magic_cells_are_recognised_after_blank_lines() -> None:
    assert is_magic_cell("\n  \n%%local\nx = 1")
    assert is_magic_cell("%linkis jobs")
    assert not is_magic_cell("select '%'")
    assert not is_magic_cell("")


@pytest.fixture(scope="module")
def completer(linkis_server: ServerProcess) -> SqlCompleter:
    client = linkis_server.linkis_client()
    return SqlCompleter(MetadataCache(lambda: client))


def matches(completer: SqlCompleter, code: str, cursor: int | None = None) -> set[str]:
    return set(completer.complete(code, len(code) if cursor is None else cursor).matches)


def test_completion_of_qualified_names(completer: SqlCompleter) -> None:
    assert matches(completer, "select * from DEMO.CUST") == {"customers"}
    assert matches(completer, "select * from demo.") == {
        "customers",
        "order_items",
        "order_totals",
        "orders",
        "products",
    }
    assert matches(completer, "select o.stat from demo.orders o where orders.stat") == {"status"}
    assert matches(completer, "select x.") == set()


def test_completion_of_a_bare_word_offers_columns_of_tables_in_the_cell(
    completer: SqlCompleter,
) -> None:
    code = "select cu from demo.customers"
    completion = completer.complete(code, len("select cu"))
    assert "customer_id" in completion.matches
    assert completion.kinds[completion.matches.index("customer_id")] == "column"
    assert (completion.start, completion.end) == (len("select "), len("select cu"))
    reply = completion.reply()
    assert reply["cursor_start"] == len("select ")
    types = {
        item["text"]: item["type"] for item in reply["metadata"]["_jupyter_types_experimental"]
    }
    assert types["customer_id"] == "column" and types["current_date"] == "keyword"


def test_no_completion_inside_strings_and_comments(completer: SqlCompleter) -> None:
    assert matches(completer, "select 'demo.cu") == set()
    assert matches(completer, "select 1 -- demo.cu") == set()
    assert matches(completer, "select 1 /* demo.cu") == set()


def test_metadata_is_cached_until_cleared(completer: SqlCompleter) -> None:
    cache = completer.cache
    first = cache.tables("demo")
    assert cache.tables("demo") is first
    assert cache.columns("demo", "orders") is cache.columns("demo", "orders")
    cache.clear()
    again = cache.tables("demo")
    assert again is not first and again == first


def test_keywords_are_offered_when_linkis_refuses_the_metadata(
    linkis_server: ServerProcess,
) -> None:
    client = LinkisClient(linkis_server.url, user=linkis_server.user, token="wrong-token")
    errors: list[Exception] = []
    completer = SqlCompleter(MetadataCache(lambda: client, errors.append))
    assert matches(completer, "sel") == {"select"}
    assert matches(completer, "select * from demo.cu") == set()
    assert errors and all(isinstance(error, LinkisError) for error in errors)
    assert "wrong-token" not in " ".join(str(error) for error in errors)


def test_inspecting_a_table_lists_its_columns_and_types(completer: SqlCompleter) -> None:
    code = "select * from demo.customers where 1 = 1"
    bundle = completer.inspect(code, code.index("customers") + 3)
    assert bundle is not None
    assert bundle["text/plain"].startswith("demo.customers (table, 8 columns)")
    assert "lifetime_value  decimal(12,2)  total spent, in EUR" in bundle["text/plain"]
    assert "| customer_id | integer | primary id |" in bundle["text/markdown"]


def test_inspecting_views_columns_and_databases(completer: SqlCompleter) -> None:
    view = completer.inspect("from demo.order_totals", len("from demo.order_totals"))
    assert view is not None and "(view," in view["text/plain"]
    column = completer.inspect("demo.customers.email", len("demo.customers.em"))
    assert column is not None
    assert column["text/plain"] == "demo.customers.email: varchar  (null for some customers)"
    database = completer.inspect("demo", 2)
    assert database is not None and "  order_totals (view)" in database["text/plain"]
    assert completer.inspect("select 1", 3) is None
    assert completer.inspect("demo.no_such_table", 8) is None


def install(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "linkis_kernel", "install", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_install_writes_each_kernelspec_with_this_python(kernel_environment: Path) -> None:
    specs = KernelSpecManager().get_all_specs()
    for name in KERNEL_NAMES:
        installed = Path(specs[name]["resource_dir"])
        assert installed.is_relative_to(kernel_environment)
        spec = json.loads((installed / "kernel.json").read_text())
        assert spec["argv"] == [
            sys.executable,
            "-m",
            "linkis_kernel.kernel",
            "-f",
            "{connection_file}",
        ]
        assert spec["language"] == "python"
        assert {"LINKIS_KERNEL_ENGINE", "LINKIS_KERNEL_RUN_TYPE"} <= set(spec["env"])
        assert (installed / "logo-32x32.png").read_bytes().startswith(b"\x89PNG")
        assert (installed / "logo-64x64.png").stat().st_size < 4096
    assert specs["linkis_pyspark"]["spec"]["env"]["LINKIS_KERNEL_RUN_TYPE"] == "py"
    assert specs["linkis_shell"]["spec"]["env"]["LINKIS_KERNEL_ENGINE"] == "shell"


def test_install_only_the_named_kernelspec(tmp_path: Path) -> None:
    done = install("--prefix", str(tmp_path), "--name", "linkis_shell")
    assert done.returncode == 0, done.stderr
    kernels = tmp_path / "share" / "jupyter" / "kernels"
    assert sorted(path.name for path in kernels.iterdir()) == ["linkis_shell"]
    assert f"Installed kernelspec linkis_shell (Linkis Shell) in {kernels / 'linkis_shell'}" in (
        done.stdout
    )


def test_install_of_an_unknown_kernelspec_names_the_choices(tmp_path: Path) -> None:
    done = install("--prefix", str(tmp_path), "--name", "linkis_scala")
    assert done.returncode == 2
    assert "no kernelspec named linkis_scala" in done.stderr
    assert "linkis_sql" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "share").exists()


def test_starting_the_kernel_does_not_load_pandas() -> None:
    """pandas (a third of a second) loads with the first table, not with the kernel."""
    code = "import sys, linkis_kernel.kernel; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
