"""Start-up time of the command line: ``--help``, a missing-file error and ``station --help``.

Each command runs as a fresh process ``--runs`` times; prints the minimum and median wall time. No
heavy module may load for these (``Testing/Python/test_startup.py`` checks that; the times are
measured here, never asserted in tests).

    python benchmarks/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "confidenceseg --help": ["--help"],
    "predict with a missing input": ["predict", "--model", "fetal_head", "--input", "missing.nrrd", "--out", "out"],
    "station --help": ["station", "--help"],
}


def wall_times(arguments: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ConfidenceSegLib", *arguments], capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print("| command | min s | median s |\n|---|---:|---:|")
    for label, arguments in COMMANDS.items():
        times = wall_times(arguments, args.runs)
        print(f"| {label} | {min(times):.2f} | {statistics.median(times):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
