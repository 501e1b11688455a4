"""`LocalLinkis`: the embedded server's services behind its HTTP layer.

A façade over three parts: the `Entrance` (submit to kill), the `Workspace` (dir trees,
openFile, openLog, result files) and the `JobBook` (job history and scheduling); it also owns
each user's SQL engine, which runs their SQL jobs on their own DuckDB database and answers
the metadata endpoints about it (sqlengines.py). Each
endpoint method returns the `data` dict of one Linkis endpoint (or raises `ServiceError` with
the Linkis status and message), and never waits for a running job.
"""

from __future__ import annotations

from pathlib import Path

from .engineconns import EngineManager, EngineSettings
from .entrance import Entrance
from .errors import ServiceError
from .globalvars import GlobalVariables
from .history import History
from .jobbook import MSG_NOT_STARTED, JobBook
from .manager import ManagerEndpoints
from .paths import Layout
from .quota import DiskQuota
from .sqlengines import SqlEngines
from .workspace import Workspace


class LocalLinkis:
    """Jobs, engines, results, logs, history and metadata of the embedded Linkis server."""

    def __init__(
        self,
        data_dir: Path,
        *,
        workers: int = 2,
        instance: str = "127.0.0.1:9001",
        engines: EngineSettings | None = None,
        disk_quota: int = 0,
    ):
        """`disk_quota`: the bytes each user's files, results and logs may take (0: no limit)."""
        self.layout = Layout(Path(data_dir).absolute())
        host = instance.rpartition(":")[0] or "127.0.0.1"
        settings = engines or EngineSettings()
        self.engines = EngineManager(
            self.layout.root, self.layout.scratch_dir, host, instance, settings
        )
        self.sql = SqlEngines(self.layout, workers, settings, self.engines)
        self.jobs = JobBook(
            self.layout.history_file,
            instance=instance,
            workers=workers,
            sql=self.sql,
            engines=self.engines,
            quota=DiskQuota(self.layout, disk_quota, self._scratch_dirs),
        )
        self._variables: GlobalVariables | None = None
        self.entrance = Entrance(self.jobs, self.layout, self.global_variables)
        self.workspace = Workspace(self.layout)
        self.manager = ManagerEndpoints(self.engines)
        self._closed = False
        # The endpoints, each answered by the part that owns it.
        self.submit = self.entrance.submit
        self.execute = self.entrance.execute
        self.status = self.entrance.status
        self.log = self.entrance.log
        self.progress = self.entrance.progress
        self.kill = self.entrance.kill
        self.kill_jobs = self.entrance.kill_jobs
        self.history_get = self.jobs.history_get
        self.history_list = self.jobs.history_list
        self.undone_tasks = self.jobs.undone_tasks
        self.extra_info = self.jobs.extra_info
        self.diagnosis = self.jobs.diagnosis
        self.dir_tree = self.workspace.dir_tree
        self.result_file = self.workspace.result_file
        self.open_file = self.workspace.open_file
        self.open_log = self.workspace.open_log

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Create the demo database the first time, and start the SQL engines and workers."""
        for folder in (self.layout.root, self.layout.scratch_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.sql.start()
        self.jobs.start()
        self._variables = GlobalVariables(self.layout.global_variables_file)

    def close(self) -> None:
        """Cancel queued and running jobs, stop the workers and end the SQL engines."""
        if self._closed:
            return
        self._closed = True
        self.jobs.close()
        if self._variables is not None:
            self._variables.close()

    def _scratch_dirs(self, user: str) -> list[Path]:
        """The folders outside `user`'s area that their running jobs and engines write in."""
        return [*self.jobs.scratch_dirs(user), *self.engines.scratch_dirs(user)]

    @property
    def history(self) -> History:
        """Job history, as the `JobBook` keeps it."""
        return self.jobs.history

    @property
    def variables(self) -> GlobalVariables:
        if self._variables is None:
            raise ServiceError(MSG_NOT_STARTED)
        return self._variables

    # ---- global variables ------------------------------------------------------------------
    def global_variables(self, user: str) -> dict[str, str]:
        """`user`'s global variables, name -> value."""
        return self.variables.as_dict(user)

    def list_global_variables(self, user: str) -> dict:
        """variable/listGlobalVariable (docs/linkis-rest.md, "Global variables")."""
        return self.variables.listing(user)

    def save_global_variables(self, user: str, body: dict) -> dict:
        """variable/saveGlobalVariable (docs/linkis-rest.md, "Global variables")."""
        return self.variables.save(user, body)

    # ---- metadata --------------------------------------------------------------------------
    def databases(self, user: str) -> dict:
        """datasource/dbs (docs/linkis-rest.md, "Metadata")."""
        return {"dbs": self.sql.databases(user)}

    def tables(self, user: str, database: str | None) -> dict:
        """datasource/tables (docs/linkis-rest.md, "Metadata")."""
        return {"tables": self.sql.tables(user, database)}

    def columns(self, user: str, database: str | None, table: str | None) -> dict:
        """datasource/columns (docs/linkis-rest.md, "Metadata")."""
        return {"columns": self.sql.columns(user, database, table)}
