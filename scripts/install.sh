#!/usr/bin/env bash
# Install the pinned requirements (add --test for the test tools too) and print the Python to use.
# Installs into the active virtualenv/conda environment if there is one, otherwise into ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ]; then
  python=python
else
  [ -x .venv/bin/python ] || python3 -m venv .venv
  python=.venv/bin/python
fi
{
  "$python" -m pip install -q -U pip
  # visdom 0.2.4 is a source package whose build needs setuptools<81, so build without isolation.
  "$python" -m pip install -q "setuptools<81" wheel
  "$python" -m pip install -q --no-build-isolation -r requirements.txt
  if [ "${1:-}" = "--test" ]; then
    "$python" -m pip install -q -r requirements-test.txt
  fi
} >&2
echo "$python"
