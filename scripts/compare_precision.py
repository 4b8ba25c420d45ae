"""Check that mixed precision trains like fp32: same run twice (fp32, then --amp bf16), compared.

    python scripts/compare_precision.py --dataroot datasets/demo --iterations 200

Both runs use the same seed, data order and flags. For every loss it prints how far the smoothed
bf16 curve strays from the fp32 one (largest and mean relative difference), next to the same
numbers for a second fp32 run with another seed (the spread GAN training has anyway), then runs
test.py with both models and prints the PSNR between their outputs. Numbers only, no verdict.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataroot", required=True, help="unaligned dataset (trainA/trainB/testA)")
    parser.add_argument("--iterations", type=int, default=200, help="training iterations (batch 1) per run")
    parser.add_argument("--crop_size", type=int, default=64)
    parser.add_argument("--netG", default="resnet_9blocks")
    parser.add_argument("--amp", default="bf16", help="the precision to compare with fp32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smooth", type=int, default=20, help="moving-average window over iterations")
    parser.add_argument("--work_dir", default=None, help="where checkpoints and results go (default: temporary)")
    return parser.parse_args()


def train(args, work, name, seed, extra):
    """One training run of exactly args.iterations images; returns its loss records."""
    epochs = 10
    per_epoch = math.ceil(args.iterations / epochs)
    command = [sys.executable, os.path.join(REPO, "train.py"), "--dataroot", args.dataroot, "--name", name,
               "--checkpoints_dir", os.path.join(work, "ck"), "--netG", args.netG, "--crop_size", str(args.crop_size),
               "--load_size", str(args.crop_size * 286 // 256), "--n_epochs", str(epochs), "--n_epochs_decay", "0",
               "--max_dataset_size", str(per_epoch), "--print_freq", "1", "--display_id", "0", "--no_html",
               "--seed", str(seed), "--num_threads", "2", *extra]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(work, "ck", name, "loss_log.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def smoothed(records, name, window):
    values = np.array([record["losses"][name] for record in records])
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def deviation(reference, other, window):
    """{loss: (largest, mean) relative difference of the smoothed curves}."""
    result = {}
    for name in reference[0]["losses"]:
        a, b = smoothed(reference, name, window), smoothed(other, name, window)
        relative = np.abs(b - a) / np.maximum(np.abs(a), 1e-8)
        result[name] = (float(relative.max()), float(relative.mean()))
    return result


def test_outputs(args, work, name, extra):
    """Run test.py on testA with the run's G_A; returns {file stem: fake image array}."""
    results = os.path.join(work, "results")
    command = [sys.executable, os.path.join(REPO, "test.py"), "--dataroot", os.path.join(args.dataroot, "testA"),
               "--name", name, "--checkpoints_dir", os.path.join(work, "ck"), "--results_dir", results,
               "--model", "test", "--model_suffix", "_A", "--crop_size", str(args.crop_size), *extra]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    folder = os.path.join(results, name, "test_latest", "images")
    return {file[:-len("_fake.png")]: np.asarray(Image.open(os.path.join(folder, file)), dtype=np.float64)
            for file in sorted(os.listdir(folder)) if file.endswith("_fake.png")}


def psnr(a, b):
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def main():
    args = parse_args()
    work = args.work_dir or tempfile.mkdtemp(prefix="compare_precision_")
    runs = {"fp32": train(args, work, "fp32", args.seed, []),
            args.amp: train(args, work, args.amp, args.seed, ["--amp", args.amp]),
            "fp32_other_seed": train(args, work, "fp32_other_seed", args.seed + 1, [])}
    print(f"{args.iterations} iterations, {args.netG}, crop {args.crop_size}, smoothing window {args.smooth}")
    print(f"{'loss':<10} {args.amp + ' vs fp32 (max / mean)':>28} {'fp32 other seed (max / mean)':>32}")
    amp_dev = deviation(runs["fp32"], runs[args.amp], args.smooth)
    seed_dev = deviation(runs["fp32"], runs["fp32_other_seed"], args.smooth)
    for name in amp_dev:
        print(f"{name:<10} {amp_dev[name][0]:>14.1%} / {amp_dev[name][1]:>6.1%} "
              f"{seed_dev[name][0]:>18.1%} / {seed_dev[name][1]:>6.1%}")
    fp32_images = test_outputs(args, work, "fp32", [])
    amp_images = test_outputs(args, work, args.amp, ["--amp", args.amp])
    other_images = test_outputs(args, work, "fp32_other_seed", [])
    scores = [psnr(fp32_images[stem], amp_images[stem]) for stem in fp32_images]
    reference = [psnr(fp32_images[stem], other_images[stem]) for stem in fp32_images]
    print(f"PSNR between fp32 and {args.amp} test outputs over {len(scores)} images: "
          f"mean {np.mean(scores):.1f} dB, min {np.min(scores):.1f} dB "
          f"(fp32 vs fp32 with another seed: mean {np.mean(reference):.1f} dB)")
    print("COMPARE " + json.dumps({"iterations": args.iterations, "amp": args.amp, "deviation": amp_dev,
                                   "seed_deviation": seed_dev, "psnr_mean": float(np.mean(scores)),
                                   "psnr_min": float(np.min(scores)), "psnr_other_seed_mean": float(np.mean(reference)),
                                   "work_dir": work}))


if __name__ == "__main__":
    main()
