"""Two users of one real server, for tests of what one user can do to the other.

`GUEST` is the second user `start_server(..., users=[GUEST])` adds (the shared `linkis_server`
has it). `guest_client(server)` is a `requests.Session` with the guest's token headers;
`server.client` is the owner's. `post_raw(session, url, text)` sends a body exactly as given
(JSON with escapes `json.dumps` would not write, or a text/plain form post).
"""

from __future__ import annotations

from typing import Any

import requests

from .serverproc import GUEST, ServerProcess


def guest_client(server: ServerProcess) -> requests.Session:
    """A requests.Session authenticated by the guest's token headers."""
    session = requests.Session()
    session.headers.update(server.token_headers(GUEST["name"], GUEST["token"]))
    session.linkis_user = GUEST["name"]  # type: ignore[attr-defined]
    return session


def post_raw(
    session: requests.Session,
    url: str,
    text: str,
    content_type: str = "application/json",
    **headers: str,
) -> requests.Response:
    """POST `text` as the body with `content_type` (and any extra headers)."""
    return session.post(
        url, data=text.encode(), headers={"Content-Type": content_type, **headers}, timeout=10
    )


def envelope(response: requests.Response) -> dict[str, Any]:
    """The Linkis envelope of an answer, asserting it is one and not an HTTP 500."""
    assert response.status_code != 500, response.text
    body = response.json()
    assert set(body) >= {"method", "status", "message", "data"}, body
    return body
