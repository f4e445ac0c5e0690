"""A tiny stand-in for the one Label Studio call /setup makes, for tests of who may set a project up (the
protocol itself is tested against the real Label Studio, tests/e2e)."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LabelStudioStub:
    """A tiny stand-in for the one Label Studio call /setup makes (GET /api/projects/<id>/, host_trust) on
    127.0.0.1: it knows ``projects`` (None: every id) for the tokens in ``tokens``, answers 401 to other tokens
    and 404, with ``SECRET`` in the body, to anything else; it records every request (method, path, auth)."""

    TOKEN = "ls-setup-token"
    SECRET = "internal-body-text-7f3a"  # must never reach /jobs or /status

    def __init__(self, projects=None, tokens=(TOKEN,)):
        seen = self.requests = []

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                auth = self.headers.get("Authorization")
                seen.append((self.command, self.path, auth))
                found = re.fullmatch(r"/api/projects/([0-9]+)/", self.path) if self.command == "GET" else None
                if found and auth not in {f"Token {t}" for t in tokens}:
                    self._send(401, {"detail": "Invalid token."})
                elif found and (projects is None or int(found.group(1)) in projects):
                    self._send(200, {"id": int(found.group(1)), "title": "stub", "label_config": "<View/>"})
                else:
                    self._send(404, {"detail": f"not found {LabelStudioStub.SECRET}"})

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.link = {"hostname": self.url, "access_token": self.TOKEN}  # what Label Studio's /setup names
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
