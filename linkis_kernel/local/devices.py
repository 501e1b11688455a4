"""Device cookies: what lets a client that once logged in as a user keep logging in as that user
while others fail logins under the same name (OWASP, "Slow Down Online Guessing Attacks with
Device Cookies").

A device cookie is `<nonce>.<mac>`: a random nonce and an HMAC-SHA256, under a key only the
server holds, of the user name and the nonce. The server keeps no list of the cookies it issued:
a cookie is valid for a user when its MAC is. The nonce names the device, whose failed logins
are counted apart from everyone else's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

DEVICE_COOKIE_DAYS = 365
_NONCE = re.compile(r"[A-Za-z0-9_-]{22}")  # secrets.token_urlsafe(16)
_MAX_COOKIE_CHARS = 128


class DeviceCookies:
    """Issues and checks the device cookies signed with `key` (kept secret by the server)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a device cookie key needs at least 16 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "DeviceCookies(<key hidden>)"

    def issue(self, user: str) -> str:
        """A new device cookie for `user`."""
        nonce = secrets.token_urlsafe(16)
        return f"{nonce}.{self._mac(user, nonce)}"

    def device_of(self, user: str, cookie: str | None) -> str | None:
        """The device (nonce) of `cookie` if it is a valid device cookie for `user`, else None."""
        if not cookie or len(cookie) > _MAX_COOKIE_CHARS:
            return None
        nonce, _, mac = cookie.partition(".")
        if not _NONCE.fullmatch(nonce):
            return None
        expected = self._mac(user, nonce).encode()
        return nonce if hmac.compare_digest(mac.encode(errors="replace"), expected) else None

    def _mac(self, user: str, nonce: str) -> str:
        message = f"{nonce}\n{user.lower()}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
