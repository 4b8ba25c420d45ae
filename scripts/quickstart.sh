#!/usr/bin/env bash
# Install everything, build the offline demo dataset, train a CycleGAN for a few epochs, test it,
# and print where the result pages are. Runs on a GPU when CUDA is available, else on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."

python=$(bash scripts/install.sh)
[ -d datasets/demo/trainA ] || "$python" datasets/make_demo_dataset.py --out datasets/demo
common=(--dataroot datasets/demo --name demo_cyclegan --model cycle_gan --load_size 72 --crop_size 64)
"$python" train.py "${common[@]}" --n_epochs 3 --n_epochs_decay 2 --display_id 0 \
  --print_freq 12 --display_freq 12 --update_html_freq 24 --save_epoch_freq 5
"$python" test.py "${common[@]}"
echo
echo "Training page: checkpoints/demo_cyclegan/web/index.html"
echo "Test results:  results/demo_cyclegan/test_latest/index.html"
echo "Python used:   $python (activate it with: source .venv/bin/activate, unless you had your own environment active)"
