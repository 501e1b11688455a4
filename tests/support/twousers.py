"""Two users of one real server, for tests of what one user can do to the other.

`GUEST` is the second user `start_server(..., users=[GUEST])` adds (the shared `linkis_server`
has it); `ALICE` and `BOB` are the users of servers that tests start with users.json of their own.
`user_session(server, user)` is a `requests.Session` with a user's token headers,
`guest_client(server)` the guest's, `user_client(server, user)` a `LinkisClient` with a user's
token; `server.client` and `server.linkis_client()` are the owner's. `post_raw(session, url,
text)` sends a body exactly as given (JSON with escapes `json.dumps` would not write, or a
text/plain form post).
"""

from __future__ import annotations

from typing import Any

import requests

from linkis_kernel import LinkisClient

from .serverproc import GUEST, ServerProcess

ALICE = {"name": "alice", "password": "alice-password-1", "token": "alice-token-1"}
BOB = {"name": "bob", "password": "bob-password-1", "token": "bob-token-1"}


def user_session(server: ServerProcess, user: dict[str, str]) -> requests.Session:
    """A requests.Session authenticated by `user`'s token headers."""
    session = requests.Session()
    session.headers.update(server.token_headers(user["name"], user["token"]))
    return session


def user_client(server: ServerProcess, user: dict[str, str]) -> LinkisClient:
    """A `LinkisClient` of `server` authenticated by `user`'s token."""
    return LinkisClient(server.url, user=user["name"], token=user["token"])


def guest_client(server: ServerProcess) -> requests.Session:
    """A requests.Session authenticated by the guest's token headers."""
    session = user_session(server, GUEST)
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
