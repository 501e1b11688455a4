"""A table result read as typed DataFrames of a bounded size, batch after batch.

Each batch has the dtypes `job.result()` gives (the same converters, `convert.py`), and an index
that continues the previous batch's, so that concatenating every batch equals `job.result()`.
The reader holds one batch being filled and the pages fetched ahead (`pages.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ..client import LinkisError
from ..wire import NULL_MARKER, RESULT_TABLE
from .convert import TableBuilder, check_decimal_mode
from .pages import RESULT_PAGE_SIZE, gc_paused, iter_pages

if TYPE_CHECKING:
    import pandas as pd

    from ..client import Column, LinkisRestClient

# A .dolphin row: 10 digits of record length, 10 of index length, then per cell its byte length
# and a comma, then the cells (docs/linkis-rest.md, "The .dolphin format").
_RECORD_OVERHEAD = 20
_DOLPHIN_HEADER = 17

Progress = Callable[[int, "int | None"], None]


class BatchReader:
    """Iterate over the table at `path` in DataFrames of `batch_rows` rows (the last one may be
    shorter; a table without rows gives one empty batch).

    `columns` is known once the first page is in; `rows_read` counts the rows typed so far.
    `on_progress(rows_read, estimated_rows)` is called after every page, the estimate (or None)
    derived from `file_size`, the result file's size in bytes, when it is given.
    """

    def __init__(
        self,
        client: LinkisRestClient,
        path: str,
        *,
        batch_rows: int,
        page_size: int = RESULT_PAGE_SIZE,
        decimal: str = "decimal",
        file_size: int | None = None,
        on_progress: Progress | None = None,
    ) -> None:
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be at least 1, not {batch_rows}")
        check_decimal_mode(decimal)
        self.client = client
        self.path = path
        self.batch_rows = batch_rows
        self.page_size = min(page_size, batch_rows)
        self.decimal = decimal
        self.file_size = file_size
        self.on_progress = on_progress
        self.columns: list[Column] | None = None
        self.rows_read = 0
        self.estimated_rows: int | None = None

    def __iter__(self) -> Iterator[pd.DataFrame]:
        builder: TableBuilder | None = None
        start = 0
        for page in iter_pages(self.client, self.path, self.page_size):
            if page.type != RESULT_TABLE or page.columns is None:
                raise LinkisError(
                    f"The result set {self.path} is not a table (result type {page.type}); "
                    f"read it with job.results()"
                )
            if builder is None:
                self.columns = page.columns
                builder = TableBuilder(page.columns, self.decimal)
                self.estimated_rows = self._estimate_rows(page.rows)
            with gc_paused():
                builder.add(page.rows)
            self.rows_read += len(page.rows)
            if self.on_progress is not None:
                self.on_progress(self.rows_read, self.estimated_rows)
            while builder.rows >= self.batch_rows:
                yield builder.take(self.batch_rows, start)
                start += self.batch_rows
        if builder is not None and (builder.rows or start == 0):
            yield builder.take(builder.rows, start)

    def _estimate_rows(self, rows: list[list]) -> int | None:
        """The rows in the whole file, judged by the size of the first page's rows on disk."""
        if not self.file_size or not rows:
            return None
        sample = rows[:1000]
        sample_bytes = sum(map(_dolphin_row_bytes, sample))
        return max(
            len(rows), round((self.file_size - _DOLPHIN_HEADER) * len(sample) / sample_bytes)
        )


def _dolphin_row_bytes(row: list) -> int:
    sizes = [len((NULL_MARKER if cell is None else cell).encode()) for cell in row]
    return _RECORD_OVERHEAD + sum(sizes) + sum(len(str(size)) + 1 for size in sizes)
