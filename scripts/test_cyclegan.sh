#!/usr/bin/env bash
# Example: translate the maps test set with the CycleGAN trained by train_cyclegan.sh.
#
#   bash ./scripts/test_cyclegan.sh                        # extra flags are passed on, e.g. --num_test 100
#
# Run from the repository root; results go to ./results/maps_cyclegan/test_latest/index.html.
set -euo pipefail
"${PYTHON:-python}" "$(dirname -- "${BASH_SOURCE[0]}")/../test.py" --dataroot ./datasets/maps \
    --name maps_cyclegan --model cycle_gan --phase test --no_dropout "$@"
