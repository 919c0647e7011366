"""Cost of drawing the heatmap without the pixel staircase: Slicer's slice layer with linear
interpolation (``setup_heatmap_display``, the module and the station) against nearest neighbour.

The bundled sample is predicted once; its entropy map is then resliced by Slicer's own
``vtkMRMLSliceLayerLogic`` (slicer-core) into a view of ``--view`` pixels, zoomed ``--zoom`` times
(what a reader does to look at an edge), ``--runs`` times per setting, the view moved by a fraction of a
pixel each time so that every run reslices. Prints the median milliseconds per reslice and the ratio.

    python benchmarks/heatmap_display.py [--runs 50] [--view 1000] [--zoom 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import SimpleITK as sitk
import slicer

from ConfidenceSegLib.cli import main as cli
from ConfidenceSegLib.io.resources import default_model_dir, sample_images
from ConfidenceSegLib.slicer.mrml import add_volume_from_image
from ConfidenceSegLib.slicer.results import inferno_color_node, setup_heatmap_display


def entropy_map(folder: Path) -> sitk.Image:
    """The entropy map of the bundled sample, as ``predict`` writes it."""
    sample = sample_images()[0]
    if cli(["predict", "--model", str(default_model_dir()), "--input", str(sample), "--out", str(folder)]) != 0:
        sys.exit("predict failed")
    return sitk.ReadImage(str(next(folder.glob("*_entropy.nrrd"))))


def reslice_times(image: sitk.Image, interpolate: bool, runs: int, view: int, zoom: float) -> list[float]:
    """Seconds per reslice of ``image`` into a ``view`` x ``view`` slice view."""
    scene = slicer.vtkMRMLScene()
    color_logic = slicer.vtkSlicerColorLogic()
    color_logic.SetMRMLScene(scene)
    node = add_volume_from_image(scene, image, "entropy")
    setup_heatmap_display(node, inferno_color_node(scene, color_logic)).SetInterpolate(interpolate)
    width_mm = image.GetSize()[0] * image.GetSpacing()[0] / zoom
    slice_node = scene.AddNode(slicer.vtkMRMLSliceNode())
    slice_node.SetDimensions(view, view, 1)
    slice_node.SetFieldOfView(width_mm, width_mm, 1)
    layer = slicer.vtkMRMLSliceLayerLogic()
    layer.SetMRMLScene(scene)
    layer.SetSliceNode(slice_node)
    layer.SetVolumeNode(node)
    centre = [o + 0.5 * n * s for o, n, s in zip(image.GetOrigin(), image.GetSize(), image.GetSpacing(), strict=True)]
    times = []
    for run in range(runs + 1):
        slice_node.SetSliceOrigin(-centre[0] + 0.01 * run, -centre[1], 0.0)  # LPS -> RAS, moved a little
        layer.UpdateTransforms()
        producer = layer.GetImageDataConnection().GetProducer()
        started = time.perf_counter()
        producer.Update()
        times.append(time.perf_counter() - started)
    return times[1:]  # the first run builds the pipeline


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--view", type=int, default=1000, help="view size in pixels (square)")
    parser.add_argument("--zoom", type=float, default=4.0, help="image pixels per view width, divided")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        image = entropy_map(Path(folder))
    print(f"entropy map {image.GetSize()[0]} x {image.GetSize()[1]}, view {args.view} x {args.view}, "
          f"zoom {args.zoom:g}x, {args.runs} reslices each")
    medians = {}
    print("| display | median ms per reslice |\n|---|---:|")
    for label, interpolate in (("nearest neighbour (before)", False), ("linear (now)", True)):
        medians[label] = 1000 * statistics.median(reslice_times(image, interpolate, args.runs, args.view, args.zoom))
        print(f"| {label} | {medians[label]:.1f} |")
    before, now = medians.values()
    print(f"ratio linear / nearest: {now / before:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
