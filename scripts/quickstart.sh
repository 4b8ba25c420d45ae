#!/usr/bin/env bash
# Install everything, build the offline demo dataset (its test pairs have ground truth), train a
# CycleGAN with the recommended configuration, test it, and print its test PSNR against the truth next
# to the PSNR of returning the input unchanged. Runs on a GPU when CUDA is available, else on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."

# The recommended configuration: its measured evidence (and its known artefacts) is README.md's "Recommended configuration".
RECOMMENDED=(--upsample resize --affine_output --lambda_identity 0 --ema_decay 0.999)

python=$(bash scripts/install.sh)
# Rebuilt every time (a few seconds, the same files): an older demo set's test pairs have no ground truth.
# 200 training pictures per domain: with the default 24, the discriminators learn the pictures by heart.
"$python" datasets/make_demo_dataset.py --out datasets/demo --n_train 200 --n_test 50 --overwrite
common=(--dataroot datasets/demo --name demo_cyclegan --model cycle_gan --crop_size 64)
"$python" train.py "${common[@]}" "${RECOMMENDED[@]}" --load_size 72 --seed 0 --n_epochs 1 --n_epochs_decay 1 \
  --display_id 0 --print_freq 50 --display_freq 50 --update_html_freq 100 --save_epoch_freq 2 --overwrite
# Whole test images (--load_size defaults to --crop_size), so that each output lines up with its truth.
"$python" test.py "${common[@]}" --metrics psnr,ssim
metrics_json=results/demo_cyclegan/test_latest/metrics.json
echo
echo "Training page: checkpoints/demo_cyclegan/web/index.html"
echo "Test results:  results/demo_cyclegan/test_latest/index.html"
echo "Python used:   $python (activate it with: source .venv/bin/activate, unless you had your own environment active)"
"$python" scripts/metrics_summary.py "$metrics_json"
