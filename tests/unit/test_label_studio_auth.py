"""The Label Studio client's plain calls: which key is a personal access token, and no SDK internals."""

from __future__ import annotations

import ast
import base64
import json
from pathlib import Path

from beal_backend.labelstudio import client
from beal_backend.labelstudio.auth import is_jwt


def _jwt(payload: dict) -> str:
    part = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.c2ln"


def test_legacy_tokens_and_personal_access_tokens_are_told_apart():
    assert is_jwt(_jwt({"token_type": "refresh", "exp": 4102444800}))
    assert not is_jwt("e2e0123456789token") and not is_jwt("a.b.c") and not is_jwt("")


def test_the_client_reaches_no_private_attribute_of_the_sdk():
    """``self._ls._client_wrapper`` was the SDK's private request path; every call now goes through the SDK's
    public methods or our own httpx pool."""
    tree = ast.parse(Path(client.__file__).read_text())
    private = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "_ls"
    ]
    assert private == []
