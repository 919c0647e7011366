"""The per-case Slicer scene of a review (``S.mrml``), loaded with Slicer's own MRML classes (slicer-core):
image, segmentation and heatmap appear, each volume read as a single file, and no file changes."""

from __future__ import annotations

import hashlib

import pytest
import SimpleITK as sitk
import vtk
from dicom_series import write_dicom_series
from slicer_scene import scene_with_logics
from tiny_bundles import make_bundle, random_image

from ConfidenceSegLib.jobs.review import run_review

slicer = pytest.importorskip("slicer", reason="the slicer-core wheel is not installed")


def hashes(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


def test_a_case_scene_loads_image_segmentation_and_heatmap(tmp_path):
    make_bundle(tmp_path / "model", classes=("organ", "lesion"), input_size=(32, 32))
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    for seed in (1, 2):  # similar names: a series-merging reader would stack them
        sitk.WriteImage(random_image((30, 44), spacing=(0.5, 0.7), seed=seed), str(cohort / f"case{seed}.nrrd"))
    out = tmp_path / "qc"
    run_review(tmp_path / "model", [cohort], out, samples=3, progress=False)
    assert (out / "case1.mrml").is_file() and 'Slicer scene</a>' in (out / "index.html").read_text(encoding="utf-8")
    before = hashes(out) | hashes(cohort)

    scene = slicer.vtkMRMLScene()
    scene.SetURL(str(out / "case1.mrml"))
    assert scene.Connect() == 1
    volumes = {scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode").GetName():
               scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
               for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode"))}
    assert set(volumes) == {"case1", "case1 organ entropy"}
    for volume in volumes.values():
        assert volume.GetImageData() is not None and volume.GetImageData().GetDimensions() == (44, 30, 1)
    assert volumes["case1"].GetSpacing()[:2] == pytest.approx((0.5, 0.7))
    segmentation = scene.GetFirstNodeByClass("vtkMRMLSegmentationNode")
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 2
    composite = scene.GetSingletonNode("Red", "vtkMRMLSliceCompositeNode")
    assert composite.GetBackgroundVolumeID() == volumes["case1"].GetID()
    assert composite.GetForegroundVolumeID() == volumes["case1 organ entropy"].GetID()
    heatmap_display = volumes["case1 organ entropy"].GetDisplayNode()
    assert heatmap_display.GetApplyThreshold() and heatmap_display.GetLowerThreshold() == pytest.approx(0.1)
    assert hashes(out) | hashes(cohort) == before  # opening the scene changes nothing


def test_an_input_given_its_pixel_size_lines_up_with_its_outputs_in_slicer(tmp_path):
    """An ultrasound DICOM series without Pixel Spacing (the slicer-core wheel reads no PNG; Slicer does,
    the same way: 1-unit pixels), reviewed with ``--spacing``: the scene's transform puts it in place."""
    make_bundle(tmp_path / "model", classes=("organ",), input_size=(32, 32))
    series = write_dicom_series(tmp_path / "us", modality="US", frame_of_reference=False)
    out = tmp_path / "qc"
    run_review(tmp_path / "model", [series], out, samples=2, progress=False, spacing=(0.2, 0.3))

    scene = slicer.vtkMRMLScene()
    scene.SetURL(str(out / "us.mrml"))
    assert scene.Connect() == 1
    image, heatmap = scene.GetFirstNodeByName("us"), scene.GetFirstNodeByName("us organ entropy")
    assert image.GetSpacing()[:2] == pytest.approx((1.0, 1.0))  # Slicer reads it in 1-unit pixels
    assert heatmap.GetSpacing()[:2] == pytest.approx((0.2, 0.3))
    for corner in ((0, 0, 0, 1), (27, 0, 2, 1), (0, 23, 1, 1), (27, 23, 2, 1)):  # the same voxel, the same place
        placed = []
        for node in (image, heatmap):
            ijk_to_ras, to_world = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
            node.GetIJKToRASMatrix(ijk_to_ras)
            slicer.vtkMRMLTransformNode.GetMatrixTransformBetweenNodes(node.GetParentTransformNode(), None, to_world)
            placed.append(to_world.MultiplyPoint(ijk_to_ras.MultiplyPoint(corner)))
        assert placed[0] == pytest.approx(placed[1]), corner


def slice_layer_rgba(scene, volume, pixels: tuple[int, int], field_of_view: tuple[float, float]):
    """What Slicer's slice layer logic makes of ``volume`` in a view of ``pixels`` (W, H): RGBA, (H, W, 4)."""
    from vtk.util.numpy_support import vtk_to_numpy

    slice_node = scene.AddNode(slicer.vtkMRMLSliceNode())
    slice_node.SetDimensions(*pixels, 1)
    slice_node.SetFieldOfView(*field_of_view, 1)
    layer = slicer.vtkMRMLSliceLayerLogic()
    layer.SetMRMLScene(scene)
    layer.SetSliceNode(slice_node)
    layer.SetVolumeNode(volume)
    layer.UpdateTransforms()
    port = layer.GetImageDataConnection()
    port.GetProducer().Update()
    rgba = vtk_to_numpy(port.GetProducer().GetOutputDataObject(port.GetIndex()).GetPointData().GetScalars())
    return rgba.reshape(pixels[1], pixels[0], -1)


def test_a_zoomed_heatmap_is_smooth_not_a_pixel_staircase():
    """A 4 x 4 heatmap drawn 200 pixels wide by Slicer's own slice layer: values between its pixels are
    interpolated (a nearest-neighbour display would give 4 steps along a row)."""
    import numpy as np

    from ConfidenceSegLib.slicer.mrml import add_volume_from_image
    from ConfidenceSegLib.slicer.results import setup_heatmap_display

    scene = slicer.vtkMRMLScene()
    colors = slicer.vtkMRMLColorTableNode()
    colors.SetTypeToGrey()
    scene.AddNode(colors)
    values = np.random.default_rng(0).uniform(0.2, 1.0, (4, 4)).astype(np.float32)
    heatmap = add_volume_from_image(scene, sitk.GetImageFromArray(values), "heat")
    setup_heatmap_display(heatmap, colors)
    row = slice_layer_rgba(scene, heatmap, (200, 200), (4, 4))[100, :, 0]
    assert len(np.unique(row)) > 40, f"{len(np.unique(row))} grey levels along a row: a staircase"


def test_slicer_draws_the_heatmap_in_the_overlay_s_colours():
    """Slicer's slice layer (as in the module and the station) and the overlay PNG's heatmap give one
    entropy the same colour and hide the same low values; the layer's opacity is the overlay's alpha."""
    import numpy as np

    from ConfidenceSegLib.contract import HEATMAP_OPACITY
    from ConfidenceSegLib.outputs.overlay import _heatmap_rgba
    from ConfidenceSegLib.slicer.mrml import add_volume_from_image
    from ConfidenceSegLib.slicer.results import inferno_color_node, setup_heatmap_display

    scene = scene_with_logics()
    values = np.repeat(np.linspace(0.0, 1.0, 101, dtype=np.float32)[np.newaxis], 3, axis=0)  # (3, 101)
    image = sitk.GetImageFromArray(values)
    image.SetOrigin((-50.0, -1.0))  # centred on the view's centre
    heatmap = add_volume_from_image(scene, image, "heat")
    setup_heatmap_display(heatmap, inferno_color_node(scene, scene.color_logic))
    # A view exactly over the image (pixel centres on the image's): row 1 shows values 0..1 in steps of 0.01.
    drawn = slice_layer_rgba(scene, heatmap, (101, 3), (101, 3))[1].astype(float) / 255.0
    if drawn[0, :3].sum() > drawn[-1, :3].sum():  # the view's x runs against the image's i
        drawn = drawn[::-1]
    overlay = _heatmap_rgba(values[1])
    shown = drawn[:, 3] > 0
    np.testing.assert_array_equal(shown, overlay[:, 3] > 0)  # the same values hidden
    assert 0 < shown.sum() < len(shown)
    # the same colours, to one step of a 256-colour table (Inferno moves up to 5/255 a step)
    np.testing.assert_allclose(drawn[shown, :3], overlay[shown, :3], atol=6 / 255)
    assert set(overlay[shown, 3]) == {HEATMAP_OPACITY}
