#!/usr/bin/env bash
# Example: translate the facades test set with the pix2pix model trained by train_pix2pix.sh.
#
#   bash ./scripts/test_pix2pix.sh                         # extra flags are passed on
#
# Run from the repository root; results go to ./results/facades_pix2pix/test_latest/index.html.
set -euo pipefail
"${PYTHON:-python}" "$(dirname -- "${BASH_SOURCE[0]}")/../test.py" --dataroot ./datasets/facades \
    --name facades_pix2pix --model pix2pix --netG unet_256 --direction BtoA --dataset_mode aligned \
    --norm batch "$@"
