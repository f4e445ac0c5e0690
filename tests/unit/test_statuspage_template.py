"""Issue #11: the status page from a Jinja2 template with its CSS in a file; the EC histogram over the data's range."""

from __future__ import annotations

import base64
import collections
import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from beal_backend.service import statuspage
from beal_backend.service.status import charts
from tests.unit.test_statuspage import EVIL, NOW, Page, full_project

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------- EC histogram


def bars(fig) -> list[float]:
    return [p.get_height() for p in fig.axes[0].patches]


def test_ec_histogram_spans_the_range_of_the_scores():
    # five scores within 0.40-0.44: a fixed 0-1 axis of 0.05 bins put all five into the one bin [0.40, 0.45)
    scores = (0.401, 0.411, 0.421, 0.431, 0.439)
    edges = charts.ec_edges(scores)
    assert len(edges) == 21 and edges[0] == pytest.approx(0.401) and edges[-1] == pytest.approx(0.439)
    fig = charts.ec_histogram(scores)
    # bin width 0.038 / 20 = 0.0019: the scores fall into bins 0, 5 (0.010/0.0019=5.3), 10, 15 and 19 (the last edge)
    heights = bars(fig)
    assert [i for i, h in enumerate(heights) if h] == [0, 5, 10, 15, 19]
    assert sum(heights) == 5
    assert fig.axes[0].get_xlim() == pytest.approx((0.401, 0.439))


@pytest.mark.parametrize(
    "value, lo, hi, nonzero_bin",
    [
        (0.5, 0.49, 0.51, 10),  # EC_MIN_SPAN = 0.02 centred on the value; 0.5 is edge 10
        (0.0, 0.0, 0.02, 0),  # kept inside [0, 1]
        (1.0, 0.98, 1.0, 19),  # the last bin includes its right edge
    ],
)
def test_ec_histogram_of_equal_scores_is_one_bar_on_a_narrow_axis(value, lo, hi, nonzero_bin):
    edges = charts.ec_edges((value,) * 4)
    assert (edges[0], edges[-1]) == (pytest.approx(lo), pytest.approx(hi))
    heights = bars(charts.ec_histogram((value,) * 4))
    assert [(i, h) for i, h in enumerate(heights) if h] == [(nonzero_bin, 4)]


# ---------------------------------------------------------------------------------------------- CSS and CSP


def test_the_inline_stylesheet_is_the_static_file_and_its_hash_is_in_the_policy():
    html = statuspage.render([full_project()], now=NOW)
    styles = re.findall(r"<style>(.*?)</style>", html, flags=re.DOTALL)
    css = (ROOT / "beal_backend/service/static/status.css").read_text()
    assert styles == [css]
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    policy = dict(d.strip().split(" ", 1) for d in statuspage.CONTENT_SECURITY_POLICY.split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["style-src"] == policy["style-src-elem"] == f"'sha256-{digest}'"
    assert "script-src" not in policy and "img-src" not in policy  # default-src 'none' covers them
    # matplotlib's SVG draws with style="" attributes and the progress bar sets its width
    assert policy["style-src-attr"] == "'unsafe-inline'" and 'style="width:40.0%"' in html


def test_the_page_comes_from_the_template_with_autoescape():
    env = statuspage._ENV
    assert env.autoescape is True and env.get_template("status.html").filename.endswith("templates/status.html")


def test_a_project_whose_data_cannot_be_prepared_is_an_escaped_error_card():
    class Hostile:
        def __str__(self):
            raise ValueError(EVIL)

    html = statuspage.render([full_project(title=Hostile()), full_project(project="8")], now=NOW)
    assert "could not render this project: ValueError: &lt;script&gt;" in html
    assert "<script" not in html.lower()
    assert Page(html).by_class("project") and 'data-project="8"' in html  # the other project still renders


# ---------------------------------------------------------------------------------------------- charts


def test_svg_ids_are_unique_when_the_same_cached_chart_appears_twice():
    html = statuspage.render([full_project(), full_project(project="8")], now=NOW)
    assert html.count("<svg") == 6
    ids = collections.Counter(re.findall(r'\bid="([^"]+)"', html))
    assert ids and max(ids.values()) == 1
    refs = set(re.findall(r"url\(#([^)]+)\)", html)) | set(re.findall(r'href="#([^"]+)"', html))
    assert refs and refs <= set(ids)  # every reference points at an id of this page


def test_a_chart_with_an_active_element_is_not_embedded():
    def linked(_):  # matplotlib wraps an artist with a url in <a xlink:href=...>
        fig = charts._figure()
        fig.add_subplot().plot([0, 1], [0, 1], url="javascript:alert(1)")
        return fig

    assert charts.chart(linked, "hostile", 1) is None
    assert charts.chart(lambda _: charts._figure(), "blank", 1).startswith("<svg")


# ---------------------------------------------------------------------------------------------- packaging


def test_the_wheel_ships_the_template_and_the_stylesheet(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "beal_backend", src / "beal_backend", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", src)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"beal_backend/service/templates/status.html", "beal_backend/service/static/status.css"} <= names
