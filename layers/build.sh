#!/usr/bin/env bash
# Build the Lambda layers serverless.yml deploys: layers/build/<name>.zip for every
# layers/<name>/requirements.txt, then print unzipped sizes against Lambda's 250 MiB limit.
#
# Wheels are fetched for Lambda's platform, not this machine's: CPython 3.12 on x86_64
# Amazon Linux 2023 (glibc 2.34). manylinux_2_28 is needed, not just manylinux2014:
# av 18.1.0 and numpy 2.4.6 ship no manylinux2014 wheel for it. --only-binary makes
# a missing wheel an error instead of a source build for the wrong platform.
#
# Reproducible: exact pins (checked against what pip installed), no scripts, .pyc
# compiled by a CPython 3.12 with unchecked-hash invalidation (no timestamps) and /opt
# paths, and zips with sorted entries and fixed dates. Same pins => same zip bytes.
#
# Usage: bash layers/build.sh [--if-stale]
#   --if-stale  do nothing when every zip is newer than its requirements and this
#               script (what `sls package`/`sls deploy` run, via plugins/build-layers.js).
# Env: PYTHON runs pip (default python3); PY312 compiles .pyc (default: python3.12 if
# one is installed; without it the layer still works, Lambda just compiles at import).
# LAYERS="media" builds a subset.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
BUILD="layers/build"
LAYERS="${LAYERS:-$(for r in layers/*/requirements.txt; do basename "$(dirname "$r")"; done)}"

# One build at a time in a checkout (tests and a deploy may ask at once); whoever waited
# re-checks staleness, so the second one does not rebuild. mkdir is atomic everywhere (macOS
# has no flock(1)); a lock older than 15 minutes is a crashed build's and is taken over.
mkdir -p "$BUILD"
LOCK="$BUILD/.lock.d"
waited=0
until mkdir "$LOCK" 2>/dev/null; do
  if [[ $waited -ge 900 ]]; then
    echo "layers/build.sh: taking over a lock held for 15 minutes ($LOCK)" >&2
    rm -rf "$LOCK"
    waited=0
    continue
  fi
  sleep 1
  waited=$((waited + 1))
done
trap 'rm -rf "$LOCK"' EXIT

stale() {
  local name input
  for name in $LAYERS; do
    [[ -f "$BUILD/$name.zip" ]] || return 0
    for input in layers/"$name"/requirements*.txt layers/build.sh layers/layertool.py; do
      [[ "$input" -nt "$BUILD/$name.zip" ]] && return 0
    done
  done
  return 1
}

if [[ "${1:-}" == "--if-stale" ]]; then
  if ! stale; then
    echo "layers up to date: $(for n in $LAYERS; do printf '%s ' "$BUILD/$n.zip"; done)"
    exit 0
  fi
  echo "layers missing or older than their inputs: building"
elif [[ $# -gt 0 ]]; then
  echo "usage: bash layers/build.sh [--if-stale]" >&2
  exit 2
fi
PIP_PLATFORM=(--platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64
  --only-binary=:all: --python-version 3.12 --implementation cp)

is_py312() { [[ -n "$1" ]] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; }
if [[ -z "${PY312:-}" ]]; then
  # A pyenv shim answers to python3.12 even when 3.12 is not the selected version.
  for candidate in "$(command -v python3.12 || true)" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12; do
    if is_py312 "$candidate"; then PY312="$candidate"; break; fi
  done
fi
is_py312 "${PY312:-}" || PY312=""

start=$(date +%s)
zips=()
for name in $LAYERS; do
  req="layers/$name/requirements.txt"
  site="$BUILD/$name/python"
  echo "layer $name: pip install -r $req (cp312 manylinux x86_64)"
  rm -rf "${BUILD:?}/$name" "$BUILD/$name.zip"
  mkdir -p "$site"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-warn-conflicts --no-compile \
    "${PIP_PLATFORM[@]}" --target "$site" -r "$req"
  # A distribution whose declared dependencies must not be taken (layers/<name>/
  # requirements-nodeps.txt, e.g. norfair's numpy<2): installed after, without them.
  pins="$req"
  nodeps="layers/$name/requirements-nodeps.txt"
  if [[ -f "$nodeps" ]]; then
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-warn-conflicts --no-compile --no-deps \
      "${PIP_PLATFORM[@]}" --target "$site" -r "$nodeps"
    pins="$BUILD/$name.pins.txt"
    cat "$req" "$nodeps" >"$pins"
  fi
  # Console scripts carry this machine's interpreter path and are useless in Lambda.
  rm -rf "$site/bin"
  "$PYTHON" layers/layertool.py check-pins "$pins" "$site"
  # Packages' own test suites (numpy, SciPy: about 41 MiB of the tracking layer) are never
  # imported in Lambda: headroom under the 250 MB limit instead.
  "$PYTHON" layers/layertool.py prune-tests "$site"
  if [[ -n "$PY312" ]]; then
    # Lambda mounts layers read-only under /opt: without shipped .pyc every cold start
    # recompiles. -s/-p record /opt/python paths in tracebacks instead of this checkout's.
    "$PY312" -m compileall -q --invalidation-mode unchecked-hash \
      -s "$site" -p /opt/python "$site" >/dev/null
  else
    echo "  (no python3.12 here: layer ships without .pyc; set PY312 to add them)"
  fi
  "$PYTHON" layers/layertool.py zip "$BUILD/$name" "$BUILD/$name.zip"
  zips+=("$BUILD/$name.zip")
done
echo "built ${#zips[@]} layer(s) in $(( $(date +%s) - start )) s"
"$PYTHON" layers/layertool.py measure "${zips[@]}"
