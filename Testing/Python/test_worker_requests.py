"""The warm worker's request schema and the readers of user-supplied JSON, under property-based fuzzing:
any input is either a checked value or a one-line ConfidenceSegError, never another exception."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ConfidenceSegLib.contract import DEVICE_CHOICES, MAP_KINDS, METHODS, ConfidenceSegError
from ConfidenceSegLib.jobs.worker_requests import MAX_LINE, Request, parse_request
from ConfidenceSegLib.outputs.report import PredictionReport, report_from_json

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=10), inner, max_size=4), max_leaves=20)
fields = st.fixed_dictionaries({}, optional={
    "id": json_values, "command": st.sampled_from(["predict", "cancel", "quit", "bogus"]) | json_values,
    "input": json_values, "out": json_values, "method": st.sampled_from(METHODS) | json_values,
    "samples": json_values, "device": st.sampled_from(DEVICE_CHOICES) | json_values, "maps": json_values,
    "overwrite": json_values, "target": json_values})


@settings(max_examples=300, deadline=None)
@given(fields)
def test_any_request_is_checked_or_refused_in_one_line(request):
    try:
        parsed = parse_request(json.dumps(request))
    except ConfidenceSegError as error:
        assert "\n" not in str(error)
        return
    assert isinstance(parsed, Request) and parsed.command in ("predict", "cancel", "quit")
    if parsed.command == "predict":
        assert isinstance(parsed.input, str) and parsed.input and isinstance(parsed.out, str) and parsed.out
        assert parsed.method in METHODS and parsed.device in DEVICE_CHOICES
        assert parsed.overwrite is request.get("overwrite", False) and isinstance(parsed.overwrite, bool)
        assert parsed.maps is None or set(parsed.maps) <= set(MAP_KINDS)
        assert parsed.samples is None or (isinstance(parsed.samples, int) and not isinstance(parsed.samples, bool))


@pytest.mark.parametrize("line, words", [
    ('{"id": "1", "command": "predict", "input": "a.nrrd", "out": "o", "overwrite": "false"}', "'overwrite'"),
    ('{"id": "1", "command": "predict", "input": "a.nrrd", "out": "o", "maps": "entropy"}', "'maps'"),
    ('{"id": "1", "command": "predict", "input": "' + "a" * 5000 + '", "out": "o"}', "'input'"),
    ("[" * 20000 + "]" * 20000, "not a JSON request"),
    ("x" * (MAX_LINE + 1), "longer than"),
    ('{"command": "predict", "id": true, "input": "a", "out": "o"}', "job id"),
], ids=["overwrite-string", "maps-string", "long-path", "deep-nesting", "long-line", "bool-id"])
def test_hostile_requests_are_refused(line, words):
    with pytest.raises(ConfidenceSegError, match=words):
        parse_request(line)


@settings(max_examples=200, deadline=None)
@given(json_values | st.fixed_dictionaries({"classes": st.dictionaries(st.text(max_size=8), json_values, max_size=3)},
                                           optional={"frames": json_values, "segmentation": json_values}))
def test_any_report_json_is_read_or_refused_in_one_line(data):
    try:
        report = report_from_json(data)
    except ConfidenceSegError as error:
        assert "\n" not in str(error)
        return
    assert isinstance(report, PredictionReport)
