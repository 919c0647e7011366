"""The browser review station, in a real headless Chromium driven by playwright.

A batch QC folder is made by ``confidenceseg review`` with the bundled model on two bundled
samples and a 3-frame stack; ``confidenceseg station`` serves it on a loopback port. The tests
check the list order, the slice view's pixels (image and heatmap where the entropy is high, the
image alone where it is low), the frame slider's badge, keyboard decisions in ``decisions.csv``
(two stations deciding at once lose nothing), the folder confinement and the token.
Set CONFIDENCESEG_SCREENSHOT_DIR to keep the page's screenshot (the README's picture).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.ndimage import binary_erosion, distance_transform_edt
from station_harness import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    SAMPLES,
    make_review_folder,
    running_station,
    screen_positions,
    steady_view_pixels,
    view_pixels,
    wait_for,
    write_stack,
)

from ConfidenceSegLib.contract import BADGE_PRIORITY, DECISIONS_CSV
from ConfidenceSegLib.io.segfile import read_segmentation
from ConfidenceSegLib.outputs.review_table import read_review_table

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed: "
                                     "pip install -e '.[test]' (the station tests drive a real browser)")
pytest.importorskip("trame_slicer", reason="the station extra is not installed: pip install -e '.[test]'")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not CHROMIUM.is_file(), reason="Chromium not found (chromium on PATH or /usr/bin/chromium; Debian: "
                                   "apt-get install chromium; .ci/run installs it)")]
PASS_CASE, REVIEW_CASE, STACK = "hc18-225", "hc18-110", "clip3"


@pytest.fixture(scope="module")
def review_folder(tmp_path_factory) -> Path:
    inputs = tmp_path_factory.mktemp("inputs")
    for case in (PASS_CASE, REVIEW_CASE):
        shutil.copy(SAMPLES / f"{case}.nrrd", inputs / f"{case}.nrrd")
    write_stack(SAMPLES / f"{PASS_CASE}.nrrd", inputs / f"{STACK}.nrrd")
    return make_review_folder(tmp_path_factory.mktemp("review") / "cohort", sorted(inputs.iterdir()))


@pytest.fixture
def folder_copy(review_folder, tmp_path) -> Path:
    """A copy of the review folder of one test's own (its decisions stay its own)."""
    return Path(shutil.copytree(review_folder, tmp_path / "cohort"))


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 900}, device_scale_factor=1)
    page.goto(url, wait_until="networkidle")
    page.locator(".case-key").first.wait_for(timeout=30_000)
    return page


def select(page, key: str) -> None:
    page.locator(".case-row", has_text=key).click()
    assert wait_for(lambda: page.locator(".case-row.v-list-item--active .case-key").inner_text() == key)


def decisions(folder: Path) -> list[dict]:
    path = folder / DECISIONS_CSV
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_list_is_in_review_order_with_badges_and_reasons(review_folder, browser):
    rows = read_review_table(review_folder)
    with running_station(review_folder) as url:
        page = open_page(browser, url)
        shown = page.locator(".case-key").all_inner_texts()
        badges = page.locator(".case-badge").all_inner_texts()
        page_text = page.locator("#case-list").inner_text()
        if directory := os.environ.get("CONFIDENCESEG_SCREENSHOT_DIR"):
            wait_for(lambda: (view_pixels(page).sum(axis=2) > 30).mean() > 0.3)
            page.screenshot(path=str(Path(directory) / "station.png"))
    assert shown == [f"{row.case}/{row.class_name}" for row in rows]
    assert len(shown) == 3 and badges[0] == "REVIEW" and "PASS" in badges, badges
    priorities = [BADGE_PRIORITY.get(None if badge == "unrated" else badge) for badge in badges]
    assert priorities == sorted(priorities), f"REVIEW first, then ABSENT, PASS, unrated: {badges}"
    for row in rows:
        assert row.reason and row.reason in page_text and row.measurement in page_text


def test_slice_view_shows_the_image_and_the_heatmap_where_entropy_is_high(review_folder, browser):
    report = json.loads((review_folder / f"{PASS_CASE}.json").read_text())
    image = sitk.ReadImage(report["input"])
    intensity = sitk.GetArrayFromImage(image).astype(float)
    entropy_file = report["classes"]["fetal_head"]["files"]["entropy"]
    entropy = sitk.GetArrayFromImage(sitk.ReadImage(str(review_folder / entropy_file)))
    mask = read_segmentation(review_folder / report["segmentation"], image)[0].mask
    high = binary_erosion(entropy > 0.5, iterations=1)
    far_from_heat = distance_transform_edt(entropy < 0.1) > 8
    far_from_outline = distance_transform_edt(~(mask ^ binary_erosion(mask))) > 8
    low = far_from_heat & far_from_outline & (intensity > 40)
    assert high.sum() > 50 and low.sum() > 500, "the case lacks clear high and low uncertainty areas"
    with running_station(review_folder) as url:
        page = open_page(browser, url)
        select(page, f"{PASS_CASE}/fetal_head")
        assert wait_for(lambda: (view_pixels(page).sum(axis=2) > 30).mean() > 0.3), "the view stays black"
        shown = steady_view_pixels(page).astype(int)
        page.keyboard.press("h")  # hide the heatmap
        assert wait_for(lambda: np.abs(view_pixels(page).astype(int) - shown).max() > 40), \
            "hiding the heatmap changed nothing in the view"
        hidden = steady_view_pixels(page).astype(int)
    rows_columns = {name: screen_positions(image, shown.shape[:2], np.argwhere(area)[:, ::-1])
                    for name, area in (("high", high), ("low", low))}
    change = {name: np.abs(shown - hidden).sum(axis=2)[tuple(rc.T)] for name, rc in rows_columns.items()}
    assert change["high"].mean() > 60, f"the heatmap barely shows where the entropy is high: {change['high'].mean()}"
    assert change["low"].mean() < 10, f"the heatmap shows where the entropy is low: {change['low'].mean()}"
    grey = hidden[tuple(rows_columns["low"].T)]
    assert np.abs(grey[:, 0] - grey[:, 2]).mean() < 4, "the image is not shown in grey where the entropy is low"
    correlation = np.corrcoef(grey.mean(axis=1), intensity[low])[0, 1]
    assert correlation > 0.8, f"the view does not show this image where expected (r = {correlation:.2f})"


def test_frame_slider_shows_that_frames_image_and_badge(review_folder, browser):
    frames = json.loads((review_folder / f"{STACK}.json").read_text())["frames"]
    with running_station(review_folder) as url:
        page = open_page(browser, url)
        select(page, f"{STACK}/fetal_head")
        page.keyboard.press("h")  # the image alone: frame 2 is frame 0 mirrored
        assert wait_for(lambda: (view_pixels(page).sum(axis=2) > 30).mean() > 0.3), "the view stays black"
        first = steady_view_pixels(page).astype(int)
        for frame in (1, 2):
            page.keyboard.press("ArrowRight")
            expected = frames[frame]["classes"]["fetal_head"]
            line = wait_for(lambda frame=frame: next((text for text in page.locator(".badge-line").all_inner_texts()
                                                      if text.startswith(f"frame {frame}: ")), None))
            assert line, f"no badge of frame {frame}: {page.locator('#badges').inner_text()}"
            assert f"fetal_head: {expected['badge']}" in line and f"{expected['predicted_dice']:.2f}" in line
        last = steady_view_pixels(page).astype(int)
    assert np.abs(last - first).mean() > 3 * np.abs(last - first[:, ::-1]).mean(), \
        "frame 2 (frame 0 mirrored) is not what the view shows after two steps"


def test_keyboard_decisions_land_in_decisions_csv_and_show_on_reopening(folder_copy, browser):
    first, second = (f"{row.case}/{row.class_name}" for row in read_review_table(folder_copy)[:2])
    with running_station(folder_copy) as url:
        page = open_page(browser, url)
        select(page, first)
        page.keyboard.press("n")
        page.locator("#note-dialog").wait_for()
        page.keyboard.type("rim unclear at 3 o'clock")
        page.keyboard.press("Enter")
        page.keyboard.press("c")  # needs correction, then on to the next case
        assert wait_for(lambda: len(decisions(folder_copy)) == 1)
        assert wait_for(lambda: page.locator(".case-row.v-list-item--active .case-key").inner_text() == second)
        page.keyboard.press("a")
        assert wait_for(lambda: len(decisions(folder_copy)) == 2)
    made = decisions(folder_copy)
    assert [(d["case"] + "/" + d["class"], d["decision"]) for d in made] == [(first, "needs_correction"),
                                                                              (second, "accept")]
    assert made[0]["note"] == "rim unclear at 3 o'clock" and made[1]["note"] == ""
    with running_station(folder_copy) as url:
        page = open_page(browser, url)
        texts = dict(zip(page.locator(".case-key").all_inner_texts(),
                         (row.inner_text() for row in page.locator(".case-row").all()), strict=True))
    assert "decision: needs correction (rim unclear at 3 o'clock)" in texts[first]
    assert "decision: accept" in texts[second]


def test_two_stations_deciding_at_once_lose_nothing(folder_copy, browser):
    keys = [f"{row.case}/{row.class_name}" for row in read_review_table(folder_copy)]
    with running_station(folder_copy) as url_a, running_station(folder_copy) as url_b:
        pages = [open_page(browser, url_a), open_page(browser, url_b)]
        for page, key in zip(pages, keys[:2], strict=True):
            select(page, key)
        for _ in range(3):  # both keep deciding (each decision moves on to the next case)
            for page, letter in zip(pages, "ar", strict=True):
                page.keyboard.press(letter)
        assert wait_for(lambda: len(decisions(folder_copy)) == 6, timeout_s=30), decisions(folder_copy)
    made = decisions(folder_copy)
    assert sorted(d["decision"] for d in made) == ["accept"] * 3 + ["reject"] * 3
    assert {d["case"] + "/" + d["class"] for d in made} <= set(keys)


def test_two_tabs_of_one_station_deciding_at_once_lose_nothing(folder_copy, browser):
    with running_station(folder_copy) as url:
        tabs = [open_page(browser, url), open_page(browser, url)]  # one shared view (one trame state)
        for letter in "arac":
            for tab in tabs:
                tab.keyboard.press(letter)
        assert wait_for(lambda: len(decisions(folder_copy)) == 8, timeout_s=30), decisions(folder_copy)
    assert sorted(d["decision"] for d in decisions(folder_copy)) == sorted(
        ["accept"] * 4 + ["reject"] * 2 + ["needs_correction"] * 2)


def http_status(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status, response.read(2000).decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read(2000).decode("utf-8", "replace")


def test_only_files_inside_the_review_folder_can_be_fetched(folder_copy):
    (folder_copy / "outside.txt").symlink_to("/etc/passwd")
    with running_station(folder_copy) as url:
        root = url.rstrip("/")
        assert http_status(f"{root}/files/review.csv")[0] == 200
        for path in ("files/%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd", "files/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
                     "files/outside.txt", "files/%2Fetc%2Fpasswd"):
            status, body = http_status(f"{root}/{path}")
            assert status in (403, 404) and "root:" not in body, (path, status)


def test_a_station_with_a_token_refuses_requests_without_it(folder_copy, browser):
    token = "a-long-enough-test-token-0123"
    with running_station(folder_copy, "--token", token) as url:
        assert url.endswith(f"?token={token}")
        root = url.split("?")[0].rstrip("/")
        for wrong in (f"{root}/index.html", f"{root}/index.html?token=wrong-token-0123456789",
                      f"{root}/files/review.csv", f"{root}/ws"):
            assert http_status(wrong)[0] == 403, wrong
        assert http_status(f"{root}/files/review.csv?token={token}")[0] == 200
        page = open_page(browser, url)  # the token in the URL, then its cookie, carry the page and its websocket
        assert len(page.locator(".case-key").all_inner_texts()) == 3
