"""Result sets of a finished job as typed pandas objects, batches, or a Parquet file.

`pages` fetches `openFile` pages ahead of the reader, `convert` types the cells column by column,
`sets` builds whole result sets, `batches` bounded DataFrames, `parquet` a file. pandas (and
pyarrow, for Parquet) are imported only when a table is built.
"""

from __future__ import annotations

from .batches import BatchReader
from .convert import TableBuilder, base_type, convert_column, table_frame
from .pages import PREFETCH_PAGES, RESULT_PAGE_SIZE, iter_pages
from .parquet import PARQUET_INSTALL, check_target, require_pyarrow, write_parquet
from .sets import KIND_BY_TYPE, ResultSet, engine_cap_reason, read_result_set, read_result_sets

__all__ = [
    "KIND_BY_TYPE",
    "PARQUET_INSTALL",
    "PREFETCH_PAGES",
    "RESULT_PAGE_SIZE",
    "BatchReader",
    "ResultSet",
    "TableBuilder",
    "base_type",
    "check_target",
    "convert_column",
    "engine_cap_reason",
    "iter_pages",
    "read_result_set",
    "read_result_sets",
    "require_pyarrow",
    "table_frame",
    "write_parquet",
]
