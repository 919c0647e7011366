"""Self-contained HTML page for batch quality control (``index.html`` of ``confidenceseg review``).

One table row per case and class: overlay (JPEG) and heatmap (PNG, with its colour scale in the column
header) thumbnails embedded in base64, the
badge in its colour, predicted Dice, its lower bound and links to the case's files. Columns sort
on click with a few lines of inline JavaScript; ``index.html#sort=COLUMN`` (or ``#sort=-COLUMN``
for descending) opens the page sorted. No external resources: it works offline in any browser.
"""

from __future__ import annotations

import base64
import html
import io
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from matplotlib import colormaps
from matplotlib.colors import to_hex
from PIL import Image

from ..contract import BADGE_PRIORITY, REVIEW, Key, badge_color, badge_label
from .overlay import OverlayLayer, render_overlay

#: How to open a case where it can be corrected (the page itself only links the files).
OPEN_IN_SLICER = ("To open a case in 3D Slicer: ConfidenceSeg module &gt; Review, choose this folder and click the "
                  "case's row (its image, segmentation, heatmap and badge load together); or drag the case's "
                  "<em>Slicer scene</em> (<code>.mrml</code>, under Files) onto Slicer. In a browser, drawn by "
                  "Slicer's own slice view: <code>confidenceseg station --review THIS_FOLDER</code> and open the "
                  "URL it prints. Opening never modifies these files; decisions go to <code>decisions.csv</code>.")
#: Width in pixels of the thumbnails embedded in the page.
THUMBNAIL_WIDTH = 240
THUMBNAIL_JPEG_QUALITY = 85


@dataclass
class ReportRow:
    """One case and class: the review.csv values (paths relative to the page) and two thumbnails."""

    values: dict
    #: JPEG (the image under the outline compresses several times better than as PNG) or PNG bytes.
    overlay_picture: bytes
    #: PNG bytes (flat colours on transparency).
    heatmap_picture: bytes
    overlay_link: str = ""
    scene_link: str = ""


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #202124;
       background: #f8f9fa; }
h1 { font-size: 22px; margin: 0 0 4px; }
.meta { color: #5f6368; margin: 0 0 16px; font-size: 14px; }
.counts span { display: inline-block; margin-right: 14px; }
table { border-collapse: collapse; background: white; box-shadow: 0 1px 3px rgba(0,0,0,.15); }
th, td { padding: 6px 10px; border-bottom: 1px solid #e0e0e0; text-align: left; vertical-align: middle;
         font-size: 14px; }
th { background: #202124; color: white; position: sticky; top: 0; white-space: nowrap; }
th.sortable { cursor: pointer; user-select: none; }
th.sortable::after { content: " \\2195"; color: #9aa0a6; }
th[aria-sort="ascending"]::after { content: " \\25b2"; color: white; }
th[aria-sort="descending"]::after { content: " \\25bc"; color: white; }
td.name, td.files { white-space: nowrap; }
td.files a { display: block; }
td.num { font-variant-numeric: tabular-nums; text-align: right; }
td img { display: block; border-radius: 3px; width: min(240px, 15vw); height: auto; }
.scale { height: 8px; margin-top: 4px; border-radius: 2px; background: linear-gradient(to right, INFERNO_STOPS); }
.scale-labels { display: flex; justify-content: space-between; font-size: 11px; font-weight: 400; }
.reason { color: #5f6368; font-size: 12px; max-width: 220px; margin-top: 4px; white-space: normal; }
.measurement { color: #202124; font-size: 12px; margin-top: 2px; white-space: nowrap; }
.pill { display: inline-block; color: white; font-weight: 700; padding: 3px 9px; border-radius: 10px;
         font-size: 12px; letter-spacing: .04em; }
tr.REVIEW td:first-child { box-shadow: inset 4px 0 REVIEW_COLOR; }
a { color: #1a73e8; }
.failures { color: #b00020; }
h2.failures { font-size: 16px; margin: 12px 0 4px; }
"""

SCRIPT = """
(function () {
  var table = document.getElementById("review");
  var headers = table.querySelectorAll("th.sortable");
  function sortBy(key, descending) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var header = table.querySelector('th[data-key="' + key + '"]');
    if (!header) { return; }
    var numeric = header.dataset.type === "number";
    rows.sort(function (a, b) {
      var x = a.dataset[key], y = b.dataset[key];
      if (numeric) {
        x = x === "" ? Infinity : parseFloat(x);
        y = y === "" ? Infinity : parseFloat(y);
      }
      var order = x < y ? -1 : x > y ? 1 : Number(a.dataset.rank) - Number(b.dataset.rank);
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
    table.dataset.sortedBy = (descending ? "-" : "") + key;
  }
  headers.forEach(function (header) {
    header.addEventListener("click", function () {
      var descending = header.getAttribute("aria-sort") === "ascending";
      sortBy(header.dataset.key, descending);
      history.replaceState(null, "", "#sort=" + (descending ? "-" : "") + header.dataset.key);
    });
  });
  var match = /sort=(-?)(\\w+)/.exec(location.hash);
  if (match) { sortBy(match[2], match[1] === "-"); }
})();
"""

#: The heatmap thumbnails' colour scale (inferno, entropy 0 to 1) as CSS gradient stops, and its legend.
INFERNO_STOPS = ", ".join(to_hex(colormaps["inferno"](value)) for value in np.linspace(0.0, 1.0, 6))
HEATMAP_SCALE = ('<div class="scale" title="entropy from 0 (certain) to 1 (most uncertain)"></div>'
                 '<div class="scale-labels"><span>0</span><span>entropy</span><span>1</span></div>')

#: Sortable columns: (data key, header, type).
COLUMNS = (("priority", "Badge", "number"), ("case", "Case", "text"), ("class", "Class", "text"),
           ("dice", "Predicted Dice", "number"), ("bound", "Lower bound", "number"))


def thumbnails(image: sitk.Image, layers: Sequence[OverlayLayer]) -> dict[str, tuple[bytes, bytes]]:
    """Per class: (overlay as JPEG, heatmap as PNG) thumbnails for the page."""
    return {layer.name: (as_jpeg(render_overlay(image, [layer], width=THUMBNAIL_WIDTH, text=False, scale_bar=False)),
                         render_overlay(image, [layer], width=THUMBNAIL_WIDTH, heatmap_only=True, palette=True))
            for layer in layers}


def as_jpeg(png: bytes) -> bytes:
    """A PNG picture as JPEG (quality :data:`THUMBNAIL_JPEG_QUALITY`): about a third of the bytes for an image."""
    output = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(output, "JPEG", quality=THUMBNAIL_JPEG_QUALITY, optimize=True)
    return output.getvalue()


def _data_uri(picture: bytes) -> str:
    kind = "jpeg" if picture.startswith(b"\xff\xd8") else "png"
    return f"data:image/{kind};base64," + base64.b64encode(picture).decode("ascii")


def _number(value) -> str:
    return "" if value is None or value == "" else f"{float(value):.3f}"


def folder_href(path) -> str | None:
    """A link to ``path`` (relative, inside the page's folder) as ``./seg/ments`` each URL-encoded, so that
    no name can become a ``javascript:`` or other scheme link; None for a path that leaves the folder."""
    parts = str(path or "").replace("\\", "/").split("/")
    if not parts[0] or any(part in ("", ".", "..") for part in parts):
        return None
    return "./" + "/".join(urllib.parse.quote(part, safe="") for part in parts)


def _link(path, label: str, title: str = "") -> str:
    href = folder_href(path)
    if href is None:
        return ""
    return f'<a href="{html.escape(href)}"' + (f' title="{html.escape(title)}"' if title else "") + f">{label}</a>"


def _row_html(rank: int, row: ReportRow) -> str:
    values = row.values
    badge = values.get(Key.BADGE) or None
    case, class_name = str(values[Key.CASE]), str(values[Key.CLASS])
    text = html.escape
    attributes = {"rank": rank, "priority": BADGE_PRIORITY.get(badge, len(BADGE_PRIORITY)), "case": case,
                  "class": class_name, "dice": _number(values.get(Key.PREDICTED_DICE)),
                  "bound": _number(values.get(Key.DICE_LOWER_BOUND))}
    data = " ".join(f'data-{key}="{text(str(value))}"' for key, value in attributes.items())
    files = ((Key.SEGMENTATION, "segmentation"), ("entropy", "entropy"), (Key.JSON, "report"))
    links = "".join(_link(values.get(key), label) for key, label in files)
    links += _link(row.scene_link, "Slicer scene", "open in 3D Slicer (drag onto Slicer)")
    label = f"{case} {class_name}"
    thumbnail = f'<img src="{_data_uri(row.overlay_picture)}" alt="overlay of {text(label)}" title="{text(label)}">'
    if folder_href(row.overlay_link):
        thumbnail = _link(row.overlay_link, thumbnail)
    return (
        f'<tr class="{text(badge_label(badge))}" {data}>'
        f'<td class="num">{rank + 1}</td>'
        f'<td><span class="pill" style="background:{badge_color(badge)}">'
        f'{text(badge_label(badge))}</span><div class="reason">{text(str(values.get(Key.REASON) or ""))}</div>'
        f'<div class="measurement">{text(str(values.get(Key.MEASUREMENT) or ""))}</div>'
        f'<div class="reason">{text(str(values.get(Key.FRAMES) or ""))}</div></td>'
        f'<td class="name">{text(case)}</td><td class="name">{text(class_name)}</td>'
        f"<td>{thumbnail}</td>"
        f'<td><img src="{_data_uri(row.heatmap_picture)}" alt="uncertainty heatmap of {text(label)}"></td>'
        f'<td class="num">{_number(values.get(Key.PREDICTED_DICE)) or "&ndash;"}</td>'
        f'<td class="num">{_number(values.get(Key.DICE_LOWER_BOUND)) or "&ndash;"}</td>'
        f'<td class="files">{links}</td></tr>')


def review_page(rows: Sequence[ReportRow], title: str, description: str = "",
                failures: Sequence[str] = ()) -> str:
    """The whole page as a string; ``rows`` in the order to show first (review priority)."""
    text = html.escape
    counts: dict[str, int] = {}
    for row in rows:
        label = badge_label(row.values.get(Key.BADGE) or None)
        counts[label] = counts.get(label, 0) + 1
    count_html = "".join(f"<span><b>{n}</b> {text(label)}</span>" for label, n in sorted(counts.items()))
    header_cells = ['<th title="review priority">#</th>']
    for key, label, kind in COLUMNS:
        header_cells.append(f'<th class="sortable" data-key="{key}" data-type="{kind}">{label}</th>')
        if key == "class":
            header_cells += ["<th>Overlay</th>", f"<th>Uncertainty{HEATMAP_SCALE}</th>"]
    header_cells.append("<th>Files</th>")
    failure_html = ""
    if failures:
        items = "".join(f"<li>{text(message)}</li>" for message in failures)
        failure_html = f'<h2 class="failures">Not processed ({len(failures)})</h2><ul class="failures">{items}</ul>'
    body = "\n".join(_row_html(rank, row) for rank, row in enumerate(rows))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{text(title)}</title>
<style>{STYLE.replace("REVIEW_COLOR", badge_color(REVIEW)).replace("INFERNO_STOPS", INFERNO_STOPS)}</style>
</head>
<body>
<h1>{text(title)}</h1>
<p class="meta">{text(description)}</p>
<p class="meta">{OPEN_IN_SLICER}</p>
<p class="meta counts">{count_html} &middot; REVIEW first, then lowest lower bound; click a column to sort.</p>
{failure_html}
<table id="review">
<thead><tr>{"".join(header_cells)}</tr></thead>
<tbody>
{body}
</tbody>
</table>
<script>{SCRIPT}</script>
</body>
</html>
"""
