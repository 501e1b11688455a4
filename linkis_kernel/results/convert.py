"""Typing of result-set cells: each column's Linkis data type picks its converter once, and
pages of raw rows are converted column by column, a page at a time.

pandas and numpy are imported only when a table is built.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ..client import Column

DECIMAL_MODES = ("decimal", "float")

_INT_DTYPES = {
    "tinyint": "Int8",
    "short": "Int16",
    "smallint": "Int16",
    "int": "Int32",
    "integer": "Int32",
    "bigint": "Int64",
    "long": "Int64",
}
_FLOAT_TYPES = frozenset({"float", "double", "real"})
DECIMAL_TYPES = frozenset({"decimal", "bigdecimal", "numeric"})
_BOOLEAN_TYPES = frozenset({"boolean", "bool"})
_DATETIME_TYPES = frozenset({"date", "timestamp", "datetime"})
_STRING_TYPES = frozenset({"char", "varchar", "string"})
_ZONE_SUFFIX = re.compile(r"(?:Z|[+-]\d\d(?::?\d\d)?)$")
_BOOLEAN_WORDS = {"true": True, "false": False, "1": True, "0": False, "t": True, "f": False}

Converter = Callable[["np.ndarray"], Any]


def base_type(data_type: str) -> str:
    """The Linkis type name without parameters: `decimal(10,2)` -> `decimal`."""
    return data_type.split("(", 1)[0].strip().lower()


def check_decimal_mode(decimal: str) -> None:
    if decimal not in DECIMAL_MODES:
        raise ValueError(f"decimal must be 'decimal' or 'float', got {decimal!r}")


def converter_for(data_type: str, decimal: str = "decimal") -> Converter:
    """The function that types one column's cells (an object array of strings and None)."""
    kind = base_type(data_type)
    if kind in _INT_DTYPES:
        dtype = _INT_DTYPES[kind]
        return lambda values: _integers(values, dtype)
    if kind in _FLOAT_TYPES or (kind in DECIMAL_TYPES and decimal == "float"):
        return _floats
    if kind in DECIMAL_TYPES:
        return _decimals
    if kind in _BOOLEAN_TYPES:
        return _booleans
    if kind in _DATETIME_TYPES:
        return _datetimes
    if kind in _STRING_TYPES:
        return _strings
    return _objects


def convert_column(values: np.ndarray, data_type: str, decimal: str = "decimal") -> pd.Series:
    """Type one column of cells (strings, None for null) as its Linkis data type says.

    Values that do not parse as the declared type are kept as the strings given.
    """
    return _series(_convert(converter_for(data_type, decimal), values))


def table_frame(
    columns: Sequence[Column], rows: list[list], *, decimal: str = "decimal"
) -> pd.DataFrame:
    """A DataFrame from `openFile` rows (strings, None for null) typed by the column metadata."""
    builder = TableBuilder(columns, decimal)
    builder.add(rows)
    return builder.frame()


class TableBuilder:
    """Takes pages of raw rows, types each page column by column as it arrives, and joins the
    typed pieces into one DataFrame (or hands them out as batches with `take`)."""

    def __init__(self, columns: Sequence[Column], decimal: str = "decimal") -> None:
        check_decimal_mode(decimal)
        self.columns = list(columns)
        self._converters = [converter_for(c.data_type, decimal) for c in self.columns]
        self._pieces: list[list[Any]] = []
        self.rows = 0

    def add(self, rows: list[list]) -> None:
        """Type one page of rows (each a list of one cell per column)."""
        if not rows:
            return
        import numpy as np

        width = len(self.columns)
        if set(map(len, rows)) != {width}:
            raise ValueError(f"a result page has rows that do not have {width} cells")
        cells = itertools.chain.from_iterable(rows)
        block = np.fromiter(cells, dtype=object, count=len(rows) * width)
        block = block.reshape(len(rows), width).T.copy()  # one contiguous row per column
        self._pieces.append(
            [_convert(convert, block[i]) for i, convert in enumerate(self._converters)]
        )
        self.rows += len(rows)

    def frame(self) -> pd.DataFrame:
        """Everything added so far as one typed DataFrame (RangeIndex from 0)."""
        return self._frame(self._pieces, 0)

    def take(self, rows: int, start: int) -> pd.DataFrame:
        """The first `rows` rows added and not yet taken, indexed from `start`; they are
        dropped from the builder."""
        pieces, kept, count = [], [], 0
        for piece in self._pieces:
            size = len(piece[0])
            if count >= rows:
                kept.append(piece)
            elif count + size <= rows:
                pieces.append(piece)
            else:
                cut = rows - count
                pieces.append([part[:cut] for part in piece])
                kept.append([part[cut:] for part in piece])
            count += size
        self._pieces = kept
        taken = sum(len(piece[0]) for piece in pieces)
        self.rows -= taken
        return self._frame(pieces, start)

    def _frame(self, pieces: list[list[Any]], start: int) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        if not pieces:
            pieces = [[_convert(c, np.empty(0, dtype=object)) for c in self._converters]]
        columns = {
            i: _series(parts[0] if len(parts) == 1 else _concat(parts))
            for i, parts in enumerate(zip(*pieces, strict=True))
        }
        frame = pd.DataFrame(columns, copy=False)
        frame.columns = [c.name for c in self.columns]
        frame.index = pd.RangeIndex(start, start + len(frame))
        return frame


def _convert(convert: Converter, values: np.ndarray) -> Any:
    try:
        return convert(values)
    except (ValueError, TypeError, OverflowError, ArithmeticError):
        return _objects(values)


def _concat(parts: Sequence[Any]) -> Any:
    """Join the typed pieces of one column; pieces of different types end as objects."""
    import pandas as pd

    return pd.concat([_series(part) for part in parts], ignore_index=True)


def _series(values: Any) -> pd.Series:
    import numpy as np
    import pandas as pd

    if isinstance(values, pd.Series):
        return values.reset_index(drop=True)
    if isinstance(values, np.ndarray):  # keeps object arrays objects (no string inference)
        return pd.Series(values, dtype=values.dtype, copy=False)
    return pd.Series(values, copy=False)


def _objects(values: np.ndarray) -> np.ndarray:
    return values.copy()


def _strings(values: np.ndarray) -> Any:
    import pandas as pd

    return pd.array(values, dtype="string")


def _integers(values: np.ndarray, dtype: str) -> Any:
    import numpy as np
    import pandas as pd

    mask = pd.isna(values)
    filled = values.copy()
    filled[mask] = "0"
    array = pd.arrays.IntegerArray(filled.astype(np.int64), mask)
    return array if dtype == "Int64" else array.astype(dtype)


def _floats(values: np.ndarray) -> np.ndarray:
    import numpy as np
    import pandas as pd

    filled = values.copy()
    filled[pd.isna(values)] = np.nan
    return filled.astype(np.float64)


def _decimals(values: np.ndarray) -> np.ndarray:
    import numpy as np
    import pandas as pd

    mask = pd.isna(values)
    has_nulls = mask.any()
    if has_nulls:
        values = values.copy()
        values[mask] = "0"
    out = np.frompyfunc(Decimal, 1, 1)(values)
    if has_nulls:
        out[mask] = None
    return out


def _booleans(values: np.ndarray) -> Any:
    import pandas as pd

    mask = pd.isna(values)
    true, false = values == "true", values == "false"
    if (true | false | mask).all():
        return pd.arrays.BooleanArray(true, mask)
    words = pd.Series(values, dtype=object, copy=False)
    mapped = words.str.lower().map(_BOOLEAN_WORDS)
    if mapped.isna().sum() != mask.sum():
        raise ValueError("not a boolean")
    return mapped.astype("boolean").array


def _datetimes(values: np.ndarray) -> Any:
    """ISO dates and timestamps: numpy parses plain ones fast; pandas keeps a zone offset
    (which numpy would silently convert away), judged by the first value."""
    import pandas as pd

    first = next((value for value in values if value is not None), None)
    if first is None or not (len(first) > len("yyyy-mm-dd") and _ZONE_SUFFIX.search(first)):
        try:
            return values.astype("datetime64[us]")
        except ValueError:
            pass
    return pd.to_datetime(values, format="ISO8601")
