"""The browser review station, in a real headless Chromium driven by playwright.

A batch QC folder is made by ``confidenceseg review`` with the bundled model on two bundled
samples and a 3-frame stack; ``confidenceseg station`` serves it on a loopback port. The tests
check the list order, the slice view's pixels (image and heatmap where the entropy is high, the
image alone where it is low), the frame slider's badge, keyboard decisions in ``decisions.csv``
(two stations deciding at once lose nothing; a decision goes only to the case on screen, none to a
case that cannot be shown), a PNG input, the folder confinement, the token, its throttle, the
origin and host checks and the per-run websocket secret.
Set CONFIDENCESEG_SCREENSHOT_DIR to keep the page's screenshot (the README's picture).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.ndimage import binary_erosion, distance_transform_edt
from station_harness import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    SAMPLES,
    http_status,
    make_review_folder,
    running_station,
    screen_positions,
    station_root,
    station_token,
    steady_view_pixels,
    view_pixels,
    wait_for,
    write_png_and_dicom,
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


def select(page, key: str, shown: bool = True) -> None:
    """Click ``key``'s row; wait until it is selected and (``shown``) the view shows it."""
    page.locator(".case-row", has_text=key).click()
    assert wait_for(lambda: page.locator(".case-row.v-list-item--active .case-key").inner_text() == key)
    assert not shown or wait_for(lambda: shown_case(page) == key), f"{key} is not shown"


def shown_case(page) -> str:
    """The case the page says its view shows."""
    return page.locator("#shown-case").inner_text().strip()


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
    report = json.loads((review_folder / f"{PASS_CASE}.json").read_text(encoding="utf-8"))
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
    frames = json.loads((review_folder / f"{STACK}.json").read_text(encoding="utf-8"))["frames"]
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
        assert wait_for(lambda: shown_case(page) == second)  # a decision goes to the case on screen only
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
        for round_ in range(3):  # both decide at once, each on the case it shows (then on to the next one)
            before = [shown_case(page) for page in pages]
            for page, letter in zip(pages, "ar", strict=True):
                page.keyboard.press(letter)
            assert wait_for(lambda round_=round_: len(decisions(folder_copy)) == 2 * round_ + 2), decisions(folder_copy)
            for page, key in zip(pages, before, strict=True):
                wait_for(lambda page=page, key=key: shown_case(page) not in (key, "") or key == keys[-1])
    made = decisions(folder_copy)
    assert sorted(d["decision"] for d in made) == ["accept"] * 3 + ["reject"] * 3
    assert {d["case"] + "/" + d["class"] for d in made} <= set(keys)


def test_a_tab_still_showing_the_previous_case_decides_nothing(folder_copy, browser):
    """Two tabs share one view; tab B does not yet see that tab A's decision moved the view on (its
    websocket messages are held back): B's key press names the case B shows, which is not the view's."""
    keys = [f"{row.case}/{row.class_name}" for row in read_review_table(folder_copy)]
    held, holding, sockets = [], [False], []

    def hold_messages(socket):
        sockets.append(socket)
        server = socket.connect_to_server()
        server.on_message(lambda message: held.append(message) if holding[0] else socket.send(message))

    with running_station(folder_copy) as url:
        tab_a = open_page(browser, url)
        tab_b = browser.new_page(viewport={"width": 1400, "height": 900})
        tab_b.route_web_socket("**/ws", hold_messages)
        tab_b.goto(url, wait_until="networkidle")
        assert wait_for(lambda: shown_case(tab_a) == shown_case(tab_b) == keys[0], timeout_s=30)
        holding[0] = True
        tab_a.keyboard.press("a")
        assert wait_for(lambda: shown_case(tab_a) == keys[1]) and len(decisions(folder_copy)) == 1
        assert shown_case(tab_b) == keys[0]
        tab_b.keyboard.press("r")  # tab B still shows keys[0]: its decision names keys[0]
        text = wait_for(lambda: "no decision recorded" in tab_a.locator("#message").inner_text()
                        and tab_a.locator("#message").inner_text())
        assert text and keys[0] in text and keys[1] in text, text
        holding[0] = False
        for message in held:
            sockets[-1].send(message)
        assert wait_for(lambda: shown_case(tab_b) == keys[1])
    made = decisions(folder_copy)
    assert [(d["case"] + "/" + d["class"], d["decision"]) for d in made] == [(keys[0], "accept")]


def test_a_case_that_cannot_be_shown_says_so_and_takes_no_decision(folder_copy, browser):
    broken = folder_copy / f"{PASS_CASE}.json"
    report = json.loads(broken.read_text(encoding="utf-8"))
    (folder_copy.parent / "corrupt.nrrd").write_bytes(b"NRRD0004\ntype: nonsense\n\n\x00\x01")
    report["input"] = str(folder_copy.parent / "corrupt.nrrd")
    broken.write_text(json.dumps(report))
    key = f"{PASS_CASE}/fetal_head"
    with running_station(folder_copy) as url:
        page = open_page(browser, url)
        assert wait_for(lambda: (view_pixels(page).sum(axis=2) > 30).mean() > 0.3), "the first case is not shown"
        select(page, key, shown=False)
        error = page.locator("#view-error")
        error.wait_for(timeout=20_000)
        assert "cannot show" in error.inner_text() and PASS_CASE in error.inner_text()
        assert all(button.is_disabled() for button in page.locator(".decision-button").all())
        for letter in "acr":
            page.keyboard.press(letter)
        assert wait_for(lambda: "no decision recorded" in page.locator("#message").inner_text())
        time.sleep(1)
        page.evaluate("document.getElementById('view-error').style.display = 'none'")
        hidden = steady_view_pixels(page)
        assert hidden is not None and (hidden.sum(axis=2) > 30).mean() < 0.01, "the previous case's image stays"
    assert not (folder_copy / DECISIONS_CSV).exists()


def test_png_and_dicom_series_inputs_are_shown_and_take_decisions(tmp_path, browser):
    png, series = write_png_and_dicom(SAMPLES / "hc18-012.nrrd", tmp_path)
    folder = make_review_folder(tmp_path / "review", [png, series])
    with running_station(folder) as url:
        page = open_page(browser, url)
        for key in (f"{png.stem}/fetal_head", f"{series.name}/fetal_head"):
            select(page, key)
            assert wait_for(lambda: (view_pixels(page).sum(axis=2) > 30).mean() > 0.3), f"{key} is not shown"
            assert page.locator("#view-error").count() == 0
            page.keyboard.press("a")
            assert wait_for(lambda key=key: key.split("/")[0] in [d["case"] for d in decisions(folder)]), key
    assert sorted((d["case"], d["decision"]) for d in decisions(folder)) == [(png.stem, "accept"),
                                                                            (series.name, "accept")]


def test_only_files_inside_the_review_folder_can_be_fetched(folder_copy):
    (folder_copy / "outside.txt").symlink_to("/etc/passwd")
    with running_station(folder_copy) as url:
        root, token = station_root(url), station_token(url)
        assert http_status(f"{root}/files/review.csv?token={token}")[0] == 200
        for path in ("files/%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd", "files/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
                     "files/outside.txt", "files/%2Fetc%2Fpasswd"):
            status, body = http_status(f"{root}/{path}?token={token}")
            assert status in (403, 404) and "root:" not in body, (path, status)


def test_the_token_is_always_required_and_other_sites_are_refused(folder_copy, browser):
    with running_station(folder_copy) as url:  # on loopback too: a generated token, in the URL
        root, generated = station_root(url), station_token(url)
        assert len(generated) >= 43 and url.startswith("http://127.0.0.1:")
        assert http_status(f"{root}/files/review.csv")[0] == 403
    token = "a-long-enough-test-token+0123/="
    with running_station(folder_copy, "--token", token) as url:
        assert url.endswith(f"?token={urllib.parse.quote(token, safe='')}") and station_token(url) == token
        root, port, query = station_root(url), url.split(":")[2].split("/")[0], f"?token={urllib.parse.quote(token)}"
        for wrong in (f"{root}/index.html", f"{root}/index.html?token=wrong-token-0123456789",
                      f"{root}/files/review.csv", f"{root}/ws"):
            assert http_status(wrong)[0] == 403, wrong
        assert http_status(f"{root}/files/review.csv{query}")[0] == 200
        for origin in (root, f"http://localhost:{port}"):
            assert http_status(f"{root}/files/review.csv{query}", {"Origin": origin})[0] == 200, origin
        for origin in ("http://evil.example", f"http://evil.example:{port}", "null", f"https://127.0.0.1:{port}"):
            assert http_status(f"{root}/files/review.csv{query}", {"Origin": origin})[0] == 403, origin
            assert http_status(f"{root}/ws{query}", {"Origin": origin})[0] == 403, origin
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1:1"):  # DNS rebinding
            assert http_status(f"{root}/files/review.csv{query}", {"Host": host})[0] == 403, host
        assert http_status(f"{root}/files/review.csv{query}", {"Host": f"localhost:{port}"})[0] == 200
        page = open_page(browser, url)  # the token in the URL, then its cookie, carry the page and its websocket
        assert len(page.locator(".case-key").all_inner_texts()) == 3
        # wslink's public default secret opens no websocket: the page connects with this run's secret only
        public = browser.new_page()
        public.goto(f"{root}/index.html{query}&secret=wslink-secret", wait_until="networkidle")
        time.sleep(3)
        assert public.locator(".case-key").count() == 0


def test_wrong_tokens_are_throttled(folder_copy):
    with running_station(folder_copy) as url:
        root, token = station_root(url), station_token(url)
        statuses = [http_status(f"{root}/files/review.csv?token=wrong-{n:02d}-xxxxxxxxxxxxxxxx")[0] for n in range(8)]
        assert statuses[:5] == [403] * 5 and statuses[5:] == [429] * 3, statuses
        assert http_status(f"{root}/files/review.csv?token={token}")[0] == 429  # locked out: even the right one
        assert wait_for(lambda: http_status(f"{root}/files/review.csv?token={token}")[0] == 200, timeout_s=15,
                        interval_s=1)
        repeated = [http_status(f"{root}/files/review.csv?token=stale-token-xxxxxxxxxxxxxx")[0] for _ in range(8)]
        assert repeated == [403] * 8, "the same wrong token (a stale cookie) again is not a new guess"
