"""Headless Chromium, driven by Debian's ``chromium`` binary directly (no Python driver package): the status
page's browser test and ``scripts/status_screenshot.py`` share this command line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

CHROMIUM = Path(os.environ.get("BEAL_CHROMIUM", "/usr/bin/chromium"))


def run_chromium(
    binary: Path, profile: Path, *args: str, window: tuple[int, int] = (1280, 1800), timeout: float = 120
) -> subprocess.CompletedProcess:
    """One headless run (``--dump-dom URL``, ``--screenshot=PNG URL``, …); raises ``RuntimeError`` saying why
    when Chromium fails or hangs."""
    cmd = [
        str(binary),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--mute-audio",
        "--no-default-browser-check",
        f"--user-data-dir={profile}",
        f"--window-size={window[0]},{window[1]}",
        # anything but this machine is unreachable, so a page that needed external assets would show it
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        *args,
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(
            f"chromium did not finish within {timeout}s: {' '.join(cmd)}\n{str(exc.stderr or '')[-2000:]}"
        ) from None
    if done.returncode:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr[-3000:]}")
    return done
