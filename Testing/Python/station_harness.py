"""Helpers of the review-station tests: a batch QC folder, a running station, a browser, a view's pixels."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from conftest import REPO_ROOT

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SAMPLES = REPO_ROOT / "Resources" / "SampleData"
STARTUP_TIMEOUT_S = 90


def write_stack(source: Path, path: Path) -> Path:
    """A 3-frame stack (the image, shifted, mirrored) on ``source``'s pixel grid, 1 mm between frames."""
    image = sitk.ReadImage(str(source))
    array = sitk.GetArrayFromImage(image)
    frames = np.stack([array, np.roll(array, 25, axis=1), array[:, ::-1]])
    stack = sitk.GetImageFromArray(frames)
    stack.SetSpacing((*image.GetSpacing(), 1.0))
    sitk.WriteImage(stack, str(path))
    return path


def write_png_and_dicom(source: Path, folder: Path) -> tuple[Path, Path]:
    """``source`` as an 8-bit PNG (no spacing) and as a one-slice DICOM series folder, in ``folder``."""
    image = sitk.Cast(sitk.RescaleIntensity(sitk.ReadImage(str(source)), 0, 255), sitk.sitkUInt8)
    png, series = folder / f"{source.stem}.png", folder / f"{source.stem}-dicom"
    sitk.WriteImage(image, str(png))
    series.mkdir()
    dicom = sitk.Cast(image, sitk.sitkInt16)
    for tag, value in (("0020|000e", "1.2.826.0.1.3680043.2.1125.1"), ("0020|0013", "1"), ("0008|0060", "US")):
        dicom.SetMetaData(tag, value)
    sitk.WriteImage(dicom, str(series / "slice0.dcm"))
    return png, series


def make_review_folder(folder: Path, inputs: list[Path]) -> Path:
    """``confidenceseg review`` of ``inputs`` with the bundled model, as a user would run it."""
    command = [sys.executable, "-m", "ConfidenceSegLib", "review", "--model", "fetal_head", "--inputs",
               *map(str, inputs), "--out", str(folder)]
    result = subprocess.run(command, capture_output=True, encoding="utf-8", errors="replace", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


@contextmanager
def running_station(folder: Path, *options: str):
    """``confidenceseg station --review folder`` on a free loopback port; yields its printed URL."""
    command = [sys.executable, "-m", "ConfidenceSegLib", "station", "--review", str(folder), "--port", "0", *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, encoding="utf-8",
                               errors="replace", env=dict(os.environ, PYTHONUNBUFFERED="1"))
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    output, url, deadline = [], None, time.monotonic() + STARTUP_TIMEOUT_S
    try:
        while url is None and time.monotonic() < deadline and process.poll() is None:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            output.append(line)
            if "Review station for" in line:
                url = line.split(": ", 1)[1].strip()
        assert url, "the station did not start:\n" + "".join(output)[-3000:]
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def station_root(url: str) -> str:
    """``http://HOST:PORT`` of a station's printed URL."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def station_token(url: str) -> str:
    """The token in a station's printed URL."""
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["token"][0]


def http_status(url: str, headers: dict | None = None) -> tuple[int, str]:
    """Status and the first characters of the body of a GET of ``url``."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read(2000).decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read(2000).decode("utf-8", "replace")


def wait_for(condition, timeout_s: float = 20.0, interval_s: float = 0.2):
    """Poll ``condition()`` until it returns an array or a true value (returned) or ``timeout_s`` passes (None)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if isinstance(value, np.ndarray) or value:
            return value
        time.sleep(interval_s)
    return None


def view_pixels(page) -> np.ndarray:
    """The slice view as the browser shows it: (H, W, 3) uint8 RGB."""
    import io

    from PIL import Image

    png = page.locator(".layout-grid-item img.image-display-area").first.screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def steady_view_pixels(page, timeout_s: float = 20.0) -> np.ndarray | None:
    """The view once two screenshots in a row agree (rendering has settled); None if it never settles."""
    previous = [view_pixels(page)]

    def settled():
        current = view_pixels(page)
        same = current.shape == previous[0].shape and np.array_equal(current, previous[0])
        previous[0] = current
        return current if same else None

    return wait_for(settled, timeout_s, interval_s=0.5)


def screen_positions(image: sitk.Image, view_shape: tuple[int, int], ij: np.ndarray) -> np.ndarray:
    """Where pixels ``ij`` ((N, 2): column i, row j) of a 2D image land in a slice view of ``view_shape``
    (H, W) fitted to it, as Slicer fits a slice to its background volume (whole image, centred, aspect
    kept; i to the right, j down for an axial LPS image): (N, 2) integer (row, column) of the view."""
    height, width = view_shape
    columns, rows = image.GetSize()[:2]
    spacing_i, spacing_j = image.GetSpacing()[:2]
    scale = min(width / (columns * spacing_i), height / (rows * spacing_j))  # view pixels per mm
    x = width / 2 + (ij[:, 0] - (columns - 1) / 2) * spacing_i * scale
    y = height / 2 + (ij[:, 1] - (rows - 1) / 2) * spacing_j * scale
    return np.stack([np.clip(np.round(y), 0, height - 1), np.clip(np.round(x), 0, width - 1)], axis=1).astype(int)
