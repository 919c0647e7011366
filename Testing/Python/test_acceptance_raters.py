"""Issue 2 acceptance: on every multi-rater case, raters -> .seg.nrrd -> confidence map is exactly k/R,
and the .seg.nrrd loads in slicer-core with one segment per level, tags intact."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import dataset_dir
from slicer_scene import load_seg_nrrd_in_scene, tag

from ConfidenceSegLib.annotation.datasets import load_dataset
from ConfidenceSegLib.cli import main
from ConfidenceSegLib.contract import CLASS_TAG, CONFIDENCE_TAG
from ConfidenceSegLib.io.images import read_image


@pytest.mark.parametrize("set_name", ["qubiq_brain_growth", "oocytes_3raters"])
def test_every_case_round_trips_through_seg_nrrd_exactly(tmp_path, set_name):
    dataset = load_dataset(dataset_dir(set_name))
    (class_name,) = dataset.classes
    for case in dataset.cases:
        image = case.read_image()
        masks = case.read_rater_masks(image)
        n_raters = len(masks)
        counts = np.sum(masks, axis=0)
        seg_path = tmp_path / f"{case.id}.seg.nrrd"
        map_path = tmp_path / f"{case.id}_map.nrrd"
        assert main(["confidence", "--raters", *map(str, case.rater_paths), "--class", class_name,
                     "--out", str(seg_path)]) == 0
        assert main(["confidence", "--seg", str(seg_path), "--class", class_name, "--map-out", str(map_path)]) == 0
        confidence = sitk.GetArrayFromImage(read_image(map_path))
        np.testing.assert_array_equal(confidence, (counts / n_raters).astype(np.float32), err_msg=case.id)

        _, node = load_seg_nrrd_in_scene(seg_path)
        segmentation = node.GetSegmentation()
        present = sorted({int(k) for k in np.unique(counts) if k > 0})
        assert segmentation.GetNumberOfSegments() == len(present), case.id
        levels = []
        for index in range(segmentation.GetNumberOfSegments()):
            segment = segmentation.GetNthSegment(index)
            assert tag(segment, CLASS_TAG) == class_name
            levels.append(float(tag(segment, CONFIDENCE_TAG)))
        assert sorted(levels) == [k / n_raters for k in present], case.id
