"""`JobResults`: what a finished job wrote, read as result sets, a table, batches or a file.

`Job.results()`, `Job.result()`, `Job.iter_batches()` and `Job.download()` delegate here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..client import DirTree, LinkisError, LinkisNotFoundError, LinkisValidationError, TaskInfo
from ..wire import TERMINAL_STATES

if TYPE_CHECKING:
    import pandas as pd

    from ..client import LinkisRestClient
    from ..results import ResultSet

DOWNLOAD_FORMATS = ("csv", "xlsx", "parquet")
DEFAULT_BATCH_ROWS = 100_000
PARQUET_OPTIONS = frozenset({"batch_rows", "page_size", "decimal"})
# How a row-count progress report looks: rows written, and the rows expected (None: unknown).
RowProgress = Callable[[int, "int | None"], None]


class JobResults:
    """The result files of one job. `settled_info` gives the job's history row (once the job
    has ended, one that agrees); `warn_lines` its WARN log lines, which may say why a table of
    exactly 5000 rows is cut short."""

    def __init__(
        self,
        client: Callable[[], LinkisRestClient],
        task_id: int,
        settled_info: Callable[[], TaskInfo],
        warn_lines: Callable[[], list[str]],
    ) -> None:
        self._client = client
        self.task_id = task_id
        self._settled_info = settled_info
        self._warn_lines = warn_lines
        self._cached: tuple[tuple, list[ResultSet]] | None = None

    def _ended_info(self) -> TaskInfo:
        """The history row, after making sure the job has ended (results need that)."""
        info = self._settled_info()
        if info.status not in TERMINAL_STATES:
            raise LinkisError(
                f"Linkis job {self.task_id} is still {info.status}: wait for it with "
                f"job.wait() before reading its results"
            )
        return info

    def files(self, info: TaskInfo | None = None) -> list[DirTree]:
        """The result-set files (with their sizes), in result order; `info` is the ended
        job's history row when the caller has just read it."""
        info = info or self._ended_info()
        if not info.result_location:
            return []
        tree = self._client().dir_file_trees(info.result_location)
        if tree is None:
            return []
        by_path = {child.path: child for child in tree.children}
        return [by_path[path] for path in tree.result_paths()]

    def paths(self) -> list[str]:
        """The job's result-set files, in result order (empty when it wrote none)."""
        return [file.path for file in self.files()]

    def sets(self, *, limit: int | None, page_size: int, decimal: str) -> list[ResultSet]:
        """Every result set (see `Job.results`); the last answer is kept per arguments."""
        from ..results import engine_cap_reason, read_result_sets

        key = (limit or None, page_size, decimal)
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        info = self._ended_info()
        paths = [file.path for file in self.files(info)]
        sets = read_result_sets(
            self._client(),
            paths,
            limit=limit,
            page_size=page_size,
            decimal=decimal,
            cap_reason=lambda: engine_cap_reason(info.creator, info.run_type, self._warn_lines()),
        )
        self._cached = (key, sets)
        return sets

    def table(self, *, limit: int | None, page_size: int, decimal: str) -> pd.DataFrame:
        """The last table result as a DataFrame."""
        sets = self.sets(limit=limit, page_size=page_size, decimal=decimal)
        tables = [s for s in sets if s.kind == "table"]
        if not tables:
            kinds = ", ".join(s.kind for s in sets) or "nothing"
            raise LinkisError(
                f"Linkis job {self.task_id} produced no table result (it produced: {kinds}); "
                f"see job.results() for every result set"
            )
        return tables[-1].data

    def batches(
        self,
        index: int,
        *,
        batch_rows: int,
        page_size: int,
        decimal: str,
        on_progress: RowProgress | None = None,
    ) -> Iterator[pd.DataFrame]:
        """The table at `index` as DataFrames of `batch_rows` rows (see `Job.iter_batches`)."""
        from ..results import BatchReader

        file = self._file(index)
        return iter(
            BatchReader(
                self._client(),
                file.path,
                batch_rows=batch_rows,
                page_size=page_size,
                decimal=decimal,
                file_size=file.size,
                on_progress=on_progress,
            )
        )

    def download(
        self,
        path: str | Path,
        *,
        format: str | None,
        index: int,
        on_progress: RowProgress | None,
        **options: Any,
    ) -> Path:
        """Save one result set as csv, xlsx (the server's export) or parquet (see
        `Job.download`)."""
        chosen = download_format(path, format)
        if chosen != "parquet":
            remote = self._file(index).path
            if on_progress is not None:
                options["on_progress"] = lambda written: on_progress(written, None)
            return self._client().resultset_to_excel(remote, path, output_type=chosen, **options)
        from ..results import BatchReader, check_target, require_pyarrow, write_parquet

        require_pyarrow()
        check_target(path)
        unknown = sorted(options.keys() - PARQUET_OPTIONS)
        if unknown:
            raise LinkisValidationError(
                "Parquet downloads take batch_rows, page_size and decimal, not "
                + ", ".join(unknown)
            )
        file = self._file(index)
        reader = BatchReader(
            self._client(),
            file.path,
            file_size=file.size,
            on_progress=on_progress,
            **{"batch_rows": DEFAULT_BATCH_ROWS, **options},
        )
        return write_parquet(reader, path)

    def _file(self, index: int) -> DirTree:
        files = self.files()
        if not files:
            raise LinkisNotFoundError(f"Linkis job {self.task_id} wrote no result set")
        try:
            return files[index]
        except IndexError:
            raise LinkisError(
                f"Linkis job {self.task_id} has {len(files)} result set(s); index {index} is "
                f"out of range"
            ) from None


def download_format(path: str | Path, format: str | None) -> str:
    """The format asked for, or the one the file name's suffix names (csv when it names none)."""
    chosen = (format or Path(path).suffix.lstrip(".") or "csv").lower()
    if format is None and chosen not in DOWNLOAD_FORMATS:
        chosen = "csv"
    if chosen not in DOWNLOAD_FORMATS:
        raise LinkisValidationError(
            f"Cannot download as {format!r}: the formats are {', '.join(DOWNLOAD_FORMATS)}"
        )
    return chosen
