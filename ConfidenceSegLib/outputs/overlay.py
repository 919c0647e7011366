"""PNG pictures of a prediction: image, segmentation outline, entropy heatmap and quality badge.

The overlay shows the image in grey, the predictive entropy as a heatmap drawn as Slicer and the
review station draw it (Inferno over 0..1, transparent where the model is certain, below
``HEATMAP_DISPLAY_THRESHOLD``; bilinear between pixels), each class's outline in its segment colour
(``contract.segment_color``, as in the ``.seg.nrrd``), a scale bar in mm (images with spacing), and
below the image one line per class with its badge (green PASS, orange REVIEW, grey ABSENT or
unrated), predicted Dice, its lower bound, (unless PASS) the first reason and the headline
measurement with its interval; the band ends with the PASS threshold and an entropy colour bar
numbered 0-1. Multi-frame stacks assessed frame by frame show their worst frame; other volumes the
slice with the largest segmentation (the middle slice when nothing is segmented). Rendered with
matplotlib's Agg backend (no display needed, safe in threads).
"""

from __future__ import annotations

import io
import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from ..contract import HEATMAP_DISPLAY_THRESHOLD, HEATMAP_OPACITY, badge_color, badge_label, segment_color
from ..io.images import display_image, read_image
from ..io.safe_files import atomic_output
from ..io.segfile import read_segmentation
from ..quality.reasons import headline_measurement, verdict_words
from ..quality.verdict import ClassResult, Verdict
from .report import PredictionReport, read_report

DPI = 100


@dataclass
class OverlayLayer:
    """One class of a prediction as drawn: mask and entropy on the image grid, plus its verdict."""

    name: str
    mask: np.ndarray
    entropy: np.ndarray
    verdict: Verdict
    #: Frame to show for a stack (the worst frame of a slice-by-slice assessment), else chosen by area.
    frame: int | None = None
    #: Headline measurement in words (:func:`~ConfidenceSegLib.quality.reasons.measurement_words`).
    measurement: str = ""


def _layer(result: ClassResult, mask: np.ndarray, entropy: np.ndarray,
           frames: list[dict] | None) -> OverlayLayer:
    """One class's layer with its result (a stack: the frame its measurement is from)."""
    return OverlayLayer(result.name, mask, entropy, result.verdict, result.measured_frame if frames else None,
                        headline_measurement(result))


def layers_from_prediction(assessed) -> list[OverlayLayer]:
    """Overlay layers of an :class:`~ConfidenceSegLib.quality.assessed.AssessedPrediction` in memory."""
    return [_layer(result, assessed.maps(result.name).mask, assessed.maps(result.name).entropy, assessed.frames)
            for result in assessed.classes]


def overlay_options(report: PredictionReport) -> dict:
    """``render_overlay`` settings a report implies: the PASS threshold, and a scale bar only when the
    image has physical spacing."""
    return {"threshold": report.pass_threshold, "scale_bar": report.has_spacing}


def read_layers(json_path: str | os.PathLike, image: sitk.Image) -> list[OverlayLayer]:
    """The classes of a written ``predict`` report as overlay layers (masks from the .seg.nrrd, entropy map)."""
    report = read_report(json_path)
    segments = read_segmentation(report.folder / report.segmentation, image)
    layers = []
    for result in report.classes.values():
        masks = [s.mask for s in segments if (s.class_name or s.name) == result.name]
        mask = np.any(masks, axis=0) if masks else np.zeros(image.GetSize()[::-1], dtype=bool)
        entropy = sitk.GetArrayFromImage(read_image(report.folder / result.files["entropy"]))
        layers.append(_layer(result, mask, entropy, report.frames))
    return layers


def quality_text(layer: OverlayLayer) -> str:
    """``fetal_head: circumference 172.4 mm (169.8-175.1); predicted Dice 0.96, lower bound 0.91`` (then
    the reason unless PASS; see :func:`~ConfidenceSegLib.quality.reasons.verdict_words`): the
    measurement first, so that a long reason is what gets shortened on the picture."""
    words = verdict_words(layer.verdict)
    return f"{layer.name}: " + (f"{layer.measurement}; " if layer.measurement else "") + words


def display_slice(layers: Sequence[OverlayLayer], depth: int) -> int:
    """Slice of a stack/volume to show: the one with the most segmented pixels, else the middle."""
    areas = sum(np.asarray(layer.mask, dtype=bool).reshape(depth, -1).sum(axis=1) for layer in layers)
    areas = np.asarray(areas).reshape(-1) if len(layers) else np.zeros(depth)
    return int(np.argmax(areas)) if areas.any() else depth // 2


def _planes(image: sitk.Image, layers: Sequence[OverlayLayer]) -> tuple[np.ndarray, list[OverlayLayer], str]:
    """2D arrays to draw (image, per-layer mask/entropy) and a note naming the slice for 3D inputs."""
    array = sitk.GetArrayFromImage(display_image(image))
    if array.ndim == 2:
        return array, list(layers), ""
    chosen = [layer.frame for layer in layers if layer.frame is not None]
    index = chosen[0] if chosen else display_slice(layers, array.shape[0])
    planes = [OverlayLayer(layer.name, np.asarray(layer.mask)[index], np.asarray(layer.entropy)[index],
                           layer.verdict, index, layer.measurement) for layer in layers]
    return array[index], planes, f"slice {index + 1} of {array.shape[0]}"


def _display_range(array: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(array, [0.5, 99.5])
    return float(low), float(high if high > low else low + 1.0)


def _heatmap_rgba(entropy: np.ndarray) -> np.ndarray:
    """Entropy in [0, 1] (any shape) -> RGBA (shape + (4,)) as a Slicer slice layer draws it: Inferno, alpha
    HEATMAP_OPACITY from HEATMAP_DISPLAY_THRESHOLD up, transparent below."""
    values = np.clip(np.nan_to_num(entropy.astype(np.float32)), 0.0, 1.0)
    rgba = colormaps["inferno"](values)
    rgba[..., 3] = np.where(values >= HEATMAP_DISPLAY_THRESHOLD, HEATMAP_OPACITY, 0.0)
    return rgba


def render_overlay(image: sitk.Image, layers: Sequence[OverlayLayer], width: int = 800, title: str = "",
                   text: bool = True, heatmap_only: bool = False, palette: bool = False,
                   threshold: float | None = None, scale_bar: bool = True) -> bytes:
    """PNG bytes of the overlay, ``width`` pixels wide (text scales with it).

    ``threshold``: the PASS threshold, named in the band; ``scale_bar``: draw a bar in mm (off for
    images without physical spacing).
    ``text=False`` leaves out the badge band (thumbnails beside a table that shows the badge);
    ``heatmap_only`` draws the entropy on black with the outlines, without the image or text;
    ``palette`` stores 256 colours (about a third smaller: for thumbnails embedded in HTML).
    """
    text = text and not heatmap_only
    plane, planes, note = _planes(image, layers)
    spacing = image.GetSpacing()
    aspect = float(spacing[1] / spacing[0])
    image_height = width * plane.shape[0] * aspect / plane.shape[1]
    font = max(7.0, width / 60.0) * 72.0 / DPI  # points
    line = 2.2 * font * DPI / 72.0  # pixels per text line
    wrapped = [wrapped_lines(quality_text(layer), width, font) for layer in planes]  # never cut, wrapped
    band = 0.0 if not text else line * (sum(map(len, wrapped)) + (1 if title or note else 0)) + line * 0.4
    figure = Figure(figsize=(width / DPI, (image_height + band) / DPI), dpi=DPI, facecolor="#111318")
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_axes((0.0, band / (image_height + band), 1.0, image_height / (image_height + band)))
    axes.set_axis_off()
    extent = (-0.5, plane.shape[1] - 0.5, plane.shape[0] - 0.5, -0.5)
    if heatmap_only:
        entropy = np.max([p.entropy for p in planes], axis=0) if planes else np.zeros_like(plane)
        axes.imshow(entropy, cmap="inferno", vmin=0.0, vmax=1.0, aspect=aspect, extent=extent,
                    interpolation="nearest")
    else:
        low, high = _display_range(plane)
        axes.imshow(plane, cmap="gray", vmin=low, vmax=high, aspect=aspect, extent=extent)
        for layer in planes:
            axes.imshow(_heatmap_rgba(layer.entropy), aspect=aspect, extent=extent, interpolation="bilinear")
    outline_width = max(1.0, width / 400.0)
    for number, layer in enumerate(planes):
        mask = np.asarray(layer.mask, dtype=np.float32)
        if mask.any():
            axes.contour(mask, levels=[0.5], colors=[segment_color(number)],
                         linewidths=outline_width)
    axes.set_xlim(extent[0], extent[1])
    axes.set_ylim(extent[2], extent[3])
    if scale_bar and not heatmap_only:
        _draw_scale_bar(axes, plane.shape, spacing[0], aspect, font)
    if text:
        _draw_band(figure, canvas, planes, wrapped, (title, note), font, line, image_height + band, threshold)
    canvas.draw()
    picture = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3])
    buffer = io.BytesIO()
    (picture.quantize(256) if palette else picture).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _draw_scale_bar(axes, shape: Sequence[int], pixel_mm: float, aspect: float, font: float) -> None:
    """A white bar of a round length (about a fifth of the width) in the lower left corner, labelled in mm."""
    width_mm = shape[1] * pixel_mm
    length = max(v for v in (1, 2, 5, 10, 20, 50, 100, 200, 500) if v <= max(width_mm / 5, 1))
    pixels = length / pixel_mm
    x0, y0 = 0.04 * shape[1], shape[0] - 0.05 * shape[0]
    axes.plot([x0, x0 + pixels], [y0, y0], color="white", linewidth=max(2.0, font / 3), solid_capstyle="butt")
    axes.text(x0 + pixels / 2, y0 - 0.015 * shape[0] / aspect, f"{length} mm", color="white", fontsize=0.8 * font,
              ha="center", va="bottom", family="DejaVu Sans")


def wrapped_lines(text: str, width: int, font: float) -> list[str]:
    """``text`` wrapped at word boundaries to the band's width (``width`` px, ``font`` pt; the badge and swatch
    take the left): the reason is never cut."""
    characters = max(20, int((width * 0.8) / (0.6 * font * DPI / 72.0)))
    return textwrap.wrap(text, characters) or [""]


def _draw_band(figure: Figure, canvas: FigureCanvasAgg, planes: Sequence[OverlayLayer], wrapped: list[list[str]],
               notes: tuple[str, str], font: float, line: float, total_height: float, threshold: float | None) -> None:
    """The text band under the image: per class its badge and wrapped words, then the title and slice note."""
    renderer = canvas.get_renderer()
    margin = 0.5 * line / figure.bbox.width
    title, note = notes
    rows_below = sum(map(len, wrapped)) + (1 if title or note else 0)
    for row, (layer, lines) in enumerate(zip(planes, wrapped, strict=True)):
        y = (line * rows_below - 0.15 * line) / total_height
        badge = figure.text(margin, y, f" {badge_label(layer.verdict.badge)} ", color="white", fontsize=font,
                            fontweight="bold", family="DejaVu Sans", va="center",
                            bbox={"boxstyle": "round,pad=0.3", "facecolor": badge_color(layer.verdict.badge),
                                  "edgecolor": "none"})
        badge_right = badge.get_window_extent(renderer).x1 / figure.bbox.width
        swatch = segment_color(row)
        figure.text(badge_right + margin, y, "\u25a0", color=swatch, fontsize=font, va="center")
        for number, words in enumerate(lines):
            figure.text(badge_right + 2.6 * margin, y - number * line / total_height, words, color="#e8eaed",
                        fontsize=font, va="center")
        rows_below -= len(lines)
    rule = f"PASS: lower bound of the Dice ≥ {threshold:.2f}" if threshold is not None else ""
    footer = "   ".join(part for part in (title, note, rule) if part)
    if footer:
        figure.text(margin, 0.5 * line / total_height, footer, color="#9aa0a6", fontsize=0.85 * font, va="center")
    _draw_legend(figure, font, line, total_height)


def _draw_legend(figure: Figure, font: float, line: float, total_height: float) -> None:
    """The heatmap's colour bar at the right of the band: entropy 0 (certain, transparent) to 1."""
    width, height = 0.16, 0.35 * line / total_height
    left, bottom = 1.0 - width - 0.5 * line / figure.bbox.width, (0.3 * line) / total_height
    legend = figure.add_axes((left, bottom + 0.55 * line / total_height, width, height))
    legend.set_axis_off()
    ramp = np.linspace(0.0, 1.0, 256)[np.newaxis]
    legend.imshow(np.full((1, 256), 0.08), cmap="gray", vmin=0, vmax=1, aspect="auto")
    legend.imshow(_heatmap_rgba(ramp), aspect="auto")
    for fraction, label, align in ((0.0, "0", "left"), (0.5, "0.5", "center"), (1.0, "1", "right")):
        figure.text(left + fraction * width, bottom + 0.2 * line / total_height, label, color="#9aa0a6",
                    fontsize=0.75 * font, ha=align, va="center")
    figure.text(left - 0.01, bottom + 0.55 * line / total_height + height / 2, "uncertainty (entropy)",
                color="#9aa0a6", fontsize=0.75 * font, ha="right", va="center")


def write_overlay(path: str | os.PathLike, image: sitk.Image, layers: Sequence[OverlayLayer], overwrite: bool = False,
                  width: int = 800, title: str = "", **options) -> None:
    """Write the overlay PNG atomically; never clobbers an existing file without ``overwrite``.

    ``options``: :func:`render_overlay` settings, e.g. :func:`overlay_options` of the report."""
    png = render_overlay(image, layers, width=width, title=title, **options)
    with atomic_output(path, overwrite) as tmp:
        tmp.write_bytes(png)
