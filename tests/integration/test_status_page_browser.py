"""The status page in a real headless Chromium: served over HTTP from 127.0.0.1, rendered, screenshotted.

The browser is driven by Debian's ``chromium`` binary directly (no Python driver package): one
``--dump-dom`` run returns the DOM the browser built from the page (so the assertions see what Chromium
parsed, e.g. inline <svg> elements in the SVG namespace), and one ``--screenshot`` run paints it at
1280x1800.  The screenshot goes to ``tmp_path``, or to ``docs/status-page.png`` when
``BEAL_WRITE_SCREENSHOT=1``.

If ``/usr/bin/chromium`` is missing, the session fixture installs it with apt (as root); if that is not
possible the test fails with a message saying how to install it.  It never skips silently.
"""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest

from beal_backend.service import statuspage
from tests.browser import CHROMIUM, run_chromium

DOCS_PNG = Path(__file__).resolve().parents[2] / "docs" / "status-page.png"
NOW = 1_777_000_000.0  # a fixed clock: 2026-04-24 03:06:40 UTC
WINDOW = (1280, 1800)


# ---------------------------------------------------------------------------------------------- sample data


def _version(i, n, micro, macro, ec, status, reason):
    return {
        "version": f"beal-20260424T{i:02d}0000-{'%08x' % (0x1A2B3C4D + 97 * i)}",
        "created_at": f"2026-04-24T{i:02d}:00:00+00:00",
        "n_annotations": n,
        "val_micro_f1": micro,
        "val_macro_f1": macro,
        "mean_ec": ec,
        "status": status,
        "reason": reason,
    }


def sample_projects() -> list[dict]:
    """Two projects: one still learning with a job running at 40%, one that has plateaued."""
    learning = [
        _version(1, 20, 0.41, 0.30, 0.520, "promoted", "first model of the project"),
        _version(2, 40, 0.55, 0.43, 0.585, "promoted", "not worse than beal-…01 beyond 0.02 (micro +0.14)"),
        _version(3, 60, 0.49, 0.40, 0.590, "rejected", "worse than beal-…02 by more than 0.02: micro 0.49 < 0.55"),
        _version(4, 80, 0.63, 0.52, 0.640, "promoted", "not worse than beal-…02 beyond 0.02 (micro +0.08)"),
        _version(5, 100, 0.68, 0.58, 0.671, "promoted", "not worse than beal-…04 beyond 0.02 (micro +0.05)"),
        _version(6, 120, 0.72, 0.63, 0.702, "current", "not worse than beal-…05 beyond 0.02 (micro +0.04)"),
    ]
    plateau = [
        _version(1, 50, 0.62, 0.48, 0.700, "promoted", "first model of the project"),
        _version(2, 100, 0.809, 0.69, 0.799, "promoted", "not worse than beal-…01 beyond 0.02"),
        _version(3, 150, 0.812, 0.70, 0.801, "promoted", "not worse than beal-…02 beyond 0.02"),
        _version(4, 200, 0.815, 0.71, 0.805, "promoted", "not worse than beal-…03 beyond 0.02"),
        _version(5, 250, 0.790, 0.69, 0.806, "rejected", "worse than beal-…04 by more than 0.02: micro 0.790 < 0.815"),
        _version(6, 300, 0.818, 0.715, 0.808, "current", "not worse than beal-…04 beyond 0.02"),
    ]
    import random

    rng = random.Random(7)
    pool_a = [min(1.0, max(0.0, rng.betavariate(4, 2.2))) for _ in range(600)]
    pool_b = [min(1.0, max(0.0, rng.betavariate(8, 2))) for _ in range(350)]
    return [
        {
            "project": "7",
            "title": "Support tickets <triage> & routing",
            "current_version": learning[-1]["version"],
            "pending": True,
            "current_job": {
                "id": "job-7-0007",
                "state": "started",
                "stage": "training (epoch 2/5)",
                "progress": 0.4,
                "error": None,
                "version": None,
                "started_at": NOW - 95,
                "updated_at": NOW - 3,
            },
            "last_job": {
                "id": "job-7-0006",
                "state": "finished",
                "stage": "done",
                "progress": 1.0,
                "version": learning[-1]["version"],
                "started_at": NOW - 3700,
                "updated_at": NOW - 3600,
            },
            "versions": learning,
            "label_counts": {
                "billing": 58,
                "bug": 44,
                "account": 31,
                "feature request": 22,
                "spam": 9,
                "<script>alert(1)</script>": 2,
            },
            "ec_scores": pool_a,
            "job_log": [
                {"time": NOW - 95, "id": "job-7-0007", "state": "started", "message": "20 new annotations: retraining"},
                {
                    "time": NOW - 3600,
                    "id": "job-7-0006",
                    "state": "finished",
                    "message": f"promoted {learning[-1]['version']}; 600 tasks rescored",
                },
                {
                    "time": NOW - 7300,
                    "id": "job-7-0005",
                    "state": "finished",
                    "message": f"promoted {learning[-2]['version']}; 620 tasks rescored",
                },
                {
                    "time": NOW - 10900,
                    "id": "job-7-0004",
                    "state": "failed",
                    "message": (
                        "the worker stopped during the job (killed or crashed); the previous version keeps serving"
                    ),
                },
            ],
        },
        {
            "project": "12",
            "title": "News topics",
            "current_version": plateau[-1]["version"],
            "pending": False,
            "current_job": {
                "id": "job-12-0006",
                "state": "finished",
                "stage": "done",
                "progress": 1.0,
                "version": plateau[-1]["version"],
                "started_at": NOW - 1900,
                "updated_at": NOW - 1800,
            },
            "last_job": None,
            "versions": plateau,
            "label_counts": {
                "politics": 120,
                "sports": 96,
                "economy": 71,
                "science": 40,
                "culture": 33,
                "health": 25,
                "travel": 8,
            },
            "ec_scores": pool_b,
            "job_log": [
                {
                    "time": NOW - 1800,
                    "id": "job-12-0006",
                    "state": "finished",
                    "message": f"promoted {plateau[-1]['version']}; 350 tasks rescored",
                },
                {
                    "time": NOW - 5400,
                    "id": "job-12-0005",
                    "state": "finished",
                    "message": "rejected candidate: worse than the current version",
                },
            ],
        },
    ]


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium; installed with apt if missing (needs root and the Debian archive), else a clear failure."""
    if not CHROMIUM.exists() and os.environ.get("BEAL_CHROMIUM") is None:
        apt = shutil.which("apt-get")
        if apt and os.geteuid() == 0:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            for cmd in ([apt, "update"], [apt, "install", "-y", "--no-install-recommends", "chromium"]):
                done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
                if done.returncode:
                    pytest.fail(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: this browser test needs Debian's Chromium "
            "(`apt-get install -y chromium`), or BEAL_CHROMIUM=/path/to/chromium"
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def page_url():
    """The rendered sample page served by http.server on 127.0.0.1 (an ephemeral port), like GET /status."""
    page = statuspage.render(sample_projects(), refresh_seconds=10, now=NOW).encode("utf-8")
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            if self.path.split("?")[0] != "/status":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            # the policy GET /status sends: Chromium enforces it, so a blocked style shows in the screenshot
            self.send_header("Content-Security-Policy", statuspage.CONTENT_SECURITY_POLICY)
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/status", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class DomSummary(HTMLParser):
    """What the assertions need from the browser's serialised DOM."""

    def __init__(self):
        super().__init__()
        self.svgs, self.progress, self.hints, self.cards, self.tags = [], [], [], [], []
        self._hint_depth, self._hint_text = 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        self.tags.append(tag)
        if tag == "svg":
            self.svgs.append(a)
        if "progress" in classes and a.get("role") == "progressbar":
            self.progress.append(a)
        if "project" in classes and tag == "article":
            self.cards.append(a.get("data-project"))
        if "hint" in classes:
            self.hints.append(a)
            self._hint_depth, self._hint_text = 1, []
        elif self._hint_depth:
            self._hint_depth += 1

    def handle_endtag(self, tag):
        if self._hint_depth:
            self._hint_depth -= 1
            if not self._hint_depth:
                self.hints[-1]["text"] = " ".join("".join(self._hint_text).split())

    def handle_data(self, data):
        if self._hint_depth:
            self._hint_text.append(data)


# ---------------------------------------------------------------------------------------------- the test


def test_status_page_in_headless_chromium(chromium, page_url, tmp_path):
    url, requests = page_url

    dom_run = run_chromium(chromium, tmp_path / "profile-dom", "--dump-dom", url, window=WINDOW)
    dom = DomSummary()
    dom.feed(dom_run.stdout)

    assert dom.cards == ["7", "12"], dom_run.stdout[:2000]
    # the running job of project 7 at 40%, the finished one of project 12 full
    bars = {a.get("aria-valuenow") for a in dom.progress}
    assert "40" in bars and "100" in bars, dom.progress
    running = [a for a in dom.progress if "running" in a.get("class", "").split()]
    assert running and running[0]["aria-valuenow"] == "40"
    # charts: learning curve, label frequency and EC histogram for each project, parsed as inline SVG
    charts = [a for a in dom.svgs if "chart" in (a.get("class") or "").split()]
    assert len(charts) == 6, [a.get("aria-label") for a in dom.svgs]
    assert {a.get("aria-label") for a in charts} >= {
        "learning curve: held-out F1 against annotations",
        "label frequency in the annotations",
        "distribution of EC/H_J over the unlabeled tasks",
    }
    assert all(a.get("viewbox") for a in charts)  # scales with its box
    # the stop hint: project 7 still learning (green), project 12 plateaued (amber)
    assert [h.get("data-stopped") for h in dom.hints] == ["false", "true"], dom.hints
    assert "go" in dom.hints[0]["class"].split() and "micro-F1 still rising" in dom.hints[0]["text"]
    assert "stop" in dom.hints[1]["class"].split() and "stopped improving" in dom.hints[1]["text"]
    # no scripts at all (the malicious label stayed text) and the page refreshes itself
    assert "script" not in dom.tags
    assert '<meta http-equiv="refresh" content="10">' in dom_run.stdout

    target = DOCS_PNG if os.environ.get("BEAL_WRITE_SCREENSHOT") == "1" else tmp_path / "status-page.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    run_chromium(chromium, tmp_path / "profile-shot", f"--screenshot={target}", url, window=WINDOW)
    assert target.is_file() and target.stat().st_size > 20_000

    from PIL import Image

    with Image.open(target) as img:
        assert img.size == WINDOW
        rgb = img.convert("RGB")
        colors = {c for _, c in rgb.getcolors(maxcolors=1 << 20)}
    # painted, not blank: the running progress fill (#2563eb, striped) and the amber stop-hint border (#d97706)
    assert (0x25, 0x63, 0xEB) in colors
    assert (0xD9, 0x77, 0x06) in colors
    # the page background comes only from status.css (the <style> the CSP allows by its hash), the label
    # bars' green only from the SVG's style attributes (style-src-attr)
    assert (0xF3, 0xF4, 0xF6) in colors and (0x0F, 0x9D, 0x76) in colors
    # the browser asked this server for the page and nothing else it could not serve
    assert requests and all(r.split("?")[0] in ("/status", "/favicon.ico") for r in requests), requests
