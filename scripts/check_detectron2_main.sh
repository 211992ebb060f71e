#!/usr/bin/env bash
# Runs wsis-d2's test suite against a given detectron2 checkout (e.g. current main), in a throw-away venv.
#
#   bash scripts/check_detectron2_main.sh SRC_DIR [-- PYTEST_ARGS...]
#
# SRC_DIR is a detectron2 source tree (the folder holding detectron2/ and setup.py), e.g.
#   git clone https://github.com/facebookresearch/detectron2 /tmp/d2-main
#   (or from a bare mirror: git --git-dir=MIRROR archive HEAD | tar -x -C /tmp/d2-main)
#
# As scripts/install.sh does for v0.6: the same torch pins, detectron2's runtime dependencies installed
# directly, its Python sources installed without the C++ extension and with scripts/detectron2_C_fallback.py
# as detectron2/_C.py; then wsis_d2[dev] (editable) and pytest in the repository root. The venv lives in a
# temporary folder removed at the end (keep it with KEEP_VENV=1; choose it with CHECK_VENV=DIR).
# The last line is pytest's summary (counts of passed / failed / skipped).
set -euo pipefail

if [[ $# -lt 1 || ! -d "$1/detectron2" ]]; then
  echo "usage: $0 SRC_DIR [-- PYTEST_ARGS...]   (SRC_DIR: a detectron2 checkout holding detectron2/)" >&2
  exit 2
fi
SRC="$(cd "$1" && pwd)"
shift
[[ "${1:-}" == "--" ]] && shift
PYTEST_ARGS=("$@")

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE_PYTHON="${PYTHON:-python3}"
TORCH_PINS=("torch==2.14.1" "torchvision==0.29.1")
# detectron2 main's install_requires without black (a formatter) and with the bounds it sets; main still
# imports pkg_resources (setuptools<80) but no longer needs Pillow<10
D2_DEPS=("setuptools<80" "Pillow>=7.1" "matplotlib" "pycocotools>=2.0.2" "termcolor>=1.1" "yacs>=0.1.8"
  "tabulate" "cloudpickle" "tqdm>4.29.0" "tensorboard" "fvcore>=0.1.5,<0.1.6" "iopath>=0.1.7,<0.1.10"
  "omegaconf>=2.1,<2.4" "hydra-core>=1.1" "packaging")

WORK="$(mktemp -d)"
VENV="${CHECK_VENV:-$WORK/venv}"
cleanup() { [[ "${KEEP_VENV:-0}" == "1" ]] && echo "kept $WORK" || rm -rf "$WORK"; }
trap cleanup EXIT
START=$(date +%s)
step() { echo "==> [$(( $(date +%s) - START ))s] $1"; }
pip_install() {
  "$PY" -m pip install --disable-pip-version-check -q "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  return "${PIPESTATUS[0]}"
}

step "throw-away venv $VENV"
"$BASE_PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"

step "install ${TORCH_PINS[*]} and detectron2's runtime dependencies"
pip_install "${TORCH_PINS[@]}" "${D2_DEPS[@]}"

VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$SRC/detectron2/__init__.py")"
COMMIT="$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo "no git")"
step "install detectron2 $VERSION from $SRC ($COMMIT): Python sources, no C++ extension"
BUILD="$WORK/detectron2-build"
mkdir -p "$BUILD"
cp -r "$SRC/detectron2" "$BUILD/detectron2"
rm -f "$BUILD"/detectron2/_C*.so
cp "$ROOT/scripts/detectron2_C_fallback.py" "$BUILD/detectron2/_C.py"
# model_zoo reads its configs from inside the package, as detectron2's own setup.py arranges
if [[ -d "$SRC/configs" && ! -e "$BUILD/detectron2/model_zoo/configs" ]]; then
  cp -r "$SRC/configs" "$BUILD/detectron2/model_zoo/configs"
fi
cat > "$BUILD/setup.py" <<PYEOF
from setuptools import find_packages, setup

setup(
    name="detectron2",
    version="$VERSION",
    description="detectron2 Python sources of $SRC ($COMMIT) without the C++ extension",
    packages=find_packages(include=["detectron2", "detectron2.*"]),
    package_data={"detectron2.model_zoo": ["configs/*.yaml", "configs/**/*.yaml", "configs/**/*.py"]},
    include_package_data=True,
)
PYEOF
pip_install --no-deps --no-build-isolation "$BUILD"

step "install wsis_d2[dev] from $ROOT"
pip_install --no-build-isolation -c <(printf '%s\n' "setuptools<80") -e "$ROOT[dev]"
"$PY" -c "import torch, detectron2, wsis_d2; from detectron2 import _C; print('    torch', torch.__version__, '| detectron2', detectron2.__version__, detectron2.__file__, '| _C fallback:', getattr(_C, 'IS_WSIS_FALLBACK', False))"

step "pytest ${PYTEST_ARGS[*]:-} in $ROOT"
cd "$ROOT"
set +e
PYTHONPATH="$ROOT" "$PY" -m pytest -q -p no:cacheprovider "${PYTEST_ARGS[@]}" 2>&1 | tee "$WORK/pytest.log" | tail -40
RC=${PIPESTATUS[0]}
set -e
echo "==> [$(( $(date +%s) - START ))s] detectron2 $VERSION ($COMMIT): $(tail -1 "$WORK/pytest.log")"
exit "$RC"
