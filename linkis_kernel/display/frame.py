"""The DataFrame a table result comes back as (its own module: importing it loads pandas)."""

from __future__ import annotations

import html
from typing import Any, ClassVar

import pandas as pd


class ResultFrame(pd.DataFrame):
    """A table result: a DataFrame with every fetched row, shown as at most `display_limit`
    rows with a header and a footer naming the limits. Derived frames are plain DataFrames."""

    _metadata: ClassVar[list[str]] = ["linkis_header", "linkis_footer", "linkis_display_limit"]

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def _shown(self) -> pd.DataFrame:
        frame = pd.DataFrame(self)
        limit = getattr(self, "linkis_display_limit", None)
        return frame if limit is None else frame.head(limit)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        shown = self._shown()
        header = getattr(self, "linkis_header", None)
        footer = getattr(self, "linkis_footer", "")
        table = shown.to_html(max_rows=len(shown) + 1, notebook=True, border=0)
        html_header = f"<div><b>{html.escape(header)}</b></div>" if header else ""
        html_footer = f'<div style="font-size:85%;color:#555">{html.escape(footer)}</div>'
        text_header = f"{header}\n" if header else ""
        return {
            "text/html": f'<div class="linkis-result">{html_header}{table}{html_footer}</div>',
            "text/plain": f"{text_header}{shown.to_string(max_rows=len(shown) + 1)}\n{footer}",
        }
