"""Peak memory of whole train.py runs, per configuration: the main process and its loader workers.

    python scripts/benchmarks/train_memory.py                          # CycleGAN, 256 px, 8 iterations, 4 configurations
    python scripts/benchmarks/train_memory.py --before main --configs fp32= bf16='--amp bf16'

It writes a small photo dataset (--images crops of the demo photos per domain, --load_size px, as
datasets/make_demo_dataset.py draws them, plus 2 test pictures per domain for --eval_freq), then runs
`python train.py` for one epoch of it (batch 1, so --images iterations) once per configuration, on the
CPU, with visdom off (--display_id 0). For each run it prints:

- main: the peak resident set size (RSS) of the largest process, which is train.py's main process: what
  `/usr/bin/time -v` reports as "Maximum resident set size" (the kernel's exact high-water mark);
- tree: the peak of the summed proportional set size (PSS) of train.py and its loader workers, sampled
  every --interval seconds (PSS splits each page shared by several processes among them, so that the
  libraries the forked workers share with their parent are counted once);
- and the main peak against the original tool's 4.14 GiB (CycleGAN, resnet_9blocks, ngf = ndf = 64,
  batch 1, 256 px crops, fp32, on this machine kind; issue 14).

With --before REV, every configuration also runs with this repository as it was at git revision REV,
so that the table compares code as well as flags. Then one `BENCH {json}` line per run.
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
sys.path[:0] = [str(REPO), str(REPO / "datasets")]  # the tool and its scripts, the demo dataset's builder

from make_demo_dataset import make_demo_dataset  # noqa: E402

from scripts.benchmarks.memory import TreePeak  # noqa: E402
from scripts.benchmarks.report import aligned, device_name, publish  # noqa: E402
from scripts.benchmarks.whole_runs import (  # noqa: E402
    add_configs_argument,
    add_training_size_arguments,
    add_workdir_argument,
    check_training_sizes,
    code_versions,
    in_workdir,
    run_environment,
    train_command,
)
from scripts.quality_bench.configs import read_configs  # noqa: E402
from scripts.quality_bench.runs import error_line  # noqa: E402
from util.errors import UserError, exit_on_user_error  # noqa: E402
from util.ranges import NumberRange, add_ranges_to_help, check_ranges  # noqa: E402

# The original's flags in fp32 and bfloat16, the recommended configuration (README), and fp32 with an
# evaluation of PSNR/SSIM on the test pictures after the epoch.
DEFAULT_CONFIGS = ["fp32=", "bf16=--amp bf16",
                   "recommended=--upsample resize --affine_output --lambda_identity 0 --ema_decay 0.999",
                   "fp32_eval=--eval_freq 1 --metrics psnr,ssim"]
ORIGINAL_GIB = 4.14  # the original's train.py, fp32, 256 px, this machine kind (issue 14)
GIB = 1024 ** 3


def parse_args(argv=None):
    """Read and check the command line. argv: arguments, default sys.argv[1:]."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_configs_argument(parser, "train.py", DEFAULT_CONFIGS)
    parser.add_argument("--images", type=NumberRange(int, minimum=1), default=8,
                        help="training pictures per domain, hence training iterations (default: %(default)s)")
    add_training_size_arguments(parser)
    parser.add_argument("--threads", type=NumberRange(int, minimum=1), default=1,
                        help="OMP_NUM_THREADS of the runs (memory does not depend on it; default: %(default)s)")
    parser.add_argument("--interval", type=NumberRange(float, minimum=0.01), default=0.1,
                        help="seconds between two samples of the process tree's PSS (default: %(default)s)")
    parser.add_argument("--before", metavar="REV", default=None,
                        help="also run every configuration with this repository's code at git revision REV")
    add_workdir_argument(parser, "the pictures, checkpoints and logs")
    add_ranges_to_help(parser)
    args = parser.parse_args(argv)
    check_ranges(args, parser)
    check_training_sizes(args)
    return args


def run_once(name, command, log_path, env, interval):
    """Run `command`, the train.py run of configuration `name` (output to log_path); return (peak RSS of its largest process, peak summed PSS of
    its process tree, most processes at once, wall seconds)."""
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        sampler = TreePeak(process.pid, interval)
        sampler.start()
        # wait4 gives this child's own resource use: ru_maxrss is the largest high-water mark of the
        # child and the descendants it waited for (the main process's, as the workers are smaller).
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise UserError(f"train.py of configuration {name} failed: {error_line(log_path)}; see {log_path}")
    return usage.ru_maxrss * 1024, sampler.peak_bytes, sampler.most_processes, wall


def measure(args, work, runs):
    """Run every (code key, code label, code folder, Config) of `runs` once; return one record per run."""
    env = run_environment(args.threads)  # always set: --threads defaults to 1
    records = []
    for key, label, code, config in runs:
        # Each code version trains its own run: the second would otherwise find the first's checkpoints.
        command = train_command(code, args, work, config._replace(name=f"{config.name}-{key}"))
        main_bytes, tree_bytes, processes, wall = run_once(
            config.name, command, os.path.join(work, f"{config.name}-{key}.log"), env, args.interval)
        print(f"{config.name} ({label}): main {main_bytes / GIB:.2f} GiB, tree {tree_bytes / GIB:.2f} GiB, "
              f"{wall:.0f} s", flush=True)
        records.append({
            "config": config.name, "flags": config.flags, "code": label, "images": args.images,
            "load_size": args.load_size, "crop_size": args.crop_size, "ngf": args.ngf, "ndf": args.ndf,
            "threads": args.threads, "main_peak_rss_bytes": main_bytes, "tree_peak_pss_bytes": tree_bytes,
            "processes": processes, "wall_s": wall, "main_vs_original": main_bytes / GIB / ORIGINAL_GIB,
            "device_name": device_name("cpu"),
        })
    return records


def format_table(records):
    """The aligned results table, one row per configuration and code."""
    header = ["config", "code", "main GiB", "tree GiB", "processes", "main vs original", "wall s"]
    rows = [[r["config"], r["code"], f"{r['main_peak_rss_bytes'] / GIB:.2f}", f"{r['tree_peak_pss_bytes'] / GIB:.2f}",
             str(r["processes"]), f"{r['main_vs_original']:.2f}x", f"{r['wall_s']:.0f}"] for r in records]
    return aligned(header, rows)


def benchmark(args, work):
    """Write the pictures and the code, measure, and print the table and BENCH lines."""
    configs = read_configs(args.configs)
    make_demo_dataset(os.path.join(work, "photos"), size=args.load_size, n_train=args.images, n_test=2,
                      overwrite=True)
    codes = code_versions(args.before, work)
    records = measure(args, work, [(*code, config) for config in configs for code in codes])
    publish(format_table(records), [
        f"train.py, {args.images} iterations at {args.crop_size} px (pictures of {args.load_size} px), "
        f"ngf {args.ngf}, ndf {args.ndf}, batch 1, OMP_NUM_THREADS={args.threads}; main: peak RSS of train.py's "
        f"main process; tree: peak summed PSS of it and its loader workers (sampled every {args.interval:g} s); "
        f"original: {ORIGINAL_GIB} GiB; on {device_name('cpu')}, load average {os.getloadavg()[0]:.1f}"], records)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    in_workdir(args, benchmark, "train-memory-")


if __name__ == "__main__":
    main()
