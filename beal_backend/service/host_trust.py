"""Which Label Studio a project belongs to: the rule every /setup passes before anything is stored (README,
*Security*).

- Trust on first use: the first /setup of a project records the hostname it names, once that Label Studio
  confirms the project exists (one GET; without ``LABEL_STUDIO_URL`` with the token /setup sent). A project
  Label Studio does not know is refused and leaves nothing on disk.
- A later /setup naming another hostname, or none, changes nothing and is a 403, unless the caller is
  authenticated (basic auth is on). ``beal relink`` is the operator's way out when Label Studio really moved.
- ``LABEL_STUDIO_HOSTS``, when set, lists the only hostnames any /setup may name.
- Without ``LABEL_STUDIO_URL``, hostname and token are one pair: a changed token from the trusted host (Label
  Studio sends the connecting user's) is used only once that Label Studio accepts it for the project.
"""

from __future__ import annotations

import re

from beal_backend.config import URL, host_key
from beal_backend.labelstudio.client import LabelStudioError

LINK = ("hostname", "access_token")  # the fields of a project's record this rule decides


class SetupRefused(PermissionError):
    """A /setup that changes nothing; ``status`` is its HTTP status (400, 403 or 404)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def link(rt, pid: str, old: dict | None, hostname, token) -> dict:
    """The hostname (and, without ``LABEL_STUDIO_URL``, the token) project ``pid`` keeps after a /setup that
    names ``hostname`` and ``token``; ``old`` is its stored record. Raises SetupRefused or LabelStudioError."""
    s = rt.settings
    host, token = _host(hostname), _token(token)
    if host and s.label_studio_hosts and host not in s.label_studio_hosts:
        raise SetupRefused(403, f"hostname {host!r} is not in LABEL_STUDIO_HOSTS; nothing was changed")
    stored = {k: v for k, v in (old or {}).items() if k in LINK and v}
    trusted = host_key(stored["hostname"]) if "hostname" in stored else None
    if trusted and host != trusted and not s.basic_auth_user:
        raise SetupRefused(
            403,
            f"project {pid} is set up from another Label Studio than {host or 'a /setup without hostname'}; "
            f"nothing was changed (if Label Studio moved, the operator runs 'beal relink {pid}')",
        )
    if s.label_studio_url:  # the environment's pair does every call; the hostname is kept only to recognise it
        if old is None:
            _confirm(rt.client_for(s.label_studio_url, s.label_studio_api_key), pid, "LABEL_STUDIO_API_KEY")
        host = host or trusted
        return {"hostname": host} if host else {}
    if not host and old is not None:  # an authenticated /setup without hostname keeps the pair
        return stored
    if not host or not token:
        raise SetupRefused(
            400,
            "/setup needs a hostname and an access_token when LABEL_STUDIO_URL is unset (Label Studio 1.23 with "
            "legacy tokens on sends both); otherwise set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY",
        )
    if (host, token) != (trusted, stored.get("access_token")):
        _confirm(rt.client_for(host, token), pid, "the access_token")
    return {"hostname": host, "access_token": token}


def _confirm(client, pid: str, key: str) -> None:
    """One GET of the project on ``client``'s Label Studio: it exists and ``key`` may read it, or nothing is
    stored. The operator's own key being refused is a server fault (502), a caller's token a 403."""
    status = client.project_status(int(pid))
    if status == 200:
        return
    if status == 404:
        raise SetupRefused(404, f"project {pid} does not exist in Label Studio at {client.url}; nothing was stored")
    if status in (401, 403) and key != "LABEL_STUDIO_API_KEY":
        raise SetupRefused(403, f"Label Studio at {client.url} refused {key} for project {pid} (HTTP {status})")
    raise LabelStudioError(
        f"Label Studio at {client.url} answered HTTP {status} when asked for project {pid} "
        f"with {key}; nothing was stored"
    )


def _host(hostname) -> str | None:
    if hostname in (None, ""):
        return None
    if not isinstance(hostname, str) or not re.fullmatch(URL, hostname.strip()):
        raise SetupRefused(400, "hostname must be an http:// or https:// URL")
    return host_key(hostname)


def _token(token) -> str | None:
    if token in (None, ""):
        return None
    if not isinstance(token, str) or len(token) > 4096:
        raise SetupRefused(400, "access_token must be a string")
    return token
