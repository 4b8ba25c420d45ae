"""Whole-process speed of test.py: images per second of wall clock, start-up included, per configuration.

    python scripts/benchmarks/testpy_speed.py                                  # 40 photos, 256 px, 2 rounds
    python scripts/benchmarks/testpy_speed.py --before main --rounds 3 --threads 1
    python scripts/benchmarks/testpy_speed.py --configs original='--num_threads 0' bf16='--amp bf16'

It writes --images photos of --size px (crops of the photos that ship with scikit-image and
scikit-learn, saved as JPEG files like the published test sets) and a generator of random weights
(--netG, --ngf, seed 0) as checkpoints/bench/latest_net_G.pth, then runs
`python test.py --model test --no_dropout` over them once per configuration and round, the
configurations in turn within each round, so that a machine whose speed drifts slows them all alike.
It prints, per configuration: the median images/s (images over the process's whole wall clock), the
median wall and CPU seconds (the process and its loader workers), the speed-up over the first
configuration (the median of the per-round ratios), and how far its fake pictures are from the first
configuration's (largest and mean difference in 0-255 levels: 0 means identical files' pixels). Then
one `BENCH {json}` line per configuration. With --before REV, every configuration also runs with
test.py as this repository had it at git revision REV (exported with `git archive`), so that the
table compares code as well as flags.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent.parent
sys.path[:0] = [str(REPO), str(REPO / "datasets")]  # the tool and its scripts, the demo dataset's photos

from make_demo_dataset import load_photos, random_crops  # noqa: E402

from models.generators import GENERATOR_CHOICES  # noqa: E402
from scripts.benchmarks.bench_generator import random_generator, save_test_weights  # noqa: E402
from scripts.benchmarks.report import aligned, device_name, publish  # noqa: E402
from scripts.benchmarks.whole_runs import (  # noqa: E402
    NAME,
    add_configs_argument,
    add_workdir_argument,
    code_versions,
    in_workdir,
    run_environment,
)
from scripts.quality_bench.configs import flag_list, read_configs  # noqa: E402
from scripts.quality_bench.runs import error_line  # noqa: E402
from util.errors import UserError, exit_on_user_error  # noqa: E402
from util.ranges import NumberRange, add_ranges_to_help, check_ranges  # noqa: E402

# What the original's test.py hard-codes (no loader workers, one image per batch, fp32); our defaults;
# bfloat16; bfloat16 in batches of 4.
DEFAULT_CONFIGS = ["original=--num_threads 0 --batch_size 1", "default=", "bf16=--amp bf16",
                   "bf16_batch4=--amp bf16 --batch_size 4"]


def parse_args(argv=None):
    """Read and check the command line. argv: arguments, default sys.argv[1:]."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_configs_argument(parser, "test.py", DEFAULT_CONFIGS)
    parser.add_argument("--images", type=NumberRange(int, minimum=1), default=40,
                        help="test images (default: %(default)s)")
    parser.add_argument("--size", type=NumberRange(int, minimum=16), default=256,
                        help="side of the square test images in pixels (default: %(default)s)")
    parser.add_argument("--netG", default="resnet_9blocks", choices=GENERATOR_CHOICES,
                        help="generator (default: %(default)s)")
    parser.add_argument("--ngf", type=NumberRange(int, minimum=1), default=64,
                        help="generator filters in the last conv layer (default: %(default)s)")
    parser.add_argument("--rounds", type=NumberRange(int, minimum=1), default=2,
                        help="runs of every configuration, in turn (default: %(default)s)")
    parser.add_argument("--threads", type=NumberRange(int, minimum=1), default=None,
                        help="OMP_NUM_THREADS of the runs: the network's compute threads (default: as the "
                             "environment has it; torch then uses every core)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="run test.py on the CPU (--gpu_ids -1) or the first GPU (--gpu_ids 0) "
                             "(default: %(default)s)")
    parser.add_argument("--before", metavar="REV", default=None,
                        help="also run every configuration with this repository's test.py at git revision REV")
    add_workdir_argument(parser, "the photos, weights, results and logs")
    add_ranges_to_help(parser)
    args = parser.parse_args(argv)
    check_ranges(args, parser)
    return args


def write_photos(folder, count, size):
    """`count` photo crops of `size` px as folder/0000.jpg, 0001.jpg, ... (always the same ones)."""
    os.makedirs(folder, exist_ok=True)
    for index, crop in enumerate(random_crops(load_photos(), np.random.default_rng(0), size, count)):
        crop.save(os.path.join(folder, f"{index:04d}.jpg"), quality=90)


def test_command(code, args, work, results, config):
    """The test.py command of one run: the benchmark's fixed flags, then the configuration's."""
    return [sys.executable, os.path.join(code, "test.py"), "--dataroot", os.path.join(work, "photos"),
            "--name", NAME, "--checkpoints_dir", os.path.join(work, "checkpoints"), "--results_dir", results,
            "--model", "test", "--no_dropout", "--netG", args.netG, "--ngf", str(args.ngf),
            "--crop_size", str(args.size), "--gpu_ids", "-1" if args.device == "cpu" else "0", *flag_list(config)]


def run_once(command, log_path, env):
    """Run `command` (output to log_path); return (wall seconds, CPU seconds of it and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        finished = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if finished.returncode != 0:
        raise UserError(f"{' '.join(command[1:3])} ... failed: {error_line(log_path)}; log: {log_path}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def fake_pictures(results):
    """The fake result pictures of a run, by file name, as int16 arrays (for differences)."""
    folder = os.path.join(results, NAME, "test_latest", "images")
    return {name: np.asarray(Image.open(os.path.join(folder, name)), dtype=np.int16)
            for name in sorted(os.listdir(folder)) if name.endswith("_fake.png")}


def picture_difference(pictures, reference):
    """(largest, mean) absolute difference in 0-255 levels between two runs' pictures; UserError when
    they did not write the same files."""
    if pictures.keys() != reference.keys():
        raise UserError(f"two configurations wrote different result files ({len(pictures)} and {len(reference)} "
                        "fake pictures); see their logs")
    differences = [np.abs(pictures[name] - reference[name]) for name in reference]
    return max(int(d.max()) for d in differences), float(np.mean([d.mean() for d in differences]))


def measure(args, work, runs):
    """Run every (code key, code label, code folder, Config) of `runs` --rounds times, in turn; return one
    record per run. The key names its files, the label its row."""
    env = run_environment(args.threads)
    timings = {index: [] for index in range(len(runs))}
    for round_index in range(args.rounds):
        for index, (key, label, code, config) in enumerate(runs):
            results = os.path.join(work, "results", f"{config.name}-{key}")
            command = test_command(code, args, work, results, config)
            timings[index].append(run_once(command, os.path.join(work, f"{config.name}-{key}-{round_index}.log"), env))
            print(f"round {round_index + 1}/{args.rounds} {config.name} ({label}): "
                  f"{timings[index][-1][0]:.1f} s", flush=True)
    reference = fake_pictures(os.path.join(work, "results", f"{runs[0][3].name}-{runs[0][0]}"))
    records = []
    for index, (key, label, _, config) in enumerate(runs):
        walls = [wall for wall, _ in timings[index]]
        largest, mean = picture_difference(
            fake_pictures(os.path.join(work, "results", f"{config.name}-{key}")), reference)
        records.append({
            "config": config.name, "flags": config.flags, "code": label, "images": args.images, "size": args.size,
            "netG": args.netG, "ngf": args.ngf, "device": args.device, "threads": args.threads,
            "img_s": args.images / statistics.median(walls), "wall_s": statistics.median(walls), "wall_s_rounds": walls,
            "cpu_s": statistics.median(cpu for _, cpu in timings[index]),
            # Per-round ratios: both runs of a ratio ran minutes apart at most, on the same machine state.
            "speedup_vs_first": statistics.median(first / mine for (first, _), mine in zip(timings[0], walls)),
            "max_level_difference": largest, "mean_level_difference": mean,
            "device_name": device_name(args.device), "torch": torch.__version__,
        })
    return records


def format_table(records):
    """The aligned results table, one row per configuration and code."""
    header = ["config", "code", "img/s", "wall s", "CPU s", "speed-up", "max diff", "mean diff"]
    rows = [[r["config"], r["code"], f"{r['img_s']:.2f}", f"{r['wall_s']:.1f}", f"{r['cpu_s']:.1f}",
             f"{r['speedup_vs_first']:.2f}x", str(r["max_level_difference"]), f"{r['mean_level_difference']:.3f}"]
            for r in records]
    return aligned(header, rows)


def benchmark(args, work):
    """Prepare the photos, the weights and the code, measure, and print the table and BENCH lines."""
    configs = read_configs(args.configs)
    write_photos(os.path.join(work, "photos"), args.images, args.size)
    save_test_weights(random_generator(args.netG, args.ngf), os.path.join(work, "checkpoints"), NAME)
    codes = code_versions(args.before, work)
    records = measure(args, work, [(*code, config) for config in configs for code in codes])
    publish(format_table(records), [
        f"{args.images} images of {args.size} px, {args.netG} ngf {args.ngf}, --model test; img/s: images over "
        f"the median whole-process wall clock of {args.rounds} round(s); CPU s: the process and its loader "
        f"workers; diff: fake pictures against the first row's, in 0-255 levels; on {device_name(args.device)}, "
        f"load average {os.getloadavg()[0]:.1f}"], records)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: CUDA is not available here; use --device cpu")
    in_workdir(args, benchmark, "testpy-speed-")


if __name__ == "__main__":
    main()
