#!/usr/bin/env bash
# What the test suite needs beyond pip, on a fresh Debian/Ubuntu machine (the README's test command runs it):
#  - Chromium, for the browser tests (the batch QC page, the review station);
#  - the real-PythonQt harness (PythonQt 3.6.1 + Qt 5.15 + CTKAppLauncher, built from
#    ../shared/tools/qt-harness), for the Slicer module's Qt tests (Testing/QtHarness). The build is
#    kept in $CONFIDENCESEG_QT_HARNESS (default ~/.cache/confidenceseg/qt-harness) and reused while its
#    inputs are unchanged (about 2 minutes on 2 cores the first time, a second afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=(); [[ $(id -u) -eq 0 ]] || SUDO=(sudo)
if ! command -v chromium >/dev/null 2>&1; then
  echo "prepare: installing chromium (browser tests)"
  { "${SUDO[@]}" apt-get install -y -q chromium || { "${SUDO[@]}" apt-get update -q && "${SUDO[@]}" apt-get install -y -q chromium; }; } \
    >/dev/null
fi

harness=${CONFIDENCESEG_QT_HARNESS:-$HOME/.cache/confidenceseg/qt-harness}
echo "prepare: real-PythonQt harness in $harness"
bash .ci/build_qt_harness.sh "$harness" | tail -n 12
