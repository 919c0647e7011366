"""The review station without a browser: its list, navigation, decisions (only on the case on screen),
access rules (token strength, throttle, host and origin checks) and command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ConfidenceSegLib.contract import DECISIONS_CSV, ConfidenceSegError
from ConfidenceSegLib.outputs.decisions import load_decisions
from ConfidenceSegLib.outputs.review_table import review_csv
from ConfidenceSegLib.station.access import (
    Access,
    Throttle,
    check_token,
    folder_path,
    is_loopback,
    station_token,
    station_url,
)
from ConfidenceSegLib.station.cohort import Cohort, decision_target

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


def test_a_decision_goes_only_to_the_case_and_frame_on_screen():
    assert decision_target("r1/head", "r1/head", 0, "r1/head", 0) == "r1/head"
    assert decision_target("s/head", "s/head", 2, "s/head", 2) == "s/head"
    refused = [(("r1/head", "r1/head", 0, "r2/head", 0), "the view shows r2/head"),  # the view moved on
               (("r2/head", "r1/head", 0, "r1/head", 0), "for r2/head"),  # another row picked, not shown yet
               (("s/head", "s/head", 1, "s/head", 2), "frame 2"),
               (("s/head", "s/head", None, "s/head", 0), "frame 0"),
               (("p1/head", None, None, None, None, "cannot show p1/head: file not found"), "cannot show p1/head")]
    for arguments, reason in refused:
        with pytest.raises(ConfidenceSegError, match="no decision recorded") as error:
            decision_target(*arguments)
        assert reason in str(error.value), (arguments, str(error.value))


def test_tokens_are_always_required_random_by_default_and_strong_when_given():
    generated = {station_token(None) for _ in range(3)}
    assert len(generated) == 3 and all(len(token) >= 43 for token in generated)
    for strong in ("0123456789abcdef0123456789abcdef", "Zx8-pQ2_mN7rT4vW1yK9sB", "a-long-enough-test-token+0123/="):
        assert station_token(strong) == check_token(strong) == strong
    for weak in ("short", "x" * 40, "abababababababababababab", "abcdefghijklmnopqrstuv", "0123456789012345678901234",
                 "ab cdefghijklmnopqrstuvwxyz0123", "äbcdefghijklmnopqrstuvwxyz0123"):
        with pytest.raises(ConfidenceSegError, match="--token"):
            station_token(weak)
    assert station_url("127.0.0.1", 8601, "a+b/c=d e") == "http://127.0.0.1:8601/?token=a%2Bb%2Fc%3Dd%20e"
    assert station_url("::1", 80, "t").startswith("http://[::1]:80/")


def test_wrong_tokens_are_throttled_per_address_then_let_through_again():
    now = [0.0]
    throttle = Throttle(limit=5, window_s=10, lockout_s=10, clock=lambda: now[0])
    for n in range(4):
        throttle.record_wrong("10.0.0.1", f"guess{n}")
        throttle.record_wrong("10.0.0.1", "guess0")  # the same wrong token again counts once
    assert not throttle.seconds_locked("10.0.0.1")
    throttle.record_wrong("10.0.0.1", "guess4")
    assert throttle.seconds_locked("10.0.0.1") == 10 and not throttle.seconds_locked("10.0.0.2")
    now[0] = 10.5
    assert not throttle.seconds_locked("10.0.0.1")
    for n in range(4):  # guesses spread wider than the window never lock
        now[0] += 5
        throttle.record_wrong("10.0.0.2", f"slow{n}")
        throttle.record_wrong("10.0.0.2", f"slow{n}b")
    assert not throttle.seconds_locked("10.0.0.2")


class Request:
    """Just what :meth:`Access.refusal` reads of an aiohttp request."""

    def __init__(self, host, origin=None, token=None, cookie=None, remote="127.0.0.1"):
        self.headers = {"Host": host, **({"Origin": origin} if origin else {})}
        self.query = {"token": token} if token is not None else {}
        self.cookies = {"confidenceseg_station_8601": cookie} if cookie is not None else {}
        self.remote = remote


def test_only_the_stations_own_host_and_origin_pass():
    token = "0123456789abcdef0123456789abcdef"
    loopback = Access.for_host("127.0.0.1", "127.0.0.1", token, ["https://qc.example.org"])
    assert loopback.refusal(Request("127.0.0.1:8601", token=token), 8601) is None
    assert loopback.refusal(Request("localhost:8601", "http://localhost:8601", cookie=loopback.cookie_value()),
                            8601) is None
    assert loopback.refusal(Request("qc.example.org", "https://qc.example.org", token=token), 8601) is None
    for host, origin in (("evil.example:8601", None), ("127.0.0.1:8602", None), ("127.0.0.1:8601", "http://evil.example"),
                         ("127.0.0.1:8601", "null"), ("127.0.0.1:8601", "http://127.0.0.1:8602"), ("", None)):
        assert loopback.refusal(Request(host, origin, token=token), 8601)[0] == 403, (host, origin)
    assert loopback.refusal(Request("127.0.0.1:8601"), 8601)[0] == 403
    assert loopback.refusal(Request("127.0.0.1:8601", cookie=token), 8601)[0] == 403  # the cookie holds no token
    assert is_loopback("::1") and is_loopback("localhost") and not is_loopback("0.0.0.0")
    remote = Access.for_host("10.1.2.3", "10.1.2.3", token)
    assert remote.refusal(Request("10.1.2.3:8601", token=token), 8601) is None
    assert remote.refusal(Request("localhost:8601", token=token), 8601)[0] == 403
    wildcard = Access.for_host("0.0.0.0", "qc-host", token)
    assert wildcard.refusal(Request("qc-host:8601", "http://qc-host:8601", token=token), 8601) is None
    assert remote.secret != wildcard.secret and len(remote.secret) >= 43


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
    (["--review", "{folder}", "--token", "short"], "--token is too weak"),
    (["--review", "{folder}", "--token", "x" * 40], "--token is too weak"),
    (["--review", "{folder}", "--origin", "ftp://qc.example.org/x"], "--origin must look like"),
])
def test_bad_arguments_get_one_line_and_exit_2(folder, tmp_path, arguments, message):
    filled = [a.format(missing=tmp_path / "nothing", folder=folder) for a in arguments]
    result = run_cli("station", *filled)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
