#!/usr/bin/env bash
# Example: run one trained generator on a plain folder of pictures (the `test` model, single dataset).
# Here the pix2pix facades generator turns the label maps of ./datasets/facades/testB/ into photos.
#
#   bash ./scripts/test_single.sh                          # extra flags are passed on, e.g. --dataroot DIR
#
# Run from the repository root; results go to ./results/facades_pix2pix/test_latest/index.html.
set -euo pipefail
"${PYTHON:-python}" "$(dirname -- "${BASH_SOURCE[0]}")/../test.py" --dataroot ./datasets/facades/testB/ \
    --name facades_pix2pix --model test --netG unet_256 --direction BtoA --dataset_mode single \
    --norm batch "$@"
