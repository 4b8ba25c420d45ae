#!/usr/bin/env bash
# Example: train CycleGAN on the maps dataset (satellite photos <-> maps).
#
#   bash ./datasets/download_cyclegan_dataset.sh maps     # once
#   bash ./scripts/train_cyclegan.sh                       # extra flags are passed on, e.g. --gpu_ids -1
#
# Run from the repository root; checkpoints go to ./checkpoints/maps_cyclegan/.
set -euo pipefail
"${PYTHON:-python}" "$(dirname -- "${BASH_SOURCE[0]}")/../train.py" --dataroot ./datasets/maps \
    --name maps_cyclegan --model cycle_gan --pool_size 50 --no_dropout "$@"
