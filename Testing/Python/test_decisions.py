"""Review decisions beside a review.csv: round trip, clear errors, reload, and concurrent writers
(two real processes deciding at once) losing nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest
from bad_input_builders import file_size_limit

from ConfidenceSegLib.contract import DECISION_COLUMNS, DECISIONS_CSV, REVIEW_CSV, ConfidenceSegError
from ConfidenceSegLib.io.safe_files import write_text_atomic
from ConfidenceSegLib.outputs.decisions import load_decisions, read_decisions, record_decision
from ConfidenceSegLib.outputs.review_table import review_csv

CASES = [f"case{number:02d}" for number in range(30)]


@pytest.fixture
def review_folder(tmp_path):
    rows = [{"case": case, "class": "organ", "predicted_dice": 0.5 + number / 100, "dice_lower_bound": 0.4,
             "badge": "REVIEW" if number % 2 else "PASS", "segmentation": f"{case}.seg.nrrd", "json": f"{case}.json"}
            for number, case in enumerate(CASES)]
    write_text_atomic(tmp_path / REVIEW_CSV, review_csv(rows))
    return tmp_path


def test_decisions_round_trip_and_the_latest_counts(review_folder):
    first = record_decision(review_folder, "case01", "organ", "needs_correction", "rim missed,\nleft side")
    assert (first.badge, first.predicted_dice) == ("REVIEW", pytest.approx(0.51))
    assert first.note == "rim missed, left side"
    record_decision(review_folder, "case02", "organ", "accept")
    record_decision(review_folder, "case01", "organ", "reject", "wrong structure")
    header = (review_folder / DECISIONS_CSV).read_text(encoding="utf-8").splitlines()[0]
    assert tuple(header.split(",")) == DECISION_COLUMNS
    assert [d.decision for d in read_decisions(review_folder)] == ["needs_correction", "accept", "reject"]
    latest = load_decisions(review_folder)
    assert latest[("case01", "organ")].decision == "reject" and latest[("case02", "organ")].badge == "PASS"


def test_bad_decisions_are_refused_and_change_nothing(review_folder):
    with pytest.raises(ConfidenceSegError, match="unknown decision"):
        record_decision(review_folder, "case01", "organ", "maybe")
    with pytest.raises(ConfidenceSegError, match="no case 'nope'"):
        record_decision(review_folder, "nope", "organ", "accept")
    assert not (review_folder / DECISIONS_CSV).exists()
    (review_folder / DECISIONS_CSV).write_text("a,b\n1,2\n")
    with pytest.raises(ConfidenceSegError, match="not a ConfidenceSeg decisions file"):
        load_decisions(review_folder)


def test_a_decision_that_cannot_be_saved_says_so_and_keeps_the_earlier_ones(review_folder):
    for case in CASES[:20]:
        record_decision(review_folder, case, "organ", "accept", "checked the rim all around")
    before = (review_folder / DECISIONS_CSV).read_bytes()
    with file_size_limit(True), pytest.raises(ConfidenceSegError, match="the decision was NOT saved"):
        record_decision(review_folder, "case25", "organ", "reject")  # the disk is full: the file cannot grow
    assert (review_folder / DECISIONS_CSV).read_bytes() == before


def test_two_processes_deciding_at_once_lose_nothing(review_folder):
    script = ("import sys\n"
              "from ConfidenceSegLib.outputs.decisions import record_decision\n"
              "folder, part = sys.argv[1], int(sys.argv[2])\n"
              f"for case in {CASES!r}[part::2]:\n"
              "    record_decision(folder, case, 'organ', 'accept' if part else 'reject', f'writer {part}')\n")
    writers = [subprocess.Popen([sys.executable, "-c", script, str(review_folder), str(part)]) for part in (0, 1)]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    decisions = read_decisions(review_folder)
    assert sorted(d.case for d in decisions) == CASES
    assert all(d.decision == ("accept" if int(d.case[-2:]) % 2 else "reject") for d in decisions)


def test_formula_cells_are_written_with_an_apostrophe_and_read_back_unchanged(tmp_path):
    rows = [{"case": case, "class": "-organ", "predicted_dice": 0.5, "dice_lower_bound": 0.4, "badge": "PASS",
             "json": "x.json"} for case in ("=2+3", "@cmd", "plain")]
    write_text_atomic(tmp_path / REVIEW_CSV, review_csv(rows))
    record_decision(tmp_path, "=2+3", "-organ", "reject", "+call me")
    record_decision(tmp_path, "@cmd", "-organ", "accept", "=HYPERLINK(\"http://x\")")
    record_decision(tmp_path, "plain", "-organ", "accept", "fine")
    lines = (tmp_path / DECISIONS_CSV).read_text(encoding="utf-8").splitlines()[1:]
    assert lines[0].startswith("'=2+3,'-organ,reject,'+call me,") and lines[1].startswith("'@cmd,'-organ,")
    assert "\"'=HYPERLINK(\"\"http://x\"\")\"" in lines[1] and lines[2].startswith("plain,'-organ,accept,fine,")
    made = read_decisions(tmp_path)
    assert [(d.case, d.class_name, d.note) for d in made] == [
        ("=2+3", "-organ", "+call me"), ("@cmd", "-organ", "=HYPERLINK(\"http://x\")"), ("plain", "-organ", "fine")]
    assert load_decisions(tmp_path)[("@cmd", "-organ")].decision == "accept"
