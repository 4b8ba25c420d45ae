#!/usr/bin/env bash
# Example: train the colorization model (pix2pix from the Lab lightness L to the colours ab) on natural
# RGB pictures; no A|B pairs are needed, each picture is split into L and ab when it is loaded.
#
#   bash ./datasets/download_cyclegan_dataset.sh mini_colorization   # once
#   bash ./scripts/train_colorization.sh                              # extra flags are passed on, e.g. --gpu_ids -1
#
# Run from the repository root; checkpoints go to ./checkpoints/color_pix2pix/.
set -euo pipefail
"${PYTHON:-python}" "$(dirname -- "${BASH_SOURCE[0]}")/../train.py" --dataroot ./datasets/mini_colorization \
    --name color_pix2pix --model colorization "$@"
