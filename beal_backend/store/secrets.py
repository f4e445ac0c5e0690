"""The webhook token: the one credential Label Studio holds for us. It authorises webhook delivery only, so
the operator's basic-auth password never leaves the service (README, *Security*).

When ``WEBHOOK_TOKEN`` is unset, the first process to need it generates one and keeps it in
``MODEL_DIR/.webhook-token`` (mode 0600), which the API and the workers share like the versions.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

TOKEN_FILE = ".webhook-token"


def webhook_token(root: Path | str) -> str:
    """The stored token, generated on first use. Several processes may start at once: the token is written to
    a file of its own and linked into place, so exactly one wins and every process reads the winner's."""
    path = Path(root) / TOKEN_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{TOKEN_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
            with contextlib.suppress(FileExistsError):  # another process got there first: its token is the one
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text().strip()
