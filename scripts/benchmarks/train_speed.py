"""Seconds per iteration of whole train.py runs, per configuration: everything a user's run does per step.

    python scripts/benchmarks/train_speed.py                      # CycleGAN, 256 px: fp32, bf16, bf16 + compile
    python scripts/benchmarks/train_speed.py --configs fp32= bf16='--amp bf16' --short 2 --long 8 --peak

It writes a small photo dataset (--long crops of the demo photos per domain, --load_size px), then runs
`python train.py` (batch 1, one epoch, visdom off, the default loader workers) once per configuration on
one picture to warm up (torch.compile's caches, the page cache), then, in each of --rounds rounds and for
each configuration in turn, on --short and on --long pictures (--max_dataset_size). The difference of
the two timed runs' wall clocks divided by the difference of their iterations is the time per iteration
of a long run: start-up, compilation, the checkpoint at the end and the result page cancel out, while
data loading, the image pools, logging and every other per-step cost of train.py stay in. It prints, per
configuration: the median seconds per iteration over the rounds, iterations per second and the
speed-up over the first configuration. With --peak it also counts the
FLOPs of one default CycleGAN iteration (FlopCounterMode, as scripts/benchmark.py does) and measures a
large bf16 convolution's throughput on --threads threads, and prints each configuration's share of that
peak (meaningful for configurations that keep the default networks). Then one `BENCH {json}` line per
configuration.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent.parent
sys.path[:0] = [str(REPO), str(REPO / "datasets")]  # the tool and its scripts, the demo dataset's builder

from make_demo_dataset import make_demo_dataset  # noqa: E402

from scripts.benchmarks.report import aligned, device_name, publish  # noqa: E402
from scripts.benchmarks.whole_runs import (  # noqa: E402
    add_configs_argument,
    add_training_size_arguments,
    add_workdir_argument,
    check_training_sizes,
    in_workdir,
    run_environment,
    train_command,
)
from scripts.quality_bench.configs import read_configs  # noqa: E402
from scripts.quality_bench.runs import error_line  # noqa: E402
from util.errors import UserError, exit_on_user_error  # noqa: E402
from util.ranges import NumberRange, add_ranges_to_help, check_ranges  # noqa: E402

DEFAULT_CONFIGS = ["fp32=", "bf16=--amp bf16", "bf16_compile=--amp bf16 --compile"]


def parse_args(argv=None):
    """Read and check the command line. argv: arguments, default sys.argv[1:]."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_configs_argument(parser, "train.py", DEFAULT_CONFIGS)
    parser.add_argument("--short", type=NumberRange(int, minimum=1), default=4,
                        help="iterations of the shorter timed run (default: %(default)s)")
    parser.add_argument("--long", type=NumberRange(int, minimum=2), default=16,
                        help="iterations of the longer timed run (default: %(default)s)")
    add_training_size_arguments(parser)
    parser.add_argument("--threads", type=NumberRange(int, minimum=1), default=None,
                        help="OMP_NUM_THREADS of the runs (default: left unset, so torch uses every core)")
    parser.add_argument("--rounds", type=NumberRange(int, minimum=1), default=1,
                        help="timed pairs of runs per configuration, the configurations in turn; the median "
                             "is reported (default: %(default)s)")
    parser.add_argument("--peak", action="store_true",
                        help="also print each configuration's share of the bf16 convolution peak")
    add_workdir_argument(parser, "the pictures, checkpoints and logs")
    add_ranges_to_help(parser)
    args = parser.parse_args(argv)
    check_ranges(args, parser)
    if args.short >= args.long:
        raise UserError(f"--short {args.short} is not below --long {args.long}; give fewer short iterations")
    check_training_sizes(args)
    return args


def timed_run(name, command, log_path, env):
    """Wall seconds of one train.py run, `name` in messages; UserError naming its last error line when it fails."""
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        returncode = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    if returncode != 0:
        raise UserError(f"train.py of {name} failed: {error_line(log_path)}; see {log_path}")
    return time.perf_counter() - start


def training_run(args, work, config, label, images, env):
    """Wall seconds of one train.py run of `config` on `images` pictures; its log is work/<config>-<label>.log.
    Its checkpoints are removed afterwards (a 256 px CycleGAN writes about 250 MB a run)."""
    # Each run writes its own checkpoint folder, so that none starts next to another's checkpoints.
    name = f"{config.name}-{label}"
    command = train_command(str(REPO), args, work, config._replace(name=name))
    command += ["--max_dataset_size", str(images)]
    seconds = timed_run(f"configuration {config.name} ({label} run)", command, os.path.join(work, f"{name}.log"), env)
    shutil.rmtree(os.path.join(work, "checkpoints", name))
    return seconds


def measure(args, work, configs, env):
    """Warm every configuration up, then time its short and long runs once per round, the configurations in
    turn within each round (so that a machine whose speed drifts slows them all alike); one record each."""
    warmups = {config.name: training_run(args, work, config, "warmup", 1, env) for config in configs}
    walls = {config.name: {"short": [], "long": []} for config in configs}
    for number in range(1, args.rounds + 1):
        for config in configs:
            for label, images in (("short", args.short), ("long", args.long)):
                seconds = training_run(args, work, config, f"{label}{number}", images, env)
                walls[config.name][label].append(seconds)
            short, long = walls[config.name]["short"][-1], walls[config.name]["long"][-1]
            print(f"round {number}/{args.rounds} {config.name}: {(long - short) / (args.long - args.short):.3f} s/it "
                  f"(runs of {args.short} and {args.long} iterations: {short:.1f} s, {long:.1f} s; "
                  f"warm-up {warmups[config.name]:.1f} s)", flush=True)
    return [record(args, config, warmups[config.name], walls[config.name]) for config in configs]


def record(args, config, warmup, walls):
    """The BENCH record of one configuration: its median seconds per iteration over the rounds, and more."""
    per_round = [(long - short) / (args.long - args.short) for short, long in zip(walls["short"], walls["long"])]
    seconds = statistics.median(per_round)
    return {"config": config.name, "flags": config.flags, "seconds_per_iteration": seconds,
            "seconds_per_iteration_rounds": per_round, "iterations_per_second": 1 / seconds,
            "wall_s": {"warmup": warmup, **walls}, "short": args.short, "long": args.long, "rounds": args.rounds,
            "load_size": args.load_size, "crop_size": args.crop_size, "ngf": args.ngf, "ndf": args.ndf,
            "threads": args.threads, "device_name": device_name("cpu")}


def add_peak_shares(args, records, work):
    """Count a default CycleGAN iteration's FLOPs, measure the bf16 conv peak on --threads threads, and add
    each record's achieved FLOP/s and its share of that peak."""
    import torch  # only here: the measuring runs are child processes, this one needs torch only for --peak

    from scripts.benchmarks.flops import conv_peak_flops, count_flops
    from scripts.benchmarks.runs import make_batch, parse_tool_options

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = SimpleNamespace(device="cpu", model="cycle_gan", ngf=args.ngf, ndf=args.ndf, crop_size=args.crop_size,
                               batch_size=1, netG=None, CUT_mode=None, no_antialias=False,
                               no_antialias_up=False)
    opt = parse_tool_options(settings, work)
    train_flops, _ = count_flops(settings, opt, make_batch(settings, seed=0))
    peak = conv_peak_flops("cpu", "bf16")
    for record in records:
        record.update(train_flops=train_flops, bf16_peak_flops=peak,
                      achieved_flops=train_flops / record["seconds_per_iteration"],
                      share_of_bf16_peak=train_flops / record["seconds_per_iteration"] / peak)
    return train_flops, peak


def format_table(records):
    """The aligned results table, one row per configuration."""
    first = records[0]["seconds_per_iteration"]
    header = ["config", "s/it", "it/s", "speed-up"]
    if "share_of_bf16_peak" in records[0]:
        header += ["GFLOP/s", "of bf16 peak"]
    rows = []
    for record in records:
        row = [record["config"], f"{record['seconds_per_iteration']:.3f}", f"{record['iterations_per_second']:.3f}",
               f"{first / record['seconds_per_iteration']:.2f}x"]
        if "share_of_bf16_peak" in record:
            row += [f"{record['achieved_flops'] / 1e9:.0f}", f"{100 * record['share_of_bf16_peak']:.0f}%"]
        rows.append(row)
    return aligned(header, rows)


def benchmark(args, work):
    """Write the pictures, measure every configuration, and print the table and BENCH lines."""
    configs = read_configs(args.configs)
    make_demo_dataset(os.path.join(work, "photos"), size=args.load_size, n_train=args.long, n_test=1, overwrite=True)
    env = run_environment(args.threads)
    records = measure(args, work, configs, env)
    summary = (f"train.py, {args.crop_size} px crops of {args.load_size} px pictures, ngf {args.ngf}, ndf {args.ndf}, "
               f"batch 1, OMP_NUM_THREADS={args.threads or 'unset'}")
    if args.peak:
        train_flops, peak = add_peak_shares(args, records, work)
        summary += (f"; {train_flops / 1e12:.3f} TFLOP per default iteration, bf16 conv peak "
                    f"{peak / 1e9:.0f} GFLOP/s")
    publish(format_table(records), [f"{summary}; on {device_name('cpu')}, load average {os.getloadavg()[0]:.1f}"],
            records)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    in_workdir(args, benchmark, "train-speed-")


if __name__ == "__main__":
    main()
