"""Screenshot of the live status page after a few real training rounds (docs/status-page-live.png).

Starts a real Label Studio (tests/e2e/label_studio.py), the service in embedded mode (tests/e2e/backend.py), imports
goemotions texts, annotates them in steps with a training round after each, then opens /status in
headless Chromium. About 3 minutes on 2 CPU cores.

    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python scripts/status_screenshot.py [--out docs/status-page-live.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser import CHROMIUM, run_chromium  # noqa: E402
from tests.e2e.backend import Backend  # noqa: E402
from tests.e2e.helpers import LS, make_project, rows  # noqa: E402
from tests.e2e.label_studio import LabelStudio  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "status-page-live.png"))
    ap.add_argument("--steps", default="12,24,36,48,60,72")
    args = ap.parse_args()
    server = LabelStudio(instance="beal-screenshot")
    label_studio = server.start()
    with tempfile.TemporaryDirectory() as tmp:
        api = None
        try:
            api = Backend(  # embedded mode: no worker
                label_studio,
                Path(tmp),
                "",
                TRAIN_EVERY=100000,
                TRAIN_IDLE_SECONDS=0,  # rounds only from the script's Start Training
                EPOCHS=3,
                MC_PASSES=20,
                VAL_FRACTION=0.25,
                MIN_VAL=3,
                LOG_LEVEL="WARNING",
            )
            backend = api.url
            ls = LS(*label_studio)
            data = rows(160)
            project, tasks = make_project(ls, data, title="GoEmotions sample")
            ml = ls("POST", "/api/ml", json={"project": project, "url": backend, "title": "beal"})
            done = 0
            for step in map(int, args.steps.split(",")):
                for task, row in zip(tasks[done:step], data[done:step]):
                    ls.annotate(task["id"], row["labels"])
                done = step
                ls("POST", f"/api/ml/{ml['id']}/train")
                while True:
                    st = requests.get(backend + "/jobs", timeout=5).json()[str(project)]
                    if not st["pending"] and (st["current_job"] or {}).get("state") in ("finished", "failed"):
                        break
                    time.sleep(1)
                print(f"{step} annotations: {st['current_job'].get('outcome')} {st['model_version']}", flush=True)
            page = requests.get(backend + "/status", timeout=60)
            assert page.status_code == 200, page.text[:500]
            run_chromium(
                CHROMIUM, Path(tmp) / "chromium", f"--screenshot={args.out}", backend + "/status", window=(1280, 1700)
            )
            print(f"wrote {args.out}")
        finally:
            if api is not None:
                api.stop()
            server.stop()


if __name__ == "__main__":
    main()
