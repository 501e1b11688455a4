"""Random arguments to every LocalLinkis method: a ServiceError or an answer, never a crash."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.localsvc import USER

from linkis_kernel.local.errors import ServiceError
from linkis_kernel.local.service import LocalLinkis

ids = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.sampled_from(["exec_id", "exec_id018", "exec_id018014linkis-cg-entrance127.0.0.1:9001x_1"]),
)
numbers = st.one_of(st.none(), st.integers(min_value=-(10**20), max_value=10**20))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "executionContent": st.one_of(
                json_values, st.fixed_dictionaries({"code": json_values, "runType": json_values})
            ),
            "labels": st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {"engineType": json_values, "userCreator": json_values, "codeType": json_values}
                ),
            ),
            "params": json_values,
        }
    ),
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLinkis]:
    linkis = LocalLinkis(Path(tmp_path_factory.mktemp("fuzz")), workers=1)
    linkis.start()
    yield linkis
    linkis.close()


def _answers_or_refuses(call, *args, **kwargs) -> None:
    try:
        call(*args, **kwargs)
    except ServiceError as error:
        assert error.message


SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(job_id=ids, task_id=numbers, a=numbers, b=numbers, flag=st.booleans())
@example(job_id="¹", task_id=None, a=None, b=None, flag=False)  # a digit int() cannot read
def test_entrance_methods(service: LocalLinkis, job_id, task_id, a, b, flag) -> None:
    _answers_or_refuses(service.status, USER, job_id, task_id)
    _answers_or_refuses(service.progress, USER, job_id, task_id, flag)
    _answers_or_refuses(service.log, USER, job_id, a or 0, b or 0, flag)
    _answers_or_refuses(service.kill, USER, job_id, task_id)
    _answers_or_refuses(service.kill_jobs, USER, [job_id], [task_id])


@SETTINGS
@given(body=bodies)
def test_submit_and_execute(service: LocalLinkis, body) -> None:
    _answers_or_refuses(service.submit, USER, body)
    _answers_or_refuses(service.execute, USER, body)


@SETTINGS
@given(path=st.text(max_size=60), page=numbers, size=numbers, null=st.text(max_size=5))
def test_filesystem_and_history(service: LocalLinkis, path, page, size, null) -> None:
    root = f"file://{service.layout.root}/result/"
    for candidate in (path, root + path):
        _answers_or_refuses(service.dir_tree, USER, candidate)
        _answers_or_refuses(service.open_file, USER, candidate, page or 1, size or 1, null)
        _answers_or_refuses(service.open_log, USER, candidate)
    _answers_or_refuses(service.history_get, USER, page or 0)
    _answers_or_refuses(
        service.history_list,
        USER,
        start_date=page,
        end_date=size,
        status=[null],
        page_now=page or 1,
        page_size=size or 1,
        task_id=page,
        engine_type=null,
        creator=null,
    )
    _answers_or_refuses(service.tables, USER, path)
    _answers_or_refuses(service.columns, USER, path, null)
