"""Reports that render offline: the Data Docs and the `dvc plots` page carry no CDN asset and show their
content as static HTML and PNG (checked in headless Chromium with the network blocked, where installed);
`make plots` outside a run says so in one line; the Prefect `ckd-data-docs` artifact is a link."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ckd.quality import ScoreExpectations, check_teacher_outputs
from ckd.reports import OFFLINE_MARK, offline_data_docs, render_spec_png
from tests.helpers import PROJECT

DVC = str(Path(sys.executable).with_name("dvc"))
# an asset a page would fetch (scripts, stylesheets, images); plain <a href> links to websites are not assets
EXTERNAL_ASSET = re.compile(
    r"<script[^>]*src=\"https?://|<link[^>]*stylesheet[^>]*href=\"https?://|<link[^>]*href=\"https?://[^>]*stylesheet"
    r"|<img[^>]*src=\"https?://",
    re.I,
)


@pytest.fixture(scope="module")
def data_docs(tmp_path_factory):
    docs = tmp_path_factory.mktemp("reports") / "data_docs"
    ids = np.arange(12)
    scores = np.random.default_rng(0).normal(size=(12, 3))
    spec = ScoreExpectations(expected_rows=12, budget=20, pool_ids=np.arange(40), num_classes=3, probabilities=False)
    check_teacher_outputs(ids, scores, spec, "q.npz", docs_dir=docs)
    return docs


def test_data_docs_are_static_and_self_contained(data_docs):
    pages = sorted(data_docs.rglob("*.html"))
    assert len(pages) >= 3  # index, the suite, one validation
    for page in pages:
        text = page.read_text()
        assert OFFLINE_MARK in text and not EXTERNAL_ASSET.search(text), page
        for src in re.findall(r"<img[^>]*src=\"([^\"]+)\"", text):  # the logo comes from the site's own folder
            assert (page.parent / src).is_file(), (page, src)
    index = (data_docs / "index.html").read_text()
    rows = re.findall(r"<tbody>(.*?)</tbody>", index, re.S)
    assert len(rows) == 2 and all("<tr>" in r for r in rows)  # validations and suites, filled without JavaScript
    assert ">Success</a></td>" in rows[0]  # the status icon (a CDN font) as GX's own word for it
    links = re.findall(r"<td><a href=\"([^\"]+)\"", index)
    assert links and all((data_docs / link).is_file() for link in links)
    assert any("validations/" in link for link in links) and "expectations/teacher_outputs.html" in links
    assert offline_data_docs(data_docs) == []  # idempotent: a page already rewritten is left alone


def _plots_project(root: Path) -> Path:
    """A DVC project with the real dvc.yaml's `plots:` and two short training curves."""
    root.mkdir()
    shutil.copy(PROJECT / "dvc.yaml", root / "dvc.yaml")
    curves = root / "metrics" / "train" / "plots" / "metrics"
    for part, name in [("val", "accuracy"), ("test", "accuracy"), ("train", "loss"), ("val", "xent")]:
        (curves / part).mkdir(parents=True, exist_ok=True)
        values = np.linspace(0.5, 0.9 if part == "val" else 0.8, 6) if name == "accuracy" else np.linspace(2.0, 0.4, 6)
        lines = [f"step\t{name}"] + [f"{50 * (i + 1)}\t{v:.3f}" for i, v in enumerate(values)]
        (curves / part / f"{name}.tsv").write_text("\n".join(lines) + "\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([DVC, "init", "-q"], cwd=root, check=True)
    return root


def _non_blank(png: Path) -> float:
    """The share of pixels that are not the background colour."""
    import matplotlib.image

    pixels = matplotlib.image.imread(png)[..., :3]
    background = pixels[0, 0]
    return float(np.mean(np.any(np.abs(pixels - background) > 0.05, axis=-1)))


@pytest.mark.slow
def test_plots_page_is_static_pngs(tmp_path):
    root = _plots_project(tmp_path / "p")
    done = subprocess.run([sys.executable, "-m", "ckd.reports", "plots"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("ckd plots: dvc_plots/index.html (2 charts drawn")
    page = (root / "dvc_plots" / "index.html").read_text()
    assert OFFLINE_MARK in page and not EXTERNAL_ASSET.search(page) and "vegaEmbed" not in page
    for name in ("accuracy", "loss"):
        png = root / "dvc_plots" / "static" / f"{name}.png"
        assert f'src="static/{name}.png"' in page and _non_blank(png) > 0.01


def test_a_dvc_spec_is_drawn_one_line_per_revision_and_file(tmp_path):
    rows = [
        {"step": str(s), "dvc_inferred_y_value": str(v), "rev": "workspace", "filename::field": f}
        for f, v0 in [("train/loss.tsv::loss", 2.0), ("val/xent.tsv::xent", 1.0)]
        for s, v in [(50, v0), (100, v0 / 2)]
    ]
    spec = {
        "data": {"values": rows + [{"step": "150", "dvc_inferred_y_value": "NaN?", "rev": "workspace"}]},
        "encoding": {"x": {"field": "step", "title": "Adam step"}, "strokeDash": {"field": "filename::field"}},
        "layer": [{"encoding": {"y": {"field": "dvc_inferred_y_value", "title": "loss"}, "color": {"field": "rev"}}}],
    }
    assert render_spec_png(spec, tmp_path / "loss.png") == 2 and _non_blank(tmp_path / "loss.png") > 0.01
    assert render_spec_png({"data": {"values": rows}, "mark": "bar"}, tmp_path / "none.png") == 0
    assert not (tmp_path / "none.png").exists()


def test_make_plots_with_nothing_to_plot_is_one_line(tmp_path):
    root = tmp_path / "fresh"
    root.mkdir()
    for item in ("Makefile", "dvc.yaml"):
        shutil.copy(PROJECT / item, root / item)
    done = subprocess.run(
        ["make", "-s", "plots", "VENV=no-such-venv", f"PYTHON={sys.executable}"],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONPATH": str(PROJECT)},
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.splitlines() == [
        "ckd plots: nothing to plot yet: no training curves (metrics/train/plots); run `make run` first"
    ]


def _chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


@pytest.mark.slow
@pytest.mark.skipif(
    _chromium() is None, reason="no headless browser: `make install-test` installs Debian's chromium (root + apt-get)"
)
def test_pages_render_in_a_headless_browser_with_no_network(data_docs, tmp_path):
    """Screenshots in Chromium with every network request sent to a closed port: the Data Docs index shows
    its tables (not a blank page) and the plots page its charts."""
    root = _plots_project(tmp_path / "p")
    subprocess.run([sys.executable, "-m", "ckd.reports", "plots"], cwd=root, check=True, capture_output=True)
    for page, shot in [
        (data_docs / "index.html", tmp_path / "docs.png"),
        (root / "dvc_plots" / "index.html", tmp_path / "plots.png"),
    ]:
        subprocess.run(
            [
                _chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--proxy-server=http://127.0.0.1:9",  # nothing listens there: no request leaves the machine
                "--window-size=1200,900",
                f"--screenshot={shot}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )
        assert _non_blank(shot) > 0.01, page


def test_data_docs_artifact_is_a_link(tmp_path, prefect_harness):
    """`create_link_artifact` (Prefect stores a link artifact as markdown holding exactly one link)."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.pipeline import publish_artifacts

    index = tmp_path / "reports" / "data_docs" / "index.html"
    index.parent.mkdir(parents=True)
    index.write_text("<html></html>")
    shutil.copy(PROJECT / "dvc.yaml", tmp_path / "dvc.yaml")
    flow(publish_artifacts.fn, name="publish")({"check": {"success": 1}}, str(tmp_path))
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["ckd-data-docs"])))
    # other tests of the session's Prefect server publish the same key: this run's artifact is among them
    assert f"[Great Expectations Data Docs]({index.resolve().as_uri()})" in [artifact.data for artifact in found]
