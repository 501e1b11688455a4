"""`LinkisClient`: the REST client plus `submit()` and `job()`, the entry point users import."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..client import LinkisJobNotFoundError, LinkisNotFoundError, LinkisRestClient, TaskInfo
from ..wire import DEFAULT_CREATOR, DEFAULT_ENGINE_VERSIONS
from .handle import Job
from .submit import build_submit_body, default_run_type, expand_engine

_EXEC_ID_SEARCH_PAGES = 10
_EXEC_ID_SEARCH_PAGE_SIZE = 100


class LinkisClient(LinkisRestClient):
    """The Linkis client users import: the REST client plus `submit()` and `job()`.

    `engine_versions` maps a bare engine type to the version it expands to (defaults as in
    Linkis 1.7.0); change it per client, e.g. `client.engine_versions["spark"] = "2.4.3"`.
    """

    def __init__(
        self, *args: Any, engine_versions: Mapping[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.engine_versions: dict[str, str] = {
            **DEFAULT_ENGINE_VERSIONS,
            **(engine_versions or {}),
        }

    def submit(
        self,
        code: str,
        *,
        engine: str = "spark",
        run_type: str | None = None,
        creator: str = DEFAULT_CREATOR,
        variables: dict | None = None,
        runtime: dict | None = None,
        startup: dict | None = None,
        source: dict | None = None,
        labels: dict | None = None,
    ) -> Job:
        """Submit `code` to Linkis and return its Job (call `.wait()` on it)."""
        engine_label = expand_engine(engine, self.engine_versions)
        run_type = run_type or default_run_type(engine_label)
        body = build_submit_body(
            code,
            engine_label=engine_label,
            run_type=run_type,
            user_creator=f"{self.user}-{creator}" if self.user else None,
            variables=variables,
            runtime=runtime,
            startup=startup,
            source=source,
            labels=labels,
        )
        submitted = self.entrance_submit(body)
        return Job(
            self,
            submitted.exec_id,
            submitted.task_id,
            engine=engine_label,
            run_type=run_type,
            code=code,
            creator=creator,
        )

    def job(self, job_id: int | str) -> Job:
        """Attach to an existing job by task id (int or digits) or by exec id.

        Raises LinkisJobNotFoundError when no such job is visible to this user."""
        text = str(job_id).strip()
        if isinstance(job_id, int) or text.isdecimal():
            try:
                return Job.from_task(self, self.jobhistory_get(int(text)))
            except LinkisNotFoundError:
                raise LinkisJobNotFoundError(int(text)) from None
        return Job.from_task(self, self._task_for_exec_id(text))

    def _task_for_exec_id(self, exec_id: str) -> TaskInfo:
        """Find an exec id's history row (the entrance has no exec id -> task id lookup)."""
        for page in range(1, _EXEC_ID_SEARCH_PAGES + 1):
            found = self.jobhistory_list(page=page, page_size=_EXEC_ID_SEARCH_PAGE_SIZE)
            for task in found.tasks:
                if exec_id in (task.stronger_exec_id, task.exec_id):
                    return task
            if page * _EXEC_ID_SEARCH_PAGE_SIZE >= found.total or not found.tasks:
                break
        raise LinkisJobNotFoundError(exec_id)
