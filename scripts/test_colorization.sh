#!/usr/bin/env bash
# Example: colour the grey versions of the test pictures with the model trained by train_colorization.sh.
#
#   bash ./scripts/test_colorization.sh                    # extra flags are passed on
#
# Run from the repository root; results go to ./results/color_pix2pix/test_latest/index.html
# (real_A: the grey input, real_B_rgb: the true colours, fake_B_rgb: the generated ones).
set -euo pipefail
"${PYTHON:-python}" "$(dirname -- "${BASH_SOURCE[0]}")/../test.py" --dataroot ./datasets/mini_colorization \
    --name color_pix2pix --model colorization "$@"
