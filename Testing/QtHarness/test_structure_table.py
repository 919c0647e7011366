"""The structure table of a label map with many structures, on a real PythonQt ``QTableWidget``: one row
per structure in review order, the badge word in its colour, the structure of a clicked row."""

import random

from ConfidenceSegLib.contract import ABSENT, BADGE_PRIORITY, PASS, REVIEW, badge_color
from ConfidenceSegLib.outputs.report import PredictionReport
from ConfidenceSegLib.quality.verdict import ClassResult, Reason, Verdict
from ConfidenceSegLib.slicer.results import structure_badges


def many_structures(count: int, seed: int) -> PredictionReport:
    """A report of ``count`` structures with random verdicts (some absent, some unrated)."""
    rng = random.Random(seed)
    classes = {}
    for index in range(count):
        badge = rng.choice([PASS, REVIEW, ABSENT, None])
        dice = None if badge in (ABSENT, None) else rng.uniform(0.3, 1.0)
        verdict = Verdict(badge, dice, None if dice is None else dice - rng.uniform(0.0, 0.2),
                          (Reason("lower_bound_below_threshold", f"reason {index}"),))
        classes[f"structure_{index:03d}"] = ClassResult(f"structure_{index:03d}", badge != ABSENT, {}, verdict)
    return PredictionReport("in.nii.gz", "model", "ensemble", 5, "cpu", classes, pass_threshold=0.8)


def test_every_structure_gets_a_row_the_ones_to_review_first():
    import qt

    from ConfidenceSegQt.structure_table import BADGE_COLUMN, fill_structure_table, structure_at

    report = many_structures(104, seed=3)
    badges = structure_badges(report)
    table = qt.QTableWidget()
    fill_structure_table(table, badges)
    assert table.rowCount == len(report.classes)
    shown = [structure_at(table, row) for row in range(table.rowCount)]
    assert sorted(shown) == sorted(report.classes), "a structure is missing or shown twice"
    words = [table.item(row, BADGE_COLUMN).text() for row in range(table.rowCount)]
    priority = [BADGE_PRIORITY[report.classes[name].verdict.badge] for name in shown]
    assert priority == sorted(priority) and words[0] == REVIEW, "not REVIEW, ABSENT, PASS, unrated"
    bounds = [report.classes[name].verdict.dice_lower_bound for name in shown
              if report.classes[name].verdict.badge == REVIEW]
    assert bounds == sorted(bounds), "REVIEW structures are not lowest bound first"
    assert {"UNRATED", ABSENT, PASS} <= set(words)
    for row in range(table.rowCount):
        verdict = report.classes[shown[row]].verdict
        assert table.item(row, BADGE_COLUMN).foreground().color().name() == qt.QColor(badge_color(verdict.badge)).name()
    assert structure_at(table, -1) == "" and structure_at(table, table.rowCount) == ""
    fill_structure_table(table, structure_badges(many_structures(2, seed=4)))
    assert table.rowCount == 2, "a second result did not replace the first"
