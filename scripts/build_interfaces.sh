#!/usr/bin/env bash
# Builds the interfaces in msg/ against the ROS 2 wheels of a virtual environment (no ROS
# install needed) and installs them into it, so that `import hydranet_ros.msg` works there.
#
#   bash scripts/build_interfaces.sh [VENV]      (default: .venv)
#
# Only the generated interfaces are installed into <VENV>/lib/pythonX.Y/site-packages/hydranet_ros;
# the hand-written package stays in the source tree (installed in editable mode), and the
# repository's hydranet_ros/__init__.py, which extends the package path, is copied over the
# generated one so both halves import as one package. launch/ and config/ are linked into
# <VENV>/share/hydranet_ros. Rerunning it only rebuilds what changed.
# On a ROS 2 install use colcon instead: `colcon build --packages-select hydranet_ros`.
set -euo pipefail

step() { printf '[build_interfaces] %s\n' "$*"; }
fail() { printf '[build_interfaces] ERROR: %s\n' "$*" >&2; exit 1; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_ARG="${1:-.venv}"
[ -d "$VENV_ARG" ] || VENV_ARG="$ROOT/$VENV_ARG"
[ -d "$VENV_ARG" ] || fail "virtual environment '${1:-.venv}' not found (create it with: make setup)"
VENV="$(cd "$VENV_ARG" && pwd)"
PY="$VENV/bin/python"
BUILD_DIR="$ROOT/build/interfaces"

for tool in cmake ninja c++; do
  command -v "$tool" >/dev/null || fail "'$tool' not found (run: bash scripts/install_system_packages.sh)"
done
[ -x "$PY" ] || fail "$PY not found"
[ -d "$VENV/share/rosidl_default_generators" ] \
  || fail "ROS 2 interface generators missing in $VENV (run: $PY -m pip install -r requirements-ros.txt)"

SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export PATH="$VENV/bin:$PATH"

started=$SECONDS
cache="$BUILD_DIR/CMakeCache.txt"
if [ -f "$cache" ] && grep -qx "CMAKE_INSTALL_PREFIX:PATH=$VENV" "$cache" \
    && grep -qx "HYDRANET_INSTALL_PYTHON_SOURCES:BOOL=OFF" "$cache" \
    && grep -qx "HYDRANET_PYTHON_INTERPRETER:STRING=$PY" "$cache"; then
  step "configured already in ${BUILD_DIR#"$ROOT"/} (CMake reconfigures itself when needed)"
else
  step "configuring in ${BUILD_DIR#"$ROOT"/} against $VENV"
  rm -rf "$BUILD_DIR"
  mkdir -p "$BUILD_DIR"
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja --log-level=WARNING \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$VENV" \
    -DPython3_EXECUTABLE="$PY" \
    -DPython3_FIND_VIRTUALENV=ONLY \
    -DBUILD_TESTING=OFF \
    -DHYDRANET_INSTALL_PYTHON_SOURCES=OFF \
    -DHYDRANET_LINK_SHARE_DIRECTORIES=ON \
    -DHYDRANET_PYTHON_INTERPRETER="$PY" \
    >"$BUILD_DIR/configure.log" 2>&1 \
    || { tail -n 40 "$BUILD_DIR/configure.log" >&2; fail "configure failed (log: $BUILD_DIR.configure.log)"; }
fi

step 'building'
cmake --build "$BUILD_DIR" >"$BUILD_DIR/build.log" 2>&1 \
  || { tail -n 40 "$BUILD_DIR/build.log" >&2; fail "build failed (log: $BUILD_DIR/build.log)"; }

step "installing into $VENV"
cmake --install "$BUILD_DIR" >"$BUILD_DIR/install.log" 2>&1 \
  || { tail -n 40 "$BUILD_DIR/install.log" >&2; fail "install failed (log: $BUILD_DIR/install.log)"; }
installed="$SITE/hydranet_ros"
[ -d "$installed/msg" ] || fail "generated package missing: $installed/msg"
# Both halves of the package must extend their path: the repository's __init__.py does.
cp "$ROOT/hydranet_ros/__init__.py" "$installed/__init__.py"
# The generator's metadata would shadow the editable install's (same distribution name).
rm -rf "$SITE"/hydranet_ros-*.egg-info

step 'checking imports'
check_imports() {
  (cd "$1" && "$PY" - "$ROOT" "$installed" <<'EOF'
import os
import sys

import hydranet_ros
import hydranet_ros.msg as msg

root, installed = sys.argv[1:]
paths = [os.path.realpath(p) for p in hydranet_ros.__path__]
source = os.path.realpath(os.path.join(root, 'hydranet_ros'))
assert os.path.realpath(installed) in paths, f'generated package not on {paths}'
for name in ('SegmentationClass', 'LabelInfo', 'DepthSegmentation'):
    getattr(msg, name)()
if source not in paths:
    sys.exit(f'source tree not on hydranet_ros.__path__ {paths}: install it in editable mode')
EOF
  )
}
check_imports "$ROOT" || fail 'import check from the repository root failed'
outside="$(mktemp -d)"
if check_imports "$outside"; then
  rmdir "$outside"
  step 'hydranet_ros.msg and the source package import together from any directory'
else
  rmdir "$outside"
  step "WARNING: outside the repository only the generated half imports; install the source" \
    "tree with: $PY -m pip install --no-deps -e . --config-settings editable_mode=compat"
fi
step "done in $((SECONDS - started)) s"
