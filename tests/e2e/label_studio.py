"""A real Label Studio for the end-to-end tests, started by the suite itself.

* ``label-studio==1.23.2`` lives in a virtualenv of its own under the cache folder (it pins Django, DRF,
  requests … that must not meet the project's packages): the first run installs it (~1 min), later runs
  reuse it. ``BEAL_LS_VENV`` points at an existing one instead.
* A *template* data directory (migrated database, test user, legacy token switched on in its organisation)
  is made once; every start copies it, so each session gets a fresh, empty server in 2-3 s.
* Instances (``BEAL_TEST_LS_INSTANCE``) have their own data directory and a free port, so parallel runs
  don't collide; installs and template builds of one cache folder are serialised with a file lock.
* Label Studio runs under a clean environment (like ``env -i``): it reads ``HOST``, ``PORT``, ``USERNAME`` …
  even without prefix, so the caller's variables would otherwise leak into its settings.

Cache folder: ``BEAL_CACHE`` or ``$XDG_CACHE_HOME/beal-backend`` (default ``~/.cache/beal-backend``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.ports import free_port

VERSION = "1.23.2"
USER, PASSWORD, TOKEN = "e2e@example.com", "e2e-password-123", "e2e0123456789token"
MARK = ".beal-ls-data"  # marks a data directory this module made (the only kind it ever deletes)


def cache_dir() -> Path:
    if os.environ.get("BEAL_CACHE"):
        return Path(os.environ["BEAL_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "beal-backend"


class LabelStudio:
    """One Label Studio server: ``start()`` → (url, token); ``stop()``. ``bind`` is the listen address
    (``0.0.0.0`` when containers must reach it); the URL the tests use is always on 127.0.0.1."""

    def __init__(
        self,
        instance: str = "beal-e2e",
        bind: str = "127.0.0.1",
        cache: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", instance):
            raise ValueError(f"instance name {instance!r}: use letters, digits, _ . -")
        self.cache = cache or cache_dir()
        self.venv = Path(os.environ.get("BEAL_LS_VENV") or self.cache / f"ls-venv-{VERSION}")
        self.home = self.cache / "label-studio" / instance
        self.bind, self.extra_env = bind, extra_env or {}
        self.proc: subprocess.Popen | None = None
        self.port = 0

    # ------------------------------------------------------------ one-time set-up (cached)

    @contextlib.contextmanager
    def _locked(self):
        self.cache.mkdir(parents=True, exist_ok=True)
        with open(self.cache / ".label-studio.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def _ensure_venv(self) -> None:
        want = f"label-studio=={VERSION}"
        done = self.venv / ".installed"  # written only after a complete install: an interrupted one is redone
        if (self.venv / "bin" / "label-studio").exists() and (
            _read(done) == want or _read(self.venv / ".ls-e2e-ok") == want  # (or made by ../shared/tools)
        ):
            return
        print(f"installing {want} into {self.venv} (first run only, about 1 min)", file=sys.stderr)
        log = self.cache / "label-studio-pip.log"
        with open(log, "w") as out:
            steps = (
                [[sys.executable, "-m", "venv", str(self.venv)]] if not (self.venv / "bin" / "python").exists() else []
            )
            steps += [[str(self.venv / "bin" / "python"), "-m", "pip", "install", "--no-input", "-q", want]]
            for step in steps:
                if subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode:
                    raise RuntimeError(f"{' '.join(step)} failed; see {log}")
        done.write_text(want)

    def _template(self) -> Path:
        key = hashlib.sha256(f"{VERSION}|{USER}|{PASSWORD}|{TOKEN}".encode()).hexdigest()[:12]
        return self.cache / "label-studio" / "templates" / f"ls-{VERSION}-{key}"

    def _ensure_template(self) -> Path:
        """A migrated data directory with the test user and its legacy token. The legacy-token switch is
        stored in the organisation when it is created, so it must be on at ``init``."""
        tpl = self._template()
        if (tpl / MARK).exists():
            return tpl
        tmp = tpl.with_name(f"{tpl.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        out = subprocess.run(
            [str(self.venv / "bin" / "label-studio"), "init", "-q", "--no-browser", "--enable-legacy-api-token"],
            env=self._env(tmp, 8080),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if "successfully initialized" not in out.stdout + out.stderr:
            raise RuntimeError(f"label-studio init failed:\n{(out.stdout + out.stderr)[-3000:]}")
        (tmp / MARK).write_text(f"template for {USER}, Label Studio {VERSION}\n")
        shutil.rmtree(tpl, ignore_errors=True)
        tmp.rename(tpl)
        return tpl

    # ------------------------------------------------------------ the server

    def _env(self, data: Path, port: int) -> dict[str, str]:
        """Label Studio's whole environment (nothing inherited): what an ML backend on localhost needs."""
        return {
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(Path.home()),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "LABEL_STUDIO_BASE_DATA_DIR": str(data),
            "LABEL_STUDIO_USERNAME": USER,
            "LABEL_STUDIO_PASSWORD": PASSWORD,
            "LABEL_STUDIO_USER_TOKEN": TOKEN,
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
            # a backend on 127.0.0.1 is refused unless BOTH are off
            "ML_BLOCK_LOCAL_IP": "false",
            "SSRF_PROTECTION_ENABLED": "false",
            "COLLECT_ANALYTICS": "false",
            "LATEST_VERSION_CHECK": "false",
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
            "LABEL_STUDIO_HOST": f"http://127.0.0.1:{port}",
            **self.extra_env,
        }

    def start(self, timeout: float = 180) -> tuple[str, str]:
        with self._locked():
            self._ensure_venv()
            tpl = self._ensure_template()
        data = self.home / "data"
        if data.exists():
            if not (data / MARK).exists():
                raise RuntimeError(f"{data} exists and was not made by this harness; refusing to delete it")
            shutil.rmtree(data)
        self.home.mkdir(parents=True, exist_ok=True)
        shutil.copytree(tpl, data)  # a fresh, empty server every session
        self.port = free_port(self.bind)
        self.log = self.home / "label-studio.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [
                    str(self.venv / "bin" / "label-studio"),
                    "start",
                    "--no-browser",
                    "--internal-host",
                    self.bind,
                    "--port",
                    str(self.port),
                ],
                env=self._env(data, self.port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self.url, TOKEN

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self, timeout: float) -> None:
        """Ready = /health says UP and the token is accepted. Label Studio silently moves to port+1 when its
        port was taken meanwhile, so the real port is read from its log."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"label-studio exited during start-up:\n{self.log.read_text()[-3000:]}")
            m = re.search(r"Starting development server at http://[^:]+:(\d+)/", self.log.read_text(errors="replace"))
            if m:
                self.port = int(m.group(1))
                with contextlib.suppress(requests.RequestException):
                    if "UP" in requests.get(f"{self.url}/health", timeout=5).text:
                        who = requests.get(
                            f"{self.url}/api/current-user/whoami",
                            timeout=5,
                            headers={"Authorization": f"Token {TOKEN}"},
                        )
                        if who.status_code == 200:
                            return
                        raise RuntimeError(f"Label Studio refused the test token: {who.status_code} {who.text[:200]}")
            time.sleep(0.3)
        raise RuntimeError(f"Label Studio not ready after {timeout:.0f} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM to its process group (runserver has a child), SIGKILL after 10 s; the data is deleted."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None
        shutil.rmtree(self.home / "data", ignore_errors=True)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
