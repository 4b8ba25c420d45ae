#!/usr/bin/env bash
# Install the pinned requirements and the test tools, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

python=$(bash scripts/install.sh --test)
"$python" -m pytest -q tests "$@"
