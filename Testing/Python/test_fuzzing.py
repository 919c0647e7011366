"""Property-based fuzzing of the readers of untrusted files: each input loads or raises the project's own error.

Inputs: ``.seg.nrrd`` header mutations, segment tag texts, ``dataset.json`` documents and bundle
``config.json`` documents. Bounded example counts and a fixed seed (``derandomize``) keep the run
reproducible and short; any other exception, or a hang, fails the test.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_bundles import make_bundle

from ConfidenceSegLib.annotation.datasets import load_dataset
from ConfidenceSegLib.annotation.layers import confidence_map_from_segments
from ConfidenceSegLib.contract import CLASS_TAG, CONFIDENCE_TAG, ConfidenceSegError
from ConfidenceSegLib.io.segfile import read_segmentation, write_segmentation
from ConfidenceSegLib.io.segments import Segment
from ConfidenceSegLib.model.bundle_config import check_config

FUZZ = settings(max_examples=120, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
#: Values that break parsers: empty, negative, huge, not numbers, separators, NaN.
NASTY_TEXT = st.sampled_from(["", "-1", "0", "7", "999999999", "abc", "1e308", "nan", "inf", "1.0::", "||", ":",
                              "0 0", "1 2 3 4", "(1,0)", "\x00", "Segment_1", "-0.5", "2.5"])
NASTY_JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True) |
                          st.text(max_size=12) | NASTY_TEXT,
                          lambda children: st.lists(children, max_size=4) | st.dictionaries(
                              st.text(max_size=8) | NASTY_TEXT, children, max_size=4), max_leaves=12)


def valid_segmentation(folder: Path) -> tuple[Path, sitk.Image]:
    reference = sitk.Image(12, 10, sitk.sitkUInt8)
    mask = np.zeros((10, 12), bool)
    mask[2:6, 3:8] = True
    segments = [Segment("a", mask, tags={CLASS_TAG: "organ", CONFIDENCE_TAG: "1.0"}),
                Segment("b", np.roll(mask, 3, 1), tags={CLASS_TAG: "organ", CONFIDENCE_TAG: "0.5"})]
    path = folder / "valid.seg.nrrd"
    write_segmentation(path, segments, reference)
    return path, reference


def loads_or_refuses(function, *args) -> None:
    """Call ``function``; the project's own error is an acceptable answer, anything else is a bug."""
    try:
        function(*args)
    except ConfidenceSegError as error:
        assert str(error) and "\n" not in str(error).strip()


SEGMENT_FIELDS = st.sampled_from(["Layer", "LabelValue", "Tags", "Color", "Extent", "ID", "Name", "Status"])


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 60), st.sampled_from(["delete", "value", "field", "insert"]),
                                NASTY_TEXT | st.integers(-3, 9).map(str), SEGMENT_FIELDS), min_size=1, max_size=4))
def test_seg_nrrd_header_mutations(tmp_path_factory, edits):
    folder = tmp_path_factory.mktemp("seg")
    path, reference = valid_segmentation(folder)
    header, _, body = path.read_bytes().partition(b"\n\n")
    lines = header.decode().split("\n")
    for position, action, text, field in edits:
        index = 1 + position % (len(lines) - 1)  # keep the magic line
        key, separator, _ = lines[index].partition(":=") if ":=" in lines[index] else lines[index].partition(": ")
        if action == "delete" and len(lines) > 2:
            del lines[index]
        elif action == "value":
            lines[index] = f"{key}{separator or ':='}{text}"
        elif action == "field":  # a segment's own field, e.g. Segment1_Layer:=7
            prefix = f"Segment{position % 2}_{field}:="
            lines = [prefix + text if line.startswith(prefix) else line for line in lines]
        else:
            lines.insert(index, f"Segment{position % 3}_{field}:={text}")
    damaged = folder / "damaged.seg.nrrd"
    damaged.write_bytes("\n".join(lines).encode("utf-8", "replace") + b"\n\n" + body)

    def read_all():
        segments = read_segmentation(damaged, reference)
        for name in {segment.class_name for segment in segments if segment.class_name}:
            confidence_map_from_segments(segments, name)

    loads_or_refuses(read_all)


@FUZZ
@given(class_value=st.text(max_size=10), level=st.text(max_size=10) | NASTY_TEXT)
def test_confidence_tags(class_value, level):
    segment = Segment("s", np.ones((3, 3), bool), tags={CLASS_TAG: class_value, CONFIDENCE_TAG: level})
    loads_or_refuses(confidence_map_from_segments, [segment], class_value)


def valid_dataset(folder: Path) -> dict:
    (folder / "images").mkdir(exist_ok=True)
    sitk.WriteImage(sitk.Image(8, 8, sitk.sitkUInt8), str(folder / "images" / "a.nrrd"))
    return {"name": "fuzz", "classes": ["organ"], "cases": [
        {"id": "a", "subject": "s1", "image": "images/a.nrrd", "labels": {"organ": "images/a.nrrd"}},
        {"id": "b", "subject": "s2", "image": "images/a.nrrd", "raters": ["images/a.nrrd"]}]}


def mutate(document, path: list, value):
    """``document`` with the value at ``path`` (keys/indices, taken modulo what exists) replaced by ``value``."""
    document = copy.deepcopy(document)
    target = document
    for step in path[:-1]:
        if isinstance(target, dict) and target:
            target = target[sorted(target)[step % len(target)]]
        elif isinstance(target, list) and target:
            target = target[step % len(target)]
    if isinstance(target, dict) and target:
        target[sorted(target)[path[-1] % len(target)]] = value
    elif isinstance(target, list) and target:
        target[path[-1] % len(target)] = value
    return document


@FUZZ
@given(path=st.lists(st.integers(0, 9), min_size=1, max_size=4), value=NASTY_JSON, whole=st.booleans())
def test_dataset_json(tmp_path_factory, path, value, whole):
    folder = tmp_path_factory.mktemp("dataset")
    document = value if whole else mutate(valid_dataset(folder), path, value)
    (folder / "dataset.json").write_text(json.dumps(document), encoding="utf-8")

    def load_and_read():
        dataset = load_dataset(folder)
        for case in dataset.cases:
            for name in dataset.classes:
                if name in case.label_paths or case.rater_paths:
                    case.confidence_map(name)

    loads_or_refuses(load_and_read)


@FUZZ
@given(path=st.lists(st.integers(0, 9), min_size=1, max_size=3), value=NASTY_JSON)
def test_bundle_config(tmp_path_factory, path, value):
    folder = tmp_path_factory.mktemp("bundle")
    make_bundle(folder / "model", classes=("organ",), input_size=(16, 16))
    config = json.loads((folder / "model" / "config.json").read_text(encoding="utf-8"))
    loads_or_refuses(check_config, mutate(config, path, value), folder / "model")
