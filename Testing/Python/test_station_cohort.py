"""The review station without a browser: its list, navigation, decisions, access rules and command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ConfidenceSegLib.contract import DECISIONS_CSV, ConfidenceSegError
from ConfidenceSegLib.outputs.decisions import load_decisions
from ConfidenceSegLib.outputs.review_table import review_csv
from ConfidenceSegLib.station.access import folder_path, is_loopback, station_token
from ConfidenceSegLib.station.cohort import Cohort

#: (case, badge, predicted Dice, bound); review order: REVIEW by bound, ABSENT, PASS.
ROWS = [("p1", "PASS", 0.95, 0.9), ("r1", "REVIEW", 0.8, 0.6), ("a1", "ABSENT", None, None),
        ("r2", "REVIEW", 0.85, 0.7), ("p2", "PASS", 0.97, 0.93)]


@pytest.fixture
def folder(tmp_path) -> Path:
    rows = [{"case": case, "class": "head", "predicted_dice": dice, "dice_lower_bound": bound, "badge": badge,
             "reason": f"reason of {case}", "measurement": "area 1 mm²", "json": f"{case}.json"}
            for case, badge, dice, bound in ROWS]
    (tmp_path / "review.csv").write_text(review_csv(rows), encoding="utf-8")
    return tmp_path


def test_items_follow_the_review_order_with_words_and_decisions(folder):
    cohort = Cohort.open(folder)
    items = cohort.items()
    assert [item["case"] for item in items] == ["r1", "r2", "a1", "p1", "p2"]
    assert items[0]["reason"] == "reason of r1" and items[0]["bound"] == "0.60" and items[2]["dice"] == ""
    cohort.decide("r2/head", "reject", "  wrong   structure ")
    assert [item["decision"] for item in cohort.items()] == ["", "reject", "", "", ""]
    assert load_decisions(folder)[("r2", "head")].note == "wrong structure"


def test_next_and_previous_flagged_skip_what_is_not_review(folder):
    cohort = Cohort.open(folder)
    assert cohort.step(None, 1) == "r1/head"
    assert cohort.step("r1/head", 1, flagged_only=True) == "r2/head"
    assert cohort.step("r2/head", 1, flagged_only=True) == "r2/head"  # no flagged case after the last one
    assert cohort.step("p1/head", -1, flagged_only=True) == "r2/head"
    assert cohort.step("r2/head", 1) == "a1/head" and cohort.step("p2/head", 1) == "p2/head"
    assert cohort.step("r1/head", -1) == "r1/head"


def test_bad_decisions_and_unknown_cases_are_refused_and_write_nothing(folder):
    cohort = Cohort.open(folder)
    with pytest.raises(ConfidenceSegError, match="unknown decision"):
        cohort.decide("r1/head", "maybe")
    with pytest.raises(ConfidenceSegError, match="no case"):
        cohort.decide("nobody/head", "accept")
    assert not (folder / DECISIONS_CSV).exists()


def test_tokens_are_required_off_loopback_and_must_be_long(tmp_path):
    assert station_token("127.0.0.1", None) is None and station_token("localhost", None) is None
    assert is_loopback("::1") and not is_loopback("0.0.0.0") and not is_loopback("example.org")
    generated = {station_token("0.0.0.0", None) for _ in range(3)}
    assert len(generated) == 3 and all(len(token) >= 16 for token in generated)
    assert station_token("0.0.0.0", "x" * 20) == "x" * 20
    with pytest.raises(ConfidenceSegError, match="at least 16"):
        station_token("127.0.0.1", "short")


def test_only_files_inside_the_folder_resolve(tmp_path):
    inside = tmp_path / "review"
    inside.mkdir()
    (inside / "a.json").write_text("{}")
    (tmp_path / "secret.txt").write_text("secret")
    (inside / "link.txt").symlink_to(tmp_path / "secret.txt")
    assert folder_path(inside, "a.json") == (inside / "a.json").resolve()
    for relative in ("../secret.txt", "link.txt", str(tmp_path / "secret.txt")):
        assert folder_path(inside, relative) is None, relative


def run_cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ConfidenceSegLib", *arguments], capture_output=True,
                          encoding="utf-8", errors="replace", timeout=120)


def test_help_loads_no_heavy_module():
    code = ("import sys; from ConfidenceSegLib.cli import build_parser\n"
            "try:\n    build_parser().parse_args(['station', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('trame', 'trame_slicer', 'vtk', 'slicer', 'torch') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, encoding="utf-8", errors="replace")
    assert result.returncode == 0 and "--review DIR" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("arguments, message", [
    (["--review", "{missing}"], "not a batch QC folder"),
    (["--review", "{folder}", "--port", "70000"], "--port must be in 0..65535"),
    (["--review", "{folder}", "--token", "short"], "at least 16 characters"),
])
def test_bad_arguments_get_one_line_and_exit_2(folder, tmp_path, arguments, message):
    filled = [a.format(missing=tmp_path / "nothing", folder=folder) for a in arguments]
    result = run_cli("station", *filled)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
