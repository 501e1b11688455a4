"""`openFile` pages of one result file, fetched ahead of the reader.

Up to `PREFETCH_PAGES` requests are in flight while the reader decodes and types the pages
already in: the server keeps working while the client converts, and the reader holds at most
that many pages besides its own. A short (or empty) page ends the file
(docs/linkis-rest.md, "Result files").
"""

from __future__ import annotations

import gc
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..wire import NULL_MARKER, OPEN_FILE_DEFAULT_PAGE_SIZE

if TYPE_CHECKING:
    from ..client import FilePage, LinkisRestClient

# Rows per openFile request, Linkis' own default: the page-size sweep in benchmarks/RESULTS.md
# finds it the fastest, the server spending more CPU per row on larger pages.
RESULT_PAGE_SIZE = OPEN_FILE_DEFAULT_PAGE_SIZE
# Requests in flight: two keep the server busy while a page travels and is decoded; more only
# make the pages compete for the server's CPU.
PREFETCH_PAGES = 2


def iter_pages(
    client: LinkisRestClient,
    path: str,
    size: int = RESULT_PAGE_SIZE,
    wanted: int | None = None,
    *,
    prefetch: int = PREFETCH_PAGES,
) -> Iterator[FilePage]:
    """Pages 1, 2, ... of `path` in order, until a short page or `wanted` rows.

    The first page is read alone (a small result costs one request); once a page comes back
    full, the next `prefetch` pages are requested ahead. A failed request raises its
    LinkisError when its page is reached, and nothing is requested after it.
    """
    last = -(-wanted // size) if wanted else None
    pool = ThreadPoolExecutor(max_workers=max(1, prefetch), thread_name_prefix="linkis-pages")
    pending: deque[Future[FilePage]] = deque()
    requested = 0

    def request_up_to(count: int) -> None:
        nonlocal requested
        while len(pending) < count and (last is None or requested < last):
            requested += 1
            pending.append(
                pool.submit(
                    client.open_file, path, page=requested, page_size=size, null_value=NULL_MARKER
                )
            )

    try:
        request_up_to(1)
        while pending:
            page = pending.popleft().result()
            if len(page.rows) < size:
                yield page
                return
            request_up_to(max(1, prefetch))
            yield page
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while pages are decoded and converted.

    Each page makes thousands of short-lived lists; with the collector on, its repeated full
    passes over them cost about as much as the JSON decoding itself.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
