"""The Jupyter messaging protocol on each Linkis kernelspec (jupyter_kernel_test).

Local behaviour (stdout, stderr, errors, pager, display, clear_output) is sampled through
`%%local` cells; the SQL kernel also returns a Linkis table as its execute_result and completes
and inspects names from the demo schema.
"""

from __future__ import annotations

from typing import Any, ClassVar

import jupyter_kernel_test


class LocalSamples:
    """Samples every Linkis kernel runs the same way: as Python, through `%%local`."""

    language_name = "python"
    code_hello_world = "%%local\nprint('hello, world')"
    code_stderr = "%%local\nimport sys\nprint('test', file=sys.stderr)"
    code_page_something = "%%local\nprint?"
    code_generate_error = "%%local\nraise ValueError('boom')"
    code_display_data: ClassVar[list[dict[str, str]]] = [
        {
            "code": "%%local\nfrom IPython.display import HTML, display\ndisplay(HTML('<b>x</b>'))",
            "mime": "text/html",
        }
    ]
    code_clear_output = "%%local\nfrom IPython.display import clear_output\nclear_output()"
    code_inspect_sample = "%%local\nprint"
    supported_history_operations = ("tail", "range", "search")
    code_execute_result: ClassVar[list[dict[str, str]]] = [
        {"code": "%%local\n6 * 7", "result": "42"}
    ]
    code_history_pattern = "%%local*6 [*] 7"
    complete_code_samples: ClassVar[list[str]] = ["%lsmagic", "%%local\nx = 1\n\n"]
    incomplete_code_samples: ClassVar[list[str]] = ["%%local\nfor i in range(3):"]
    completion_samples: ClassVar[list[dict[str, Any]]] = [
        {"text": "%%local\nzi", "matches": {"zip"}}
    ]


class TestLinkisSqlKernel(LocalSamples, jupyter_kernel_test.KernelTests):
    kernel_name = "linkis_sql"
    file_extension = ".sql"
    code_execute_result: ClassVar[list[dict[str, str]]] = [
        {"code": "select 6 * 7 as answer;", "mime": "text/html"},
        {"code": "%%local\n6 * 7", "result": "42"},
    ]
    code_history_pattern = "select 6 [*] 7*"
    code_inspect_sample = "select * from demo.customers"
    complete_code_samples: ClassVar[list[str]] = [
        "select 1",
        "select 1;",
        "select count(*) from demo.orders where status = 'shipped'",
        "select 'it''s' -- a comment (",
        *LocalSamples.complete_code_samples,
    ]
    incomplete_code_samples: ClassVar[list[str]] = [
        "select 'abc",
        "select count(*",
        "select 1 /* note",
        *LocalSamples.incomplete_code_samples,
    ]
    invalid_code_samples: ClassVar[list[str]] = ["select 1)"]
    completion_samples: ClassVar[list[dict[str, Any]]] = [
        {"text": "sel", "matches": {"select"}},
        {"text": "SEL", "matches": {"SELECT"}},
        {"text": "select * from de", "matches": {"demo", "decimal", "delete", "desc", "describe"}},
        {"text": "select * from demo.ord", "matches": {"orders", "order_items", "order_totals"}},
        {"text": "select demo.customers.cou", "matches": {"country"}},
        {"text": "select customers.na", "matches": {"name"}},
        {"text": "select 'demo.cu", "matches": set()},
        *LocalSamples.completion_samples,
    ]


class TestLinkisPySparkKernel(LocalSamples, jupyter_kernel_test.KernelTests):
    kernel_name = "linkis_pyspark"
    file_extension = ".py"
    complete_code_samples: ClassVar[list[str]] = [
        "print(1)",
        "x = 1",
        *LocalSamples.complete_code_samples,
    ]
    incomplete_code_samples: ClassVar[list[str]] = [
        "for i in range(3):",
        "print(1,",
        *LocalSamples.incomplete_code_samples,
    ]
    invalid_code_samples: ClassVar[list[str]] = ["x = = 1"]
    completion_samples: ClassVar[list[dict[str, Any]]] = [
        {"text": "pri", "matches": set()},
        *LocalSamples.completion_samples,
    ]


class TestLinkisShellKernel(LocalSamples, jupyter_kernel_test.KernelTests):
    kernel_name = "linkis_shell"
    file_extension = ".sh"
    complete_code_samples: ClassVar[list[str]] = [
        "echo hi",
        "echo 'a (b'",
        *LocalSamples.complete_code_samples,
    ]
    incomplete_code_samples: ClassVar[list[str]] = [
        "echo a \\",
        *LocalSamples.incomplete_code_samples,
    ]
    invalid_code_samples: ClassVar[list[str]] = []
    completion_samples: ClassVar[list[dict[str, Any]]] = [
        {"text": "ec", "matches": set()},
        *LocalSamples.completion_samples,
    ]
