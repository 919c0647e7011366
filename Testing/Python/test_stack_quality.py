"""A 2D model on a multi-frame stack: one assessment per frame, each the same as for the frame on its
own, and the whole stack's badge from its frames (real HC18 frames, the bundled model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import REPO_ROOT, dataset_dir

from ConfidenceSegLib.cli import main
from ConfidenceSegLib.contract import Key
from ConfidenceSegLib.outputs.report import read_report
from ConfidenceSegLib.outputs.review_table import rows_from_report

BUNDLED = REPO_ROOT / "Resources" / "models" / "fetal_head"
FRAMES = 16


@pytest.fixture(scope="module")
def stack_and_frames(tmp_path_factory):
    if not (BUNDLED / "config.json").is_file():
        pytest.skip("the bundled fetal_head model is not in this checkout")
    hc18 = dataset_dir("hc18")
    cases = json.loads((hc18 / "dataset.json").read_text(encoding="utf-8"))["cases"][-FRAMES:]
    images = [sitk.ReadImage(str(hc18 / case["image"])) for case in cases]
    folder = tmp_path_factory.mktemp("stack")
    stack = sitk.GetImageFromArray(np.stack([sitk.GetArrayFromImage(image) for image in images]))
    stack.SetSpacing((*images[0].GetSpacing(), 1.0))
    sitk.WriteImage(stack, str(folder / "stack.nrrd"), useCompression=True)
    return folder, [hc18 / case["image"] for case in cases]


def test_a_stack_gets_one_assessment_per_frame_equal_to_the_frame_alone(stack_and_frames, capsys):
    folder, frame_paths = stack_and_frames
    assert main(["predict", "--model", str(BUNDLED), "--input", str(folder / "stack.nrrd"), "--out",
                 str(folder / "out")]) == 0
    assert "2D model slice by slice on 16 frames" in capsys.readouterr().out
    report = read_report(folder / "out" / "stack.json")
    frames = [frame["fetal_head"].verdict for frame in report.frames]
    assert len(frames) == FRAMES
    whole = report.classes["fetal_head"]
    badges = [frame.badge for frame in frames]
    assert whole.frames_summary["PASS"] == badges.count("PASS")
    row = rows_from_report("stack", report)[0]  # the review table lists the stack as one row with its counts
    assert row[Key.FRAMES] == (f"frames {badges.count('PASS')} PASS, {badges.count('REVIEW')} REVIEW, "
                               f"{badges.count('ABSENT')} ABSENT")
    expected = "REVIEW" if "REVIEW" in badges else "PASS" if "PASS" in badges else "ABSENT"
    assert whole.verdict.badge == expected
    # the headline is one frame's measurement (the worst frame's), never a volume of stacked 2D frames
    bounds = [(k, frame.dice_lower_bound) for k, frame in enumerate(frames) if frame.badge != "ABSENT"]
    worst = min(bounds, key=lambda pair: pair[1])[0]
    assert whole.measured_frame == worst and "volume_mm3" not in whole.measurements
    assert whole.measurements == report.frames[worst]["fetal_head"].measurements
    assert row[Key.MEASUREMENT].startswith(f"frame {worst + 1} of {FRAMES}: circumference ")
    reasons = row[Key.REASON].split(" · ")  # the worst frame's reason, quoted in the first, is not repeated
    assert not any(later in reasons[0] for later in reasons[1:]), row[Key.REASON]
    for index in (0, 7, 15):  # the same frame predicted alone, as a 2D image
        out = folder / f"alone{index}"
        assert main(["predict", "--model", str(BUNDLED), "--input", str(frame_paths[index]), "--out", str(out)]) == 0
        alone = read_report(next(out.glob("*.json"))).classes["fetal_head"].verdict
        in_stack = frames[index]
        assert in_stack.badge == alone.badge, index
        for key in ("predicted_dice", "dice_lower_bound"):
            if getattr(alone, key) is None:
                assert getattr(in_stack, key) is None
            else:
                assert getattr(in_stack, key) == pytest.approx(getattr(alone, key), abs=0.02), (index, key)
