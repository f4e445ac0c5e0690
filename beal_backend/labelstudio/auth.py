"""Label Studio's API keys on the requests the SDK has no method for, sent as the SDK sends them: a legacy
token as ``Token <key>``; a personal access token (a JWT refresh token) exchanged for a short-lived access
token, sent as ``Bearer``, and exchanged again when Label Studio answers 401 (the access token expired)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Generator

import httpx


def is_jwt(key: str) -> bool:
    """Whether ``key`` is a JWT (a personal access token) rather than a legacy token, as the SDK tells them apart."""
    parts = key.split(".")
    if len(parts) != 3:
        return False
    try:
        return isinstance(json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))), dict)
    except ValueError:  # not base64, not UTF-8 or not JSON
        return False


class LabelStudioAuth(httpx.Auth):
    def __init__(self, key: str, exchange: Callable[[], str]):
        """``exchange``: a personal access token -> a fresh access token (the SDK's public ``tokens.refresh``)."""
        self._key, self._exchange, self._pat = key, exchange, is_jwt(key)
        self._access: str | None = None
        self._lock = threading.Lock()  # one exchange at a time, whichever thread needs it

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self._pat:
            request.headers["Authorization"] = f"Token {self._key}"
            yield request
            return
        sent = self._token(stale=None)
        request.headers["Authorization"] = f"Bearer {sent}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self._token(stale=sent)}"
            yield request

    def _token(self, stale: str | None) -> str:
        with self._lock:
            if self._access is None or self._access == stale:
                self._access = self._exchange()
            return self._access
