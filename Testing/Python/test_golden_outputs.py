"""Behaviour unchanged: ``review`` of the bundled samples writes the reports and table of ``fixtures/golden``.

The golden files were written by ``golden_outputs.py`` (see there for when to rewrite them). Numbers
are compared to 1e-6 (float sums differ at 1e-9 between thread counts), everything else exactly.
"""

from __future__ import annotations

import json
import math

import pytest
from golden_outputs import GOLDEN, collect, run_review, write_inputs

TOLERANCE = 1e-6


def differences(expected, found, where: str = "") -> list[str]:
    """Every place where ``found`` differs from ``expected`` (numbers within TOLERANCE are equal)."""
    if isinstance(expected, dict) and isinstance(found, dict):
        keys = sorted(set(expected) | set(found))
        return [d for key in keys for d in (
            [f"{where}/{key}: missing"] if key not in found else [f"{where}/{key}: unexpected"]
            if key not in expected else differences(expected[key], found[key], f"{where}/{key}"))]
    if isinstance(expected, list) and isinstance(found, list):
        if len(expected) != len(found):
            return [f"{where}: {len(found)} entries, expected {len(expected)}"]
        return [d for index, pair in enumerate(zip(expected, found, strict=True))
                for d in differences(*pair, f"{where}[{index}]")]
    numbers = (int, float)
    if isinstance(expected, numbers) and isinstance(found, numbers) and not isinstance(expected, bool):
        return [] if math.isclose(expected, found, rel_tol=TOLERANCE, abs_tol=TOLERANCE) else [
            f"{where}: {found!r}, expected {expected!r}"]
    if isinstance(expected, str) and isinstance(found, str) and expected != found:
        try:  # review.csv holds numbers as text
            if math.isclose(float(expected), float(found), rel_tol=TOLERANCE, abs_tol=TOLERANCE):
                return []
        except ValueError:
            pass
    return [] if expected == found else [f"{where}: {found!r}, expected {expected!r}"]


@pytest.mark.slow
def test_review_writes_the_golden_reports_and_table(tmp_path):
    run_review(write_inputs(tmp_path / "inputs"), tmp_path / "out")
    found = collect(tmp_path / "out")
    expected = {path.name.removesuffix(".golden.json"): json.loads(path.read_text(encoding="utf-8"))
                for path in sorted(GOLDEN.glob("*.golden.json"))}
    assert sorted(found) == sorted(expected)
    problems = [d for name in expected for d in differences(expected[name], found[name], name)]
    assert not problems, "\n".join(problems[:20])


def test_differences_sees_a_changed_badge_and_ignores_float_noise():
    expected = {"classes": {"a": {"badge": "PASS", "predicted_dice": 0.9}}, "rows": [{"x": "0.5"}]}
    assert differences(expected, {"classes": {"a": {"badge": "PASS", "predicted_dice": 0.9 + 1e-9}},
                                  "rows": [{"x": "0.5000000001"}]}) == []
    assert differences(expected, {"classes": {"a": {"badge": "REVIEW", "predicted_dice": 0.9}},
                                  "rows": [{"x": "0.6"}]}) == [
        "/classes/a/badge: 'REVIEW', expected 'PASS'", "/rows[0]/x: '0.6', expected '0.5'"]
