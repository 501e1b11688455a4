"""A table result written to a Parquet file batch by batch, with `job.result()`'s column types.

Each batch (`batches.py`) becomes one row group, so memory stays bounded by a batch whatever the
result's size. The file is written beside the target under a temporary name and renamed at the
end: a failure on the way raises and leaves no file behind. Needs pyarrow (the `parquet` extra).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..client import LinkisError
from ..client.downloads import check_target, written_in_place
from .convert import DECIMAL_TYPES, base_type

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from ..client import Column
    from .batches import BatchReader

PARQUET_INSTALL = "pip install 'linkis-kernel[parquet]'"
_DECIMAL_PARAMS = re.compile(r"\(\s*(\d+)\s*,\s*(\d+)\s*\)")
_DEFAULT_DECIMAL_SCALE = 18


def require_pyarrow() -> None:
    """Raise a LinkisError naming the install command when pyarrow is missing."""
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise LinkisError(
            "Writing Parquet needs pyarrow, which is not installed",
            hint=f"Install it with {PARQUET_INSTALL}, or download as csv or xlsx.",
        ) from None


def write_parquet(reader: BatchReader, dest: str | os.PathLike) -> Path:
    """Write every batch of `reader` into the Parquet file `dest`; returns its path."""
    require_pyarrow()
    target = check_target(dest)
    with written_in_place(target) as partial:
        _write_batches(reader, partial)
    return target


def _write_batches(reader: BatchReader, path: Path) -> None:
    """One row group per batch; the schema comes from the first batch (there always is one)."""
    import pyarrow.parquet as pq

    batches = iter(reader)
    first = next(batches)
    schema = arrow_schema(first, reader.columns or [])
    with pq.ParquetWriter(path, schema) as writer:
        writer.write_table(_arrow_table(first, schema))
        for frame in batches:
            writer.write_table(_arrow_table(frame, schema))


def arrow_schema(frame: pd.DataFrame, columns: list[Column]) -> pa.Schema:
    """The Arrow schema of a batch, with decimal columns given their declared precision and
    scale (from the data type, or the comment the embedded server puts it in) and columns that
    arrived as text (or nothing but nulls) kept as strings."""
    import pyarrow as pa

    schema = pa.Schema.from_pandas(frame, preserve_index=False)
    for i, column in enumerate(columns):
        field = schema.field(i)
        kind = base_type(column.data_type)
        if kind in DECIMAL_TYPES and frame.dtypes.iloc[i].kind == "O":
            schema = schema.set(i, field.with_type(_decimal_type(column, frame.iloc[:, i])))
        elif pa.types.is_null(field.type):
            schema = schema.set(i, field.with_type(pa.string()))
    return schema


def _decimal_type(column: Column, values: pd.Series) -> pa.DataType:
    """decimal(p,s) as declared; undeclared, the widest precision of the width the first batch
    needs (38 digits, else 76) and the scale it shows."""
    import pyarrow as pa

    declared = _DECIMAL_PARAMS.search(column.data_type) or _DECIMAL_PARAMS.search(
        column.comment or ""
    )
    if declared:
        precision, scale = int(declared.group(1)), int(declared.group(2))
    else:
        inferred = pa.array(values.dropna().tolist()).type
        scale = getattr(inferred, "scale", _DEFAULT_DECIMAL_SCALE)
        precision = 38 if getattr(inferred, "precision", 0) <= 38 else 76
    make = pa.decimal128 if precision <= 38 else pa.decimal256
    return make(precision, scale)


def _arrow_table(frame: pd.DataFrame, schema: pa.Schema) -> Any:
    import pyarrow as pa

    try:
        return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        raise LinkisError(
            f"Rows {frame.index[0]:,} to {frame.index[-1]:,} do not fit the Parquet column "
            f"types taken from the first rows: {exc}",
            hint="Read the result with job.result() or job.iter_batches() instead.",
        ) from None
