"""Benchmark the tool's models: training and inference speed, peak memory and FLOP use per setting.

    python scripts/benchmark.py --netG resnet_9blocks --crop_size 128 --amp none bf16 --channels_last 0 1 --peak
    python scripts/benchmark.py --device cuda --config amp=bf16,channels_last=1,compile=1 --config amp=none
    python scripts/benchmark.py --model cut --CUT_mode FastCUT --config amp=none
    python scripts/benchmark.py --model cut --no_antialias --no_antialias_up --config amp=none

Each configuration (the product of --amp, --channels_last and --compile, or the --config list) is
built through the tool's own options and create_model, on synthetic batches like the data loader's.
All configurations live in one process: each is warmed up first (compilation included), then they
are timed in round-robin, a few iterations of each in turn per round, so that a machine whose speed
drifts slows them all alike; the median over rounds is reported. Prints one table, then one
`BENCH {json}` line per configuration (also appended to --json PATH).

Under torchrun it measures data-parallel training instead (training only: inference, FLOPs, memory
and --peak are skipped). Every process builds the same configurations, DDP-wrapped as train.py does,
trains on its own synthetic batch of --batch_size, and times the same iterations between barriers;
rank 0 prints each process's img/s, their sum, and the scaling efficiency against a single-process
run's --json file given as --baseline:

    python scripts/benchmark.py --device cpu --config amp=none --json single.jsonl
    torchrun --standalone --nproc_per_node=2 scripts/benchmark.py --device cpu --config amp=none --baseline single.jsonl

This file holds the command line; scripts/benchmarks/ holds the measurements, one module for each
thing measured.
"""
import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.cut_model import CUT_MODES, cut_mode  # noqa: E402  (the repository root is on the path only now)
from models.generators import GENERATOR_CHOICES  # noqa: E402
from runtime.device import AMP_CHOICES  # noqa: E402
from runtime.runtime import Launch, quiet_unless_main  # noqa: E402
from scripts.benchmarks.configurations import configurations  # noqa: E402
from scripts.benchmarks.report import publish  # noqa: E402
from scripts.benchmarks.runs import ANTIALIAS_FLAGS, make_batch, parse_tool_options  # noqa: E402
from scripts.benchmarks.scaling import benchmark_distributed, read_baselines  # noqa: E402
from scripts.benchmarks.speed import benchmark_single  # noqa: E402
from util.errors import UserError, exit_on_user_error  # noqa: E402


def parse_arguments(argv):
    """The benchmark's command line; UserError for values it cannot run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="cycle_gan", choices=("cycle_gan", "pix2pix", "cut", "sincut"),
                        help="model to measure (default: %(default)s)")
    parser.add_argument("--CUT_mode", default=None, type=cut_mode, choices=CUT_MODES,
                        help="with --model cut or sincut: CUT or FastCUT, with that mode's defaults (default: CUT)")
    parser.add_argument("--no_antialias", action="store_true",
                        help="with --model cut or sincut: strided convolutions instead of the official anti-aliased "
                             "(blurred) downsampling, as the tool's flag of that name")
    parser.add_argument("--no_antialias_up", action="store_true",
                        help="with --model cut or sincut: transposed convolutions instead of the official "
                             "anti-aliased upsampling, as the tool's flag of that name")
    parser.add_argument("--netG", default=None, choices=GENERATOR_CHOICES,
                        help="generator (default: the model's own, resnet_9blocks or unet_256)")
    parser.add_argument("--ngf", type=int, default=None,
                        help="generator filters in the last conv layer (default: the model's, 64; sincut 10)")
    parser.add_argument("--ndf", type=int, default=None,
                        help="discriminator filters in the first conv layer (default: the model's, 64; sincut 8)")
    parser.add_argument("--crop_size", type=int, default=None, help="image size, square (default: the model's, 256; "
                                                                    "sincut 64)")
    parser.add_argument("--batch_size", type=int, default=None,
                        help="images per iteration (default: the model's, 1; sincut 16)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu",
                        help="where to run (default: %(default)s)")
    parser.add_argument("--amp", nargs="+", choices=AMP_CHOICES, help="precisions to compare (default: none bf16)")
    parser.add_argument("--channels_last", nargs="+", type=int, choices=(0, 1), help="memory formats (default: 0 1)")
    parser.add_argument("--compile", nargs="+", type=int, choices=(0, 1), help="torch.compile off/on (default: 0)")
    parser.add_argument("--config", action="append",
                        help="an explicit configuration such as amp=bf16,channels_last=1,compile=0 (repeatable; "
                             "replaces the product of --amp, --channels_last and --compile)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed training iterations per configuration first (default: %(default)s)")
    parser.add_argument("--iters", type=int, default=5, help="timed training iterations per configuration per round (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="round-robin rounds over the configurations (default: %(default)s)")
    parser.add_argument("--inference_iters", type=int, default=5, help="timed model.test() calls per config per round (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: left as is)")
    parser.add_argument("--peak", action="store_true",
                        help="also measure a large conv's throughput per precision and report each config's share "
                             "of it, and profile each config's training to report the time its conv and matmul "
                             "operators take and the share of the peak they alone would reach")
    parser.add_argument("--json", metavar="PATH", help="also append the JSON lines to this file")
    parser.add_argument("--baseline", metavar="PATH",
                        help="under torchrun: a single-process run's --json file, for the scaling efficiency")
    args = parser.parse_args(argv)
    for name in ("ngf", "ndf", "crop_size", "batch_size", "warmup", "iters", "rounds", "inference_iters"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UserError(f"--{name} {getattr(args, name)} is too small; give at least 1")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads {args.threads} is too small; give at least 1 or leave it out")
    if args.CUT_mode and args.model not in ("cut", "sincut"):
        raise UserError(f"--CUT_mode {args.CUT_mode} applies to --model cut and sincut only; add --model cut or drop "
                        "--CUT_mode")
    for name in ANTIALIAS_FLAGS:
        if getattr(args, name) and args.model not in ("cut", "sincut"):
            raise UserError(f"--{name} applies to --model cut and sincut only; add --model cut or drop --{name}")
    if args.model in ("cut", "sincut"):
        args.CUT_mode = args.CUT_mode or "CUT"
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: CUDA is not available here; use --device cpu")
    return args


@exit_on_user_error
def main(argv=None):
    quiet_unless_main(Launch.from_environment())  # under torchrun only rank 0 prints
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    configs = configurations(args)
    baselines = read_baselines(args.baseline) if args.baseline else None  # before any process waits for another
    with tempfile.TemporaryDirectory(prefix="benchmark-") as workdir:
        opt = parse_tool_options(args, workdir)
        batch = make_batch(args, seed=opt.runtime.rank)
        if not opt.runtime.distributed:
            if args.baseline:
                raise UserError("--baseline compares a torchrun run with a single-process one; start the benchmark "
                                "with torchrun or drop --baseline")
            report = benchmark_single(args, opt, configs, batch)
        else:
            report = benchmark_distributed(args, opt, configs, batch, baselines)
    if report is not None:
        publish(*report, json_path=args.json)


if __name__ == "__main__":
    main()
