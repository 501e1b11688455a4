"""Rich result sets: a figure the Linkis python engine wrote as HTML becomes an image output.

The Linkis python engine shows a matplotlib figure as an HTML result set holding one
`<img src=data:image/png;base64,...>` (`show_matplotlib` in its python.py). Shown as an image
(`image/png`) rather than as HTML, it renders in every front end and stays in the saved
notebook like any plot.
"""

from __future__ import annotations

import re

# The HTML show_matplotlib writes: a div around one inline PNG, and nothing else.
_FIGURE = re.compile(
    r"\s*<div[^>]*>\s*<img\s+src=[\"']?data:image/png;base64,([A-Za-z0-9+/=\s]+?)[\"']?"
    r"(?:\s+style=[\"'][^\"']*[\"'])?\s*/?>\s*(?:</?div>\s*)?",
    re.IGNORECASE,
)


def figure_png(html: str) -> str | None:
    """The base64 PNG of an HTML result that is only a figure, else None."""
    match = _FIGURE.fullmatch(html)
    return "".join(match.group(1).split()) if match else None
