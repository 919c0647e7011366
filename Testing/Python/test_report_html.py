"""The batch QC page: self-contained HTML, every case shown, sortable, checked in headless Chromium.

The page is built from ``predict``-format outputs written by the library's own writers from HC18
reference masks (a blurred mask as probability, its binary entropy as uncertainty), so the test
does not depend on a trained model.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import dataset_dir
from scipy.ndimage import gaussian_filter

from ConfidenceSegLib.contract import CLASS_TAG, Key
from ConfidenceSegLib.io.images import image_from_array, read_image, write_image
from ConfidenceSegLib.io.safe_files import write_text_atomic
from ConfidenceSegLib.io.segfile import write_segmentation
from ConfidenceSegLib.io.segments import Segment
from ConfidenceSegLib.outputs.overlay import read_layers
from ConfidenceSegLib.outputs.report import PredictionReport, report_json
from ConfidenceSegLib.outputs.report_html import ReportRow, review_page, thumbnails
from ConfidenceSegLib.outputs.review_table import review_order, rows_from_report
from ConfidenceSegLib.quality.verdict import ClassResult, Reason, Verdict

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
#: (case, predicted Dice, lower bound, badge); the expected review order is REVIEW by bound, then PASS.
CASES = [("hc18-000", 0.97, 0.91, "PASS"), ("hc18-002", 0.90, 0.62, "REVIEW"), ("hc18-005", 0.94, 0.85, "PASS"),
         ("hc18-007", 0.88, 0.75, "REVIEW")]
EXPECTED_ORDER = ["hc18-002", "hc18-007", "hc18-005", "hc18-000"]


def write_predict_outputs(folder: Path, case: str, image_path: Path, label_path: Path, dice: float,
                          bound: float, badge: str) -> PredictionReport:
    """``predict`` outputs of one case derived from its reference mask (the report written as ``predict`` does)."""
    image = read_image(image_path)
    reference = sitk.GetArrayFromImage(read_image(label_path)) > 0
    probability = gaussian_filter(reference.astype(np.float32), sigma=3 + 40 * (1 - dice))
    entropy = -(probability * np.log2(probability + 1e-7) + (1 - probability) * np.log2(1 - probability + 1e-7))
    write_segmentation(folder / f"{case}.seg.nrrd",
                       [Segment("fetal_head", probability > 0.5, tags={CLASS_TAG: "fetal_head"})], image)
    files = {}
    for kind, array in (("probability", probability), ("entropy", entropy), ("mutual_information", 0.3 * entropy)):
        files[kind] = f"{case}_fetal_head_{kind}.nrrd"
        write_image(image_from_array(array.astype(np.float32), image), folder / files[kind])
    verdict = Verdict(badge, dice, bound, (Reason("lower_bound_below_threshold" if badge == "REVIEW" else
                                                  "lower_bound_above_threshold", f"lower bound {bound:.2f}"),))
    report = PredictionReport(str(image_path), "reference-derived", "mcdropout", 8, "cpu",
                              {"fetal_head": ClassResult("fetal_head", True, {}, verdict, files=files)},
                              segmentation=f"{case}.seg.nrrd")
    write_text_atomic(folder / f"{case}.json", json.dumps(report_json(report), indent=2))
    return report


@pytest.fixture(scope="module")
def review_folder(tmp_path_factory) -> Path:
    """A folder with four cases' outputs and the index.html built from them."""
    hc18 = dataset_dir("hc18")
    folder = tmp_path_factory.mktemp("review")
    rows, pictures = [], {}
    for case, dice, bound, badge in CASES:
        report = write_predict_outputs(folder, case, hc18 / "images" / f"{case}.nrrd",
                                       hc18 / "labels" / f"{case}_fetal_head.nrrd", dice, bound, badge)
        rows += rows_from_report(case, report)
        image = read_image(hc18 / "images" / f"{case}.nrrd")
        for name, pair in thumbnails(image, read_layers(folder / f"{case}.json", image)).items():
            pictures[(case, name)] = pair
    rows.sort(key=review_order)
    page = review_page([ReportRow(row, *pictures[(row[Key.CASE], row[Key.CLASS])]) for row in rows],
                       title="ConfidenceSeg review: test", description="four HC18 cases")
    write_text_atomic(folder / "index.html", page)
    return folder


def row_cases(page: str) -> list[str]:
    return re.findall(r'<tr class="\w+"[^>]*data-case="([^"]+)"', page)


def test_page_is_self_contained_and_ordered_for_review(review_folder):
    page = (review_folder / "index.html").read_text(encoding="utf-8")
    assert row_cases(page) == EXPECTED_ORDER
    sources = re.findall(r'src="([^"]*)"', page)
    assert sorted({source.split(",")[0] for source in sources}) == ["data:image/jpeg;base64", "data:image/png;base64"]
    assert len(sources) == 2 * len(CASES)
    assert not re.search(r'(src|href)="(https?:)?//', page), "the page must not load anything from the network"
    assert page.count('class="pill" style="background:#e8710a">REVIEW') == 2


def test_names_are_escaped():
    png = b"\x89PNG"
    row = {"case": "<script>alert(1)</script>", "class": "a&b", "predicted_dice": None,
           "dice_lower_bound": None, "badge": None, "json": "x.json"}
    page = review_page([ReportRow(row, png, png)], title="t")
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page and "UNRATED" in page


def chromium_dom(url: str, tmp_path: Path) -> str:
    """The DOM after scripts ran, from headless Chromium (no network, throwaway profile)."""
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", url]
    result = subprocess.run(command, capture_output=True, encoding="utf-8", errors="replace", timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.skipif(not CHROMIUM.is_file(),
                    reason="headless Chromium not found (chromium on PATH or /usr/bin/chromium; "
                           "Debian: apt-get install chromium; .ci/run installs it)")
def test_chromium_shows_every_case_and_sorts(review_folder, tmp_path):
    url = (review_folder / "index.html").as_uri()
    dom = chromium_dom(url, tmp_path)
    assert row_cases(dom) == EXPECTED_ORDER
    for case, *_ in CASES:
        assert re.search(rf'<img src="data:image/jpeg;base64,[^"]+" alt="overlay of {case} fetal_head"', dom)
        assert f'alt="uncertainty heatmap of {case} fetal_head"' in dom
    by_case = chromium_dom(url + "#sort=case", tmp_path)
    assert 'data-sorted-by="case"' in by_case, "the sort script did not run"
    assert row_cases(by_case) == sorted(EXPECTED_ORDER)
    by_bound_descending = chromium_dom(url + "#sort=-bound", tmp_path)
    bounds = {case: bound for case, _, bound, _ in CASES}
    assert row_cases(by_bound_descending) == sorted(bounds, key=bounds.get, reverse=True)



def test_links_are_relative_url_encoded_paths_inside_the_folder():
    png = b"\x89PNG"
    row = {"case": "x", "class": "c", "predicted_dice": None, "dice_lower_bound": None, "badge": None,
           "segmentation": "javascript:alert(1);x.nrrd", "entropy": "sub dir/x #1?.nrrd", "json": "/etc/passwd"}
    hostile = ReportRow(row, png, png, overlay_link="../outside.png", scene_link="data:text/html,<b>x</b>.mrml")
    page = review_page([hostile], title="t")
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert 'href="./javascript%3Aalert%281%29%3Bx.nrrd"' in page
    assert "./sub%20dir/x%20%231%3F.nrrd" in hrefs and "./data%3Atext/html%2C%3Cb%3Ex%3C/b%3E.mrml" in hrefs
    assert all(href.startswith("./") and ":" not in href and ".." not in href for href in hrefs), hrefs
    assert len(hrefs) == 3, "a path leaving the folder (absolute or ..) gets no link"


@pytest.mark.skipif(not CHROMIUM.is_file(), reason="headless Chromium not found (chromium on PATH or /usr/bin)")
def test_the_page_fits_a_1400_pixel_window_with_its_colour_scale(review_folder):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto((review_folder / "index.html").as_uri())
            assert page.evaluate("document.documentElement.scrollWidth") <= 1400  # no column cut off
            links = page.locator("td.files a").all()
            assert links and all(link.bounding_box()["x"] + link.bounding_box()["width"] <= 1400 for link in links)
            scale = page.locator("th .scale").bounding_box()
            assert scale is not None and scale["width"] > 100  # the heatmap column's colour scale is drawn
        finally:
            browser.close()
