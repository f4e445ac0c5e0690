"""The status page: the learning-to-stop rule on hand-made version lists, and render()'s HTML contract."""

from __future__ import annotations

import collections
import re
from html.parser import HTMLParser

import pytest

from beal_backend.service.statuspage import render, stop_hint

NOW = 1_777_000_000.0


def versions(*points, statuses=None):
    """(n_annotations, micro_f1, mean_ec) points -> version dicts, oldest first."""
    out = []
    for i, (n, f1, ec) in enumerate(points):
        out.append(
            {
                "version": f"beal-v{i}",
                "created_at": f"2026-04-2{i % 10}T10:00:00+00:00",
                "n_annotations": n,
                "val_micro_f1": f1,
                "val_macro_f1": None if f1 is None else f1 - 0.1,
                "mean_ec": ec,
                "status": (statuses or {}).get(i, "current" if i == len(points) - 1 else "promoted"),
                "reason": "ok",
            }
        )
    return out


class Page(HTMLParser):
    def __init__(self, text):
        super().__init__()
        self.tags, self.attrs, self.text = [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]

    def handle_data(self, data):
        self.text.append(data)

    def by_class(self, name):
        return [{k: v} for t, k, v in self.attrs if k == "class" and name in (v or "").split()]


# ---------------------------------------------------------------------------------------------- stop_hint


def test_flat_f1_and_flat_ec_is_stopped():
    vs = versions((50, 0.70, 0.600), (100, 0.80, 0.700), (150, 0.803, 0.702), (200, 0.806, 0.703), (250, 0.805, 0.705))
    hint = stop_hint(vs)
    assert set(hint) == {"stopped", "reason"}
    assert hint["stopped"] is True, hint
    assert "over the last 3 versions" in hint["reason"]


def test_rising_f1_is_not_stopped():
    vs = versions((50, 0.60, 0.70), (100, 0.65, 0.70), (150, 0.67, 0.70), (200, 0.69, 0.70))
    hint = stop_hint(vs)
    assert hint == {"stopped": False, "reason": hint["reason"]}
    assert "still rising" in hint["reason"] and "+0.09" in hint["reason"] and "last 3 versions" in hint["reason"]


def test_too_few_versions_is_not_stopped():
    vs = versions((50, 0.80, 0.70), (100, 0.80, 0.70), (150, 0.80, 0.70))
    hint = stop_hint(vs)
    assert hint["stopped"] is False and "not enough versions" in hint["reason"]
    assert stop_hint([])["stopped"] is False
    assert stop_hint(None)["stopped"] is False


def test_flat_f1_but_ec_still_moving_is_not_stopped():
    vs = versions((50, 0.80, 0.50), (100, 0.801, 0.55), (150, 0.802, 0.60), (200, 0.803, 0.65))
    hint = stop_hint(vs)
    assert hint["stopped"] is False and "still moving" in hint["reason"], hint


def test_f1_falling_counts_as_not_improving():
    vs = versions((50, 0.82, 0.70), (100, 0.81, 0.70), (150, 0.80, 0.701), (200, 0.79, 0.701))
    assert stop_hint(vs)["stopped"] is True


def test_rejected_candidates_and_versions_without_metrics_do_not_count():
    flat = [(50, 0.80, 0.70), (100, 0.80, 0.70), (150, 0.80, 0.70)]
    # three accepted + one rejected: still too few accepted versions
    vs = versions(*flat, (200, 0.80, 0.70), statuses={3: "rejected"})
    assert "not enough versions" in stop_hint(vs)["reason"]
    # a version without held-out metrics (too few annotations for a held-out slice) is not a point
    vs = versions((20, None, 0.7), *flat)
    assert "not enough versions" in stop_hint(vs)["reason"]
    # a rejected candidate with a high F1 does not make the curve rise
    vs = versions(*flat, (175, 0.95, 0.70), (200, 0.801, 0.70), statuses={3: "rejected"})
    assert stop_hint(vs)["stopped"] is True


def test_unknown_pool_ec_is_not_stopped():
    vs = versions((50, 0.80, 0.70), (100, 0.80, 0.70), (150, 0.80, 0.70), (200, 0.80, None))
    hint = stop_hint(vs)
    assert hint["stopped"] is False and "EC" in hint["reason"]


def test_window_and_tolerances_are_parameters():
    vs = versions((50, 0.70, 0.70), (100, 0.80, 0.70), (150, 0.805, 0.70))
    assert stop_hint(vs, window=1)["stopped"] is True
    assert stop_hint(vs, window=2)["stopped"] is False  # +0.105 over the last 2
    assert stop_hint(vs, window=2, f1_tol=0.2)["stopped"] is True
    vs = versions((50, 0.80, 0.70), (100, 0.80, 0.71), (150, 0.80, 0.72), (200, 0.80, 0.73))
    assert stop_hint(vs)["stopped"] is False and stop_hint(vs, ec_tol=0.05)["stopped"] is True


# ---------------------------------------------------------------------------------------------- render

EVIL = "<script>alert('x')</script>"


def full_project(**over):
    vs = versions(
        (50, 0.70, 0.60),
        (100, 0.78, 0.66),
        (150, 0.79, 0.67),
        (200, 0.75, 0.67),
        (250, 0.80, 0.68),
        statuses={3: "rejected"},
    )
    p = {
        "project": "7",
        "title": "Tickets",
        "current_version": vs[-1]["version"],
        "pending": True,
        "current_job": {
            "id": "j1",
            "state": "started",
            "stage": "training",
            "progress": 0.4,
            "started_at": NOW - 60,
            "updated_at": NOW - 2,
        },
        "last_job": {"id": "j0", "state": "failed", "error": "boom", "updated_at": NOW - 600},
        "versions": vs,
        "label_counts": {"a": 10, "b": 4},
        "ec_scores": [i / 50 for i in range(50)],
        "job_log": [{"time": NOW - 60, "id": "j1", "state": "started", "message": "retraining"}],
    }
    p.update(over)
    return p


def test_render_is_a_full_document_with_meta_refresh():
    html = render([full_project()], refresh_seconds=7, now=NOW)
    assert html.lstrip().lower().startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert '<meta http-equiv="refresh" content="7">' in html
    assert '<meta http-equiv="refresh" content="10">' in render([], now=NOW)
    assert "beal-backend status" in html and "2026-04-24 03:06:40 UTC" in html  # generated time from `now`


def test_render_escapes_user_content():
    evil_img = '"><img src=x onerror=alert(1)>'
    p = full_project(
        project=evil_img,
        title=EVIL,
        current_version=EVIL,
        label_counts={EVIL: 3, "$x^2$ and $": 2, "ok": 1},
        current_job={"id": EVIL, "state": "failed", "stage": EVIL, "error": EVIL, "progress": "0.5"},
        last_job={"id": EVIL, "state": EVIL, "error": EVIL},
        job_log=[{"time": NOW, "id": EVIL, "state": EVIL, "message": EVIL}],
    )
    p["versions"][0].update(version=EVIL, reason=EVIL, status=EVIL, created_at=EVIL)
    html = render([p], now=NOW)
    assert "<script" not in html.lower() and "<img" not in html.lower()
    page = Page(html)
    assert "script" not in page.tags and "img" not in page.tags
    text = "".join(page.text)
    assert EVIL in text and "$x^2$ and $" in text  # shown literally (the label chart has math parsing off)
    assert len(list(page.by_class("chart"))) == 3


def test_no_external_references():
    html = render([full_project(), full_project(project="8", pending=False)], now=NOW)
    page = Page(html)
    for tag, key, value in page.attrs:
        if key in ("src", "href", "xlink:href", "action", "srcset", "poster", "data"):
            assert not re.match(r"\s*(https?:)?//", value or "", re.I), (tag, key, value)
        assert not re.search(r"https?://", value or "", re.I) or key == "content", (tag, key, value)
    assert not {"script", "link", "iframe", "img", "object", "embed"} & set(page.tags)
    assert "@import" not in html and "url(http" not in html
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html  # the SVG prolog is stripped


def test_charts_progress_bar_and_hint_are_in_the_page():
    html = render([full_project()], now=NOW)
    assert html.count("<svg") == 3
    for label in ("learning curve", "label frequency", "distribution of EC/H_J"):
        assert f'aria-label="{label}' in html
    assert 'role="progressbar"' in html and 'aria-valuenow="40"' in html and "width:40.0%" in html
    assert '<span class="badge pending">retrain pending</span>' in html  # the project's header badge
    assert "retrain pending" not in render([full_project(pending=False)], now=NOW)
    assert 'data-stopped="false"' in html
    # svg ids are unique across the page (several charts share one document)
    ids = collections.Counter(re.findall(r'\bid="([^"]+)"', html))
    assert ids and max(ids.values()) == 1


@pytest.mark.parametrize(
    "counts, shown",
    [
        (
            (4, 10, 300),
            "4 annotation changes not trained yet; next round after 6 more or 5 min without any",
        ),
        ((1, 10, 90), "1 annotation change not trained yet; next round after 9 more or 90 s without any"),
        ((9, 10, 0), "9 annotation changes not trained yet; next round after 1 more"),
        (
            (3, 10, 7200),
            "3 annotation changes not trained yet; next round after 7 more or 2.0 h without any",
        ),
    ],
)
def test_the_card_says_what_is_untrained_and_what_starts_the_next_round(counts, shown):
    n, every, idle = counts
    card = full_project(annotations_since_training=n, train_every=every, train_idle_seconds=idle, pending=False)
    assert re.findall(r'<span class="muted small untrained">(.*?)</span>', render([card], now=NOW)) == [f"· {shown}"]
    queued = render([{**card, "pending": True}], now=NOW)
    assert f"· {n} annotation change" in queued and "a round is queued and will read them</span>" in queued
    assert 'class="muted small untrained"' not in render([full_project(annotations_since_training=0)], now=NOW)


def test_flat_project_shows_the_amber_stop_hint():
    vs = versions((50, 0.80, 0.70), (100, 0.80, 0.70), (150, 0.801, 0.70), (200, 0.802, 0.701))
    html = render([full_project(versions=vs)], now=NOW)
    assert 'data-stopped="true"' in html and "hint stop" in html and "stopped improving" in html


def test_empty_state_explains_how_to_connect():
    html = render([], now=NOW)
    assert "No projects yet" in html and "Connect model" in html and "Settings → Model" in html
    assert "<svg" not in html
    assert "No projects yet" in render(None, now=NOW)


@pytest.mark.parametrize(
    "project",
    [
        {"project": "3"},
        {},
        dict.fromkeys(
            (
                "project",
                "title",
                "current_version",
                "pending",
                "current_job",
                "last_job",
                "versions",
                "label_counts",
                "ec_scores",
                "job_log",
            )
        ),
        {
            "project": 4,
            "versions": [{"status": "current"}, None, "junk", {"val_micro_f1": float("nan")}],
            "label_counts": {"a": None, "b": "x", "c": -1},
            "ec_scores": [None, "x", float("inf"), 2.0],
            "current_job": {"state": None, "progress": float("nan")},
            "job_log": [None, {"time": "soon"}],
        },
        {
            "project": "5",
            "current_job": {"state": "started", "progress": 7},
            "pending": True,
            "versions": [{"n_annotations": 10, "val_micro_f1": 0.5, "status": "rejected"}],
            "ec_scores": [0.5],
        },
    ],
)
def test_project_missing_or_odd_keys_renders(project):
    html = render([project], now=NOW)
    assert "<article" in html and "could not render" not in html and "chart unavailable" not in html
    assert "No projects yet" not in html


def test_no_figure_leaks_and_no_pyplot_state():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    for i in range(3):
        render([full_project(ec_scores=[i / 10, 0.5])], now=NOW)
    assert plt.get_fignums() == before


def test_a_failed_round_says_when_the_queue_tries_it_again():
    """Issue 21.1: the card shows the failure and when its retry is due (2026-04-24 03:08:10 UTC is NOW + 90 s)."""
    failed = {"id": "j2", "state": "failed", "error": "LabelStudioError: HTTP 502", "retry_at": NOW + 90}
    html = render([full_project(current_job=failed)], now=NOW)
    assert "LabelStudioError: HTTP 502" in html
    assert "next try 2026-04-24 03:08:10 UTC (in 90 s)" in html
    last_try = render([full_project(current_job={**failed, "retry_at": None})], now=NOW)
    assert "LabelStudioError: HTTP 502" in last_try and "next try" not in last_try
