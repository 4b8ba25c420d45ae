#!/usr/bin/env bash
# Example: train pix2pix on facades, from label maps (B) to photos (A).
#
#   bash ./datasets/download_pix2pix_dataset.sh facades   # once
#   bash ./scripts/train_pix2pix.sh                        # extra flags are passed on, e.g. --gpu_ids -1
#
# Run from the repository root; checkpoints go to ./checkpoints/facades_pix2pix/.
set -euo pipefail
"${PYTHON:-python}" "$(dirname -- "${BASH_SOURCE[0]}")/../train.py" --dataroot ./datasets/facades \
    --name facades_pix2pix --model pix2pix --netG unet_256 --direction BtoA --lambda_L1 100 \
    --dataset_mode aligned --norm batch --pool_size 0 "$@"
