"""A fault-injecting HTTP proxy in front of the real Label Studio: requests pass through unchanged
except those matching a rule, which fail before reaching Label Studio (``"refuse"``) or after it has
processed them, so the caller never sees the reply (``"drop_reply"``)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


class FaultProxy:
    def __init__(self, target: str):
        self.target = target.rstrip("/")
        self.rules: list[dict] = []  # {"match": substring of path, "mode": ..., "times": n}
        self.seen: list[tuple[str, str, int]] = []  # (method, path, status returned)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                rule = proxy._take(self.path)
                if rule == "refuse":
                    return self._reply(502, b'{"detail": "injected fault"}')
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                r = requests.request(self.command, proxy.target + self.path, data=body, headers=headers, timeout=60)
                if rule == "drop_reply":
                    return self._reply(502, b'{"detail": "injected fault after processing"}')
                self._reply(r.status_code, r.content, r.headers.get("Content-Type", "application/json"))

            def _reply(self, status, content, ctype="application/json"):
                proxy.seen.append((self.command, self.path, status))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._mu = threading.Lock()

    def fail(self, match: str, mode: str, times: int) -> None:
        with self._mu:
            self.rules.append({"match": match, "mode": mode, "times": times})

    def _take(self, path: str) -> str | None:
        with self._mu:
            for rule in self.rules:
                if rule["match"] in path and rule["times"] > 0:
                    rule["times"] -= 1
                    return rule["mode"]
        return None

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
