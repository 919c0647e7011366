#!/usr/bin/env bash
# Build the real-PythonQt test harness (PythonQt 3.6.1 + its QtCore/QtGui/QtWidgets wrappers, a
# PythonQt host program, and a CTKAppLauncher "PythonSlicer" launcher).
#
# usage: .ci/build_qt_harness.sh BUILD_DIR
#
# Inputs : <repo>/../shared/tools/qt-harness/{pythonqt-3.6.1.tar.gz,CTKAppLauncher.tar.gz}
#          (override the folder with QT_HARNESS_SRC_DIR), <repo>/Testing/QtHarness/host/,
#          the Python that `python3` resolves to (override with PYTHON=/path/to/python).
# Outputs: BUILD_DIR/bin/qt-python-host   SCRIPT|-m MOD|-c CODE [ARGS]  (PythonQt host, `import qt` works)
#          BUILD_DIR/bin/PythonSlicer     CTKAppLauncher launching that python3 (like Slicer's PythonSlicer)
#          BUILD_DIR/bin/PythonSlicerLauncherSettings.ini
#          BUILD_DIR/lib/libPythonQt*.so* BUILD_DIR/env.sh (optional: puts bin/ on PATH)
# No LD_LIBRARY_PATH / PYTHONPATH / QT_QPA_PLATFORM is needed to run them (RPATHs; the host sets
# QT_QPA_PLATFORM=offscreen itself unless already set).
#
# Idempotent: BUILD_DIR/.stamps/all records the checksums of the archives, the host
# sources, this script, the Python and the Qt version; when they match the build is
# reused at once.  Each component (pythonqt, launcher, host) has its own stamp, so
# editing the host only rebuilds the host.
#
# Knobs (environment): QT_HARNESS_JOBS (default 2), QT_HARNESS_WITH_GUI (default 1: also
# the QtGui/QtWidgets wrappers, ~30 s more; 0: QtCore only), QT_HARNESS_OPT (compiler optimisation for
# PythonQt, default -O0: fastest to compile), QT_HARNESS_NICE (default 10).
set -euo pipefail

if [[ $# -ne 1 || "$1" == -h || "$1" == --help ]]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  [[ $# -eq 1 ]] && exit 0 || exit 2
fi

SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")
REPO_ROOT=$(cd "$(dirname "$SCRIPT_PATH")/.." && pwd)
SRC_DIR=${QT_HARNESS_SRC_DIR:-$REPO_ROOT/../shared/tools/qt-harness}
SRC_DIR=$(cd "$SRC_DIR" && pwd)
PQ_ARCHIVE=$SRC_DIR/pythonqt-3.6.1.tar.gz
AL_ARCHIVE=$SRC_DIR/CTKAppLauncher.tar.gz
HOST_SRC=$REPO_ROOT/Testing/QtHarness/host
mkdir -p "$1"
B=$(cd "$1" && pwd)
JOBS=${QT_HARNESS_JOBS:-2}
NICE=${QT_HARNESS_NICE:-10}
OPT=${QT_HARNESS_OPT:--O0}
WITH_GUI=${QT_HARNESS_WITH_GUI:-1}
# PythonQt_QtAll.pro's own switch.  PythonQtGui = QtGui + QtWidgets + QtPrintSupport
# wrappers.  (Core alone still needs QtWidgets headers: com_trolltech_qt_core3.h
# includes <qwidget.h>, hence QT+=widgets below.)
PYTHONQTALL_CONFIG="PythonQtCore PythonQtGui"
[[ "$WITH_GUI" == 1 ]] || PYTHONQTALL_CONFIG=PythonQtCore
RUN=(nice -n "$NICE")

for f in "$PQ_ARCHIVE" "$AL_ARCHIVE" "$HOST_SRC/CMakeLists.txt" "$HOST_SRC/main.cpp"; do
  [[ -f "$f" ]] || { echo "build_qt_harness: missing input $f" >&2; exit 1; }
done

# ---------------------------------------------------------------- timing
T_START=${EPOCHREALTIME/./}
PHASE=""; PHASE_T=0
TIMINGS=()
us_to_s() { printf '%d.%01d' $(($1 / 1000000)) $((($1 % 1000000) / 100000)); }
phase() { PHASE=$1; PHASE_T=${EPOCHREALTIME/./}; echo "==> [$PHASE] $(date +%T)"; }
phase_done() {
  local d=$((${EPOCHREALTIME/./} - PHASE_T))
  TIMINGS+=("$(printf '%-22s %7ss' "$PHASE" "$(us_to_s $d)")")
  echo "<== [$PHASE] $(us_to_s $d) s"
}
report() {
  echo "---- qt harness timings ----"
  local t; for t in "${TIMINGS[@]}"; do echo "$t"; done
  printf '%-22s %7ss\n' total "$(us_to_s $((${EPOCHREALTIME/./} - T_START)))"
}

# ---------------------------------------------------------------- 1. system packages
APT_PKGS=(qtbase5-dev qtbase5-private-dev qtbase5-dev-tools cmake g++ make)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  phase apt
  SUDO=(); [[ $(id -u) -eq 0 ]] || SUDO=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    "${SUDO[@]}" apt-get update -q
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  phase_done
fi
QMAKE=/usr/lib/qt5/bin/qmake
[[ -x $QMAKE ]] || QMAKE=$(command -v qmake)
QT_VERSION=$("$QMAKE" -query QT_VERSION)

# ---------------------------------------------------------------- python
PYTHON=${PYTHON:-python3}
# sys.executable (not the pyenv shim), X.Y, base prefix, shared-lib flag, full version
read -r PY_EXE PY_VER PY_PREFIX PY_SHARED PY_FULL < <("$PYTHON" -c '
import sys, sysconfig
print(sys.executable, "%d.%d" % sys.version_info[:2], sys.base_prefix,
      sysconfig.get_config_var("Py_ENABLE_SHARED"), sys.version.split()[0])')
PY_CONFIG=$PY_PREFIX/bin/python$PY_VER-config
[[ "$PY_SHARED" == 1 ]] || { echo "build_qt_harness: $PY_EXE has no shared libpython (build it with --enable-shared)" >&2; exit 1; }
[[ -x "$PY_CONFIG" ]] || { echo "build_qt_harness: $PY_CONFIG not found" >&2; exit 1; }

# ---------------------------------------------------------------- stamps
sha() { sha256sum "$@" | cut -d' ' -f1; }
PQ_KEY="recipe=1 pq=$(sha "$PQ_ARCHIVE") py=$PY_EXE:$PY_FULL qt=$QT_VERSION opt=$OPT cfg=$PYTHONQTALL_CONFIG"
AL_KEY="recipe=1 al=$(sha "$AL_ARCHIVE") qt=$QT_VERSION"
HOST_KEY="recipe=1 host=$(cd "$HOST_SRC" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1) [$PQ_KEY]"
ALL_KEY="script=$(sha "$SCRIPT_PATH") [$PQ_KEY] [$AL_KEY] [$HOST_KEY]"
STAMPS=$B/.stamps
mkdir -p "$STAMPS"
up_to_date() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }

PRODUCTS=("$B/bin/qt-python-host" "$B/bin/PythonSlicer" "$B/bin/PythonSlicerLauncherSettings.ini")
if up_to_date all "$ALL_KEY" && ls "${PRODUCTS[@]}" >/dev/null 2>&1; then
  echo "build_qt_harness: $B is up to date (stamp matches)"
  report
  exit 0
fi
rm -f "$STAMPS/all"

unpack() { # archive dest
  rm -rf "$2"; mkdir -p "$2"
  tar -xzf "$1" -C "$2" --strip-components=1
}

# ---------------------------------------------------------------- 2. PythonQt (+ QtCore wrappers)
PQ_SRC=$B/src/pythonqt-3.6.1
PQ_BUILD=$B/pythonqt
if ! up_to_date pythonqt "$PQ_KEY" || [[ ! -d $PQ_SRC ]]; then
  rm -f "$STAMPS/pythonqt" "$STAMPS/host"
  phase pythonqt-unpack
  unpack "$PQ_ARCHIVE" "$PQ_SRC"
  rm -rf "$PQ_BUILD"; mkdir -p "$PQ_BUILD/src" "$PQ_BUILD/extensions/PythonQt_QtAll"
  phase_done

  phase pythonqt-qmake
  # Assignments before -after are seen by the .pro files (PYTHONQTALL_CONFIG picks the
  # wrapper modules: the real switch of PythonQt_QtAll.pro); those after it override
  # the mkspec's -O2 and the (very chatty) warning flags.
  QMAKE_ARGS=(PYTHON_VERSION="$PY_VER" PYTHON_DIR="$PY_PREFIX" "PYTHONQTALL_CONFIG=$PYTHONQTALL_CONFIG"
              CONFIG+=release CONFIG-=debug CONFIG-=debug_and_release
              -after "QMAKE_CXXFLAGS_RELEASE=$OPT" "QMAKE_CFLAGS_RELEASE=$OPT"
              "QMAKE_CXXFLAGS_WARN_ON=-w" "QMAKE_CFLAGS_WARN_ON=-w" "QT+=widgets")
  (cd "$PQ_BUILD/src" && "$QMAKE" "$PQ_SRC/src/src.pro" "${QMAKE_ARGS[@]}" > /dev/null)
  (cd "$PQ_BUILD/extensions/PythonQt_QtAll" &&
     "$QMAKE" "$PQ_SRC/extensions/PythonQt_QtAll/PythonQt_QtAll.pro" "${QMAKE_ARGS[@]}")
  # One jobserver for both libraries: the wrapper objects compile while the core
  # library is still building; only the final QtAll link waits for libPythonQt.
  printf 'print-objects:\n\t@echo $(OBJECTS)\n' > "$PQ_BUILD/print-objects.mk"
  QTALL_OBJS=$(make -s -C "$PQ_BUILD/extensions/PythonQt_QtAll" -f Makefile -f "$PQ_BUILD/print-objects.mk" print-objects)
  cat > "$PQ_BUILD/Makefile" <<EOF
.PHONY: all core qtall-objects
all: core qtall-objects
	\$(MAKE) -C extensions/PythonQt_QtAll
core:
	\$(MAKE) -C src
qtall-objects:
	\$(MAKE) -C extensions/PythonQt_QtAll $QTALL_OBJS
EOF
  phase_done

  phase pythonqt-compile
  "${RUN[@]}" make -C "$PQ_BUILD" -j"$JOBS" -s
  phase_done
  echo "$PQ_KEY" > "$STAMPS/pythonqt"
fi

# ---------------------------------------------------------------- 3. CTKAppLauncher
AL_SRC=$B/src/CTKAppLauncher
AL_BUILD=$B/launcher-build
if ! up_to_date launcher "$AL_KEY" || [[ ! -x $AL_BUILD/bin/CTKAppLauncher ]]; then
  rm -f "$STAMPS/launcher"
  phase launcher-configure
  unpack "$AL_ARCHIVE" "$AL_SRC"
  # The archive is not a git checkout and ctkVersionSource.cmake insists on one:
  # pin the version suffix to the commit the archive was made from (README).
  echo 'set(CTKAppLauncher_VERSION_SOURCE "gdcb7a7e")' > "$AL_SRC/CMake/ctkVersionSource.cmake"
  rm -rf "$AL_BUILD"
  cmake -S "$AL_SRC" -B "$AL_BUILD" -G "Unix Makefiles" -Wno-dev \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" \
    -DBUILD_TESTING=OFF -DCTKAppLauncher_QT_VERSION=5 > "$B/launcher-configure.log"
  phase_done
  phase launcher-compile
  "${RUN[@]}" cmake --build "$AL_BUILD" -- -j"$JOBS" -s
  phase_done
  echo "$AL_KEY" > "$STAMPS/launcher"
fi

# ---------------------------------------------------------------- 4. host
HOST_BUILD=$B/host-build
if ! up_to_date host "$HOST_KEY" || [[ ! -x $HOST_BUILD/qt-python-host ]]; then
  rm -f "$STAMPS/host"
  phase host
  rm -rf "$HOST_BUILD"
  cmake -S "$HOST_SRC" -B "$HOST_BUILD" -G "Unix Makefiles" -Wno-dev \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" \
    -DCMAKE_INSTALL_PREFIX="$B" \
    -DPYTHONQT_SOURCE_DIR="$PQ_SRC" -DPYTHONQT_LIBRARY_DIR="$PQ_BUILD/lib" \
    -DPython3_EXECUTABLE="$PY_EXE" -DQT_PYTHON_HOST_WITH_GUI="$([[ $WITH_GUI == 1 ]] && echo ON || echo OFF)" \
    > "$B/host-configure.log"
  "${RUN[@]}" cmake --build "$HOST_BUILD" -- -j"$JOBS" -s
  phase_done
  echo "$HOST_KEY" > "$STAMPS/host"
fi

# ---------------------------------------------------------------- 5. install + launcher settings + check
phase install-check
mkdir -p "$B/bin" "$B/lib"
rm -f "$B"/lib/libPythonQt*
cp -a "$PQ_BUILD"/lib/libPythonQt*.so* "$B/lib/"
cmake --install "$HOST_BUILD" --prefix "$B" > /dev/null
cp -f "$AL_BUILD/bin/CTKAppLauncher" "$B/bin/PythonSlicer"
PY_LIBDIR=$("$PY_EXE" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')
# Like Slicer's PythonSlicerLauncherSettings.ini (there path=.../bin/python-real).
cat > "$B/bin/PythonSlicerLauncherSettings.ini" <<EOF
[General]
launcherNoSplashScreen=true
launcherSplashImagePath=
launcherSplashScreenHideDelayMs=
additionalLauncherHelpShortArgument=
additionalLauncherHelpLongArgument=
additionalLauncherNoSplashArguments=

[Application]
path=$PY_EXE
arguments=
name=PythonSlicer
revision=
organizationDomain=
organizationName=

[ExtraApplicationToLaunch]

[Environment]
additionalPathVariables=PYTHONPATH

[LibraryPaths]
1\\path=$PY_LIBDIR
size=1

[Paths]
1\\path=$(dirname "$PY_EXE")
size=1

[EnvironmentVariables]
PYTHONNOUSERSITE=1

[PYTHONPATH]
size=0
EOF
cat > "$B/env.sh" <<EOF
# source me: puts the harness binaries on PATH (nothing else is required)
export PATH="$B/bin:\$PATH"
EOF
out=$("$B/bin/qt-python-host" -c 'import sys, qt; print(qt.QProcess.__name__, qt.QTimer.__name__, sys.version_info[:2])')
[[ "$out" == "QProcess QTimer (3, ${PY_VER#3.})" ]] || { echo "build_qt_harness: host check failed: $out" >&2; exit 1; }
out=$("$B/bin/PythonSlicer" -c 'import sys; print(sys.executable)')
[[ "$out" == "$PY_EXE" ]] || { echo "build_qt_harness: launcher check failed: $out" >&2; exit 1; }
phase_done

echo "$ALL_KEY" > "$STAMPS/all"
echo "build_qt_harness: done -> $B/bin/qt-python-host, $B/bin/PythonSlicer"
report
