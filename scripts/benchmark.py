"""Benchmark the tool's models: training and inference speed, peak memory and FLOP use per setting.

    python scripts/benchmark.py --netG resnet_9blocks --crop_size 128 --amp none bf16 --channels_last 0 1 --peak
    python scripts/benchmark.py --device cuda --config amp=bf16,channels_last=1,compile=1 --config amp=none

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
"""
import argparse
import contextlib
import copy
import gc
import io
import itertools
import json
import platform
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models import create_model  # noqa: E402  (the repository root is on the path only now)
from models.generators import GENERATOR_CHOICES  # noqa: E402
from options.base_options import seed_everything  # noqa: E402
from options.train_options import TrainOptions  # noqa: E402
from runtime.device import AMP_CHOICES  # noqa: E402
from runtime.runtime import Launch, quiet_unless_main  # noqa: E402
from util.errors import UserError, exit_on_user_error  # noqa: E402

# The tensor type a configuration's convolutions mostly run in (for its hardware peak).
PRECISION_DTYPES = {"none": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
PEAK_CONV_CHANNELS, PEAK_CONV_SIZE = 256, 64
PEAK_TIME_BUDGET_S = 1.0  # seconds of timed convolutions per precision
MIB = 2 ** 20
# Record fields that define the work measured: a --baseline figure must match all of them.
WORKLOAD_KEYS = ("config", "model", "netG", "ngf", "ndf", "crop_size", "batch_size", "device")


@dataclass(frozen=True)
class Config:
    """One performance setting. amp: none, bf16 or fp16; channels_last, compile: the tool's flags."""

    amp: str = "none"
    channels_last: bool = False
    compile: bool = False

    @property
    def label(self):
        return f"amp={self.amp},channels_last={int(self.channels_last)},compile={int(self.compile)}"

    def flags(self):
        """The tool's command-line flags for this setting."""
        return (["--amp", self.amp] + (["--channels_last"] if self.channels_last else [])
                + (["--compile"] if self.compile else []))


@dataclass
class Run:
    """A configuration under measurement. model: its built model; resident_bytes: CUDA memory its
    own tensors hold after warm-up (None on the CPU); first_iteration_s: the first training
    iteration's time (compilation included); the lists hold one rate per round."""

    config: Config
    model: object
    resident_bytes: int
    first_iteration_s: float
    train_rates: list = field(default_factory=list)
    infer_rates: list = field(default_factory=list)
    peak_bytes: int = 0


def parse_config(text):
    """A Config from `amp=bf16,channels_last=1,compile=0` (keys left out keep their defaults)."""
    values = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key == "amp" and value in AMP_CHOICES:
            values[key] = value
        elif key in ("channels_last", "compile") and value in ("0", "1"):
            values[key] = value == "1"
        else:
            raise UserError(f"--config {text!r}: cannot read {item!r}; write e.g. amp=bf16,channels_last=1,compile=0 "
                            f"(amp one of {', '.join(AMP_CHOICES)}, the others 0 or 1)")
    return Config(**values)


def configurations(args):
    """The configurations to compare, in order, without repeats."""
    lists_given = any(value is not None for value in (args.amp, args.channels_last, args.compile))
    if args.config and lists_given:
        raise UserError("--config lists configurations explicitly; drop --amp/--channels_last/--compile or --config")
    if args.config:
        configs = [parse_config(text) for text in args.config]
    else:
        product = itertools.product(args.amp or ["none", "bf16"], args.channels_last or [0, 1], args.compile or [0])
        configs = [Config(amp, bool(channels_last), bool(compiled)) for amp, channels_last, compiled in product]
    return list(dict.fromkeys(configs))


def parse_tool_options(args, workdir):
    """The tool's training options for the benchmark's model (their printout silenced), parsed once
    per process: parsing sets up the device and, under torchrun, joins the process group (CPU: gloo;
    CUDA: NCCL on GPU LOCAL_RANK), which can happen only once."""
    argv = ["--dataroot", workdir, "--checkpoints_dir", workdir, "--name", "bench", "--display_id", "0",
            "--gpu_ids", "0" if args.device == "cuda" else "-1", "--seed", "0", "--model", args.model,
            "--ngf", str(args.ngf), "--ndf", str(args.ndf), "--crop_size", str(args.crop_size),
            "--load_size", str(args.crop_size), "--batch_size", str(args.batch_size)]
    if args.netG:
        argv += ["--netG", args.netG]
    with contextlib.redirect_stdout(io.StringIO()):
        return TrainOptions().parse(argv)


def build_model(base_opt, config):
    """Build and set up a training model of `config` (DDP-wrapped under torchrun, as in train.py);
    base_opt: the parsed options, copied with the config's flags; UserError when the device cannot run it."""
    opt = copy.copy(base_opt)
    opt.amp, opt.channels_last, opt.compile = config.amp, config.channels_last, config.compile
    opt.runtime = base_opt.runtime.with_amp(config.amp)  # checked as option parsing checks --amp
    seed_everything(opt.seed + opt.runtime.rank)  # each configuration starts from the weights a fresh parse gives
    model = create_model(opt)
    model.setup()
    return model


def make_batch(args, seed):
    """A synthetic batch as the data loader gives it: images in [-1, 1] on the CPU (pinned for CUDA);
    seed: which images (each rank of a torchrun job draws its own)."""
    generator = torch.Generator().manual_seed(seed)
    shape = (args.batch_size, 3, args.crop_size, args.crop_size)
    images = [torch.rand(shape, generator=generator) * 2 - 1 for _ in range(2)]
    if args.device == "cuda":
        images = [image.pin_memory() for image in images]
    paths = [f"bench_{index}.png" for index in range(args.batch_size)]
    return {"A": images[0], "B": images[1], "A_paths": paths, "B_paths": paths}


def synchronize(device):
    """Wait for queued GPU work, so that the clock measures finished work."""
    if device == "cuda":
        torch.cuda.synchronize()


def timed(step, model, batch, iterations, device):
    """Seconds taken by `iterations` of set_input(batch) followed by `step()` (finished device work included)."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iterations):
        model.set_input(batch)
        step()
    synchronize(device)
    return time.perf_counter() - start


def time_training(model, batch, iterations, device):
    """Seconds taken by `iterations` training iterations."""
    return timed(model.optimize_parameters, model, batch, iterations, device)


def time_inference(model, batch, iterations, device):
    """Seconds taken by `iterations` calls of model.test() in eval mode (as test.py runs it)."""
    model.eval()
    seconds = timed(model.test, model, batch, iterations, device)
    model.train()
    return seconds


def count_flops(args, base_opt, batch):
    """(FLOPs of one training iteration, inference FLOPs per image), counted on a fresh fp32 eager model."""
    model = build_model(base_opt, Config())
    with FlopCounterMode(display=False) as counter:
        model.set_input(batch)
        model.optimize_parameters()
    train_flops = counter.get_total_flops()
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model.set_input(batch)
        model.test()
    del model
    gc.collect()  # freed now, so that it cannot leave the CUDA memory counts of the timed models mid-way
    return train_flops, counter.get_total_flops() / args.batch_size


def cuda_memory_in_use(device):
    """Bytes of CUDA memory held by tensors now (None on the CPU)."""
    return torch.cuda.memory_allocated() if device == "cuda" else None


def reset_peak_memory(device):
    """Start a new peak: CUDA's allocator statistics, or the process's RSS high-water mark."""
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        return
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # 5 resets VmHWM to the current RSS (Linux 4.0+)
    except OSError:
        pass  # then the mark covers the whole process lifetime; still an upper bound


def peak_memory(device):
    """CUDA: peak bytes allocated since the reset; CPU: the process's VmHWM in bytes (0 if unknown)."""
    if device == "cuda":
        return torch.cuda.max_memory_allocated()
    try:
        with open("/proc/self/status") as handle:
            return int(re.search(r"VmHWM:\s+(\d+) kB", handle.read()).group(1)) * 1024
    except (OSError, AttributeError):
        return 0


def prepare(args, base_opt, config, batch):
    """Build `config`'s model and warm it up (training, and inference without torchrun); None when the
    tool refuses it (every rank refuses alike, so the ranks keep building the same configurations)."""
    before = cuda_memory_in_use(args.device)
    try:
        model = build_model(base_opt, config)
    except UserError as err:
        print(f"note: skipping {config.label}: {err}")
        return None
    first_iteration_s = time_training(model, batch, 1, args.device)
    time_training(model, batch, args.warmup - 1, args.device)
    if not base_opt.runtime.distributed:
        time_inference(model, batch, 1, args.device)
    resident = None if before is None else cuda_memory_in_use(args.device) - before
    return Run(config, model, resident, first_iteration_s)


def measure_round(run, args, batch):
    """Time one round of `run`: --iters training iterations, then --inference_iters inference calls."""
    start_bytes = cuda_memory_in_use(args.device)
    reset_peak_memory(args.device)
    train_s = time_training(run.model, batch, args.iters, args.device)
    infer_s = time_inference(run.model, batch, args.inference_iters, args.device)
    peak = peak_memory(args.device)
    if start_bytes is not None:
        # Other configurations' models are resident too: count only this one's tensors and work.
        peak = run.resident_bytes + peak - start_bytes
    run.peak_bytes = max(run.peak_bytes, peak)
    run.train_rates.append(args.iters / train_s)
    run.infer_rates.append(args.inference_iters * args.batch_size / infer_s)


def barrier(opt):
    """Wait until every rank gets here (NCCL: on this rank's GPU)."""
    device = opt.runtime.device
    dist.barrier(device_ids=[device.index] if device.type == "cuda" else None)


def measure_distributed_round(run, args, opt, batch):
    """Time one round of `run` on this rank: --iters training iterations, started together on all ranks."""
    barrier(opt)
    train_s = time_training(run.model, batch, args.iters, args.device)
    barrier(opt)  # no rank starts the next configuration while another still times this one
    run.train_rates.append(args.iters / train_s)


def conv_peak_flops(device, amp):
    """Achievable FLOP/s of a large forward convolution (256->256 channels, 3x3, 64x64 images) in the
    precision of `amp` (fp32 may use TF32 on CUDA, as the tool allows by default)."""
    dtype, batch_size = PRECISION_DTYPES[amp], 32 if device == "cuda" else 2
    channels, size = PEAK_CONV_CHANNELS, PEAK_CONV_SIZE
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
    conv = conv.to(device=device, dtype=dtype, memory_format=torch.channels_last)
    images = torch.randn(batch_size, channels, size, size, device=device, dtype=dtype)
    images = images.contiguous(memory_format=torch.channels_last)
    flops_per_call = 2 * channels * channels * 9 * size * size * batch_size
    with torch.inference_mode():
        for _ in range(2):  # autotuning and first-call allocations
            conv(images)
        synchronize(device)
        start = time.perf_counter()
        conv(images)
        synchronize(device)
        calls = max(3, int(PEAK_TIME_BUDGET_S / max(time.perf_counter() - start, 1e-6)))
        start = time.perf_counter()
        for _ in range(calls):
            conv(images)
        synchronize(device)
    return flops_per_call * calls / (time.perf_counter() - start)


def measure_peaks(device, configs):
    """{amp: conv peak FLOP/s} for fp32, bf16 and every precision the configurations use."""
    wanted = dict.fromkeys(["none", "bf16"] + [config.amp for config in configs])
    peaks = {}
    for amp in wanted:
        if amp == "bf16" and device == "cuda" and not torch.cuda.is_bf16_supported():
            continue
        if amp == "fp16" and device != "cuda":
            continue
        peaks[amp] = conv_peak_flops(device, amp)
    return peaks


def device_name(device):
    """The GPU's name, or the CPU's model name."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo") as handle:
            return re.search(r"model name\s*:\s*(.+)", handle.read()).group(1).strip()
    except (OSError, AttributeError):
        return platform.processor() or "cpu"


def settings_record(run, args):
    """The settings of one configuration's measurement, as a flat dict."""
    return {
        "config": run.config.label, "model": args.model, "netG": run.model.opt.netG, "ngf": args.ngf, "ndf": args.ndf,
        "crop_size": args.crop_size, "batch_size": args.batch_size, "device": args.device,
        "amp": run.config.amp, "channels_last": run.config.channels_last, "compile": run.config.compile,
        "warmup": args.warmup, "iters": args.iters, "rounds": args.rounds,
    }


def result_record(run, first, args, flops, peaks):
    """Every number of one configuration, with its settings and environment, as a flat dict."""
    train_flops, infer_flops_per_image = flops
    train_rate = statistics.median(run.train_rates)
    achieved = train_flops * train_rate
    peak = peaks.get(run.config.amp)
    return {
        **settings_record(run, args), "inference_iters": args.inference_iters, "world_size": 1,
        "train_it_s": train_rate, "train_img_s": train_rate * args.batch_size,
        "train_it_s_rounds": run.train_rates,
        # Per-round ratios: both sides of each ratio ran moments apart on the same machine state.
        "speedup_vs_first": statistics.median(mine / theirs for mine, theirs in zip(run.train_rates, first.train_rates)),
        "infer_img_s": statistics.median(run.infer_rates), "infer_img_s_rounds": run.infer_rates,
        "first_iteration_s": run.first_iteration_s,
        "peak_mem_bytes": run.peak_bytes,
        "peak_mem_kind": "cuda_allocated_by_config" if args.device == "cuda" else "process_rss_high_water_mark",
        "train_flops_per_iter": train_flops, "infer_flops_per_image": infer_flops_per_image,
        "achieved_flop_s": achieved,
        "peak_flop_s": peak, "fraction_of_peak": achieved / peak if peak else None,
        "torch": torch.__version__, "device_name": device_name(args.device), "threads": torch.get_num_threads(),
    }


def distributed_record(run, args, opt, rank_rates, baselines):
    """Every number of one configuration under torchrun, as a flat dict (rank 0 only).

    rank_rates: each rank's training it/s per round, in rank order; baselines: single-process train
    img/s by workload (see read_baselines), or None without --baseline.
    """
    record = settings_record(run, args)
    per_rank_rounds = [[rate * args.batch_size for rate in rates] for rates in rank_rates]
    per_rank = [statistics.median(rounds) for rounds in per_rank_rounds]
    total = sum(per_rank)
    single = (baselines or {}).get(workload(record))
    return {
        **record, "world_size": opt.runtime.world_size, "backend": opt.runtime.backend,
        "per_rank_img_s": per_rank, "per_rank_img_s_rounds": per_rank_rounds, "total_img_s": total,
        "baseline_img_s": single, "efficiency": total / (opt.runtime.world_size * single) if single else None,
        "torch": torch.__version__, "device_name": device_name(args.device), "threads": torch.get_num_threads(),
    }


def workload(record):
    """The fields of a record that define the work measured (to match a --baseline line)."""
    return tuple(record.get(key) for key in WORKLOAD_KEYS)


def read_baselines(path):
    """{workload: train img/s} from the single-process lines of a --json file (a later line wins)."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as err:
        raise UserError(f"cannot read --baseline {path!r} ({err.strerror}); give a file a single-process run "
                        "wrote with --json")
    baselines = {}
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line) if line.strip() else {}
        except json.JSONDecodeError:
            raise UserError(f"--baseline {path!r} line {number} is not JSON; give a file a single-process run "
                            "wrote with --json")
        if isinstance(record, dict) and record.get("world_size", 1) == 1 and "train_img_s" in record:
            baselines[workload(record)] = record["train_img_s"]
    return baselines


def aligned(header, rows):
    """An aligned text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(row[column]) for row in [header] + rows) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) if column == 0 else cell.rjust(width)
                       for column, (cell, width) in enumerate(zip(row, widths))) for row in [header] + rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def format_table(records):
    """The aligned results table, one row per configuration."""
    header = ["config", "train it/s", "img/s", "infer img/s", "speed-up", "peak mem MiB", "GFLOP/iter",
              "TFLOP/s", "% of peak"]
    rows = [[r["config"], f"{r['train_it_s']:.3f}", f"{r['train_img_s']:.2f}", f"{r['infer_img_s']:.2f}",
             f"{r['speedup_vs_first']:.2f}x", f"{r['peak_mem_bytes'] / MIB:.0f}", f"{r['train_flops_per_iter'] / 1e9:.2f}",
             f"{r['achieved_flop_s'] / 1e12:.4f}",
             "-" if r["fraction_of_peak"] is None else f"{100 * r['fraction_of_peak']:.1f}"] for r in records]
    return aligned(header, rows)


def format_distributed_table(records):
    """The aligned results table of a torchrun run, one row per configuration."""
    header = ["config", "per-process img/s (rank 0, 1, ...)", "total img/s", "1-process img/s", "efficiency"]
    rows = [[r["config"], " ".join(f"{rate:.2f}" for rate in r["per_rank_img_s"]), f"{r['total_img_s']:.2f}",
             "unknown" if r["baseline_img_s"] is None else f"{r['baseline_img_s']:.2f}",
             "unknown" if r["efficiency"] is None else f"{100 * r['efficiency']:.1f}%"] for r in records]
    return aligned(header, rows)


def explanations(args, peaks):
    """Lines that say how the table's columns were measured."""
    memory = ("CUDA bytes allocated by the configuration's own tensors plus its iterations' transient peak"
              if args.device == "cuda" else
              "process-wide RSS high-water mark (VmHWM) during the configuration's rounds; every "
              "configuration's model is resident in the process, so it is not per configuration")
    lines = [f"train it/s, infer img/s: median over {args.rounds} round(s); speed-up: median per-round ratio of "
             "train it/s to the first configuration's",
             f"peak mem: {memory}",
             "GFLOP/iter: conv and matmul FLOPs (FlopCounterMode) of one fp32 eager training iteration, "
             "forward and backward; the same work is assumed for every configuration"]
    if peaks:
        measured = ", ".join(f"{'fp32' if amp == 'none' else amp} {flops / 1e12:.3f} TFLOP/s" for amp, flops in peaks.items())
        lines.append(f"% of peak: achieved FLOP/s over a {PEAK_CONV_CHANNELS}->{PEAK_CONV_CHANNELS} 3x3 conv's "
                     f"forward throughput on {PEAK_CONV_SIZE}x{PEAK_CONV_SIZE} images in the config's precision: "
                     f"{measured}")
    return lines


def distributed_explanations(args, opt, records):
    """Lines that say how a torchrun run's columns were measured."""
    if args.baseline is None:
        baseline = "unknown without --baseline (a single-process run's --json file)"
    else:
        baseline = (f"read from --baseline {args.baseline} for the same {', '.join(WORKLOAD_KEYS)}; unknown where "
                    "it holds no single-process line for them")
    lines = [f"per-process img/s: median over {args.rounds} round(s) of {args.iters} training iteration(s) on a batch "
             f"of {args.batch_size}, timed by each of the {opt.runtime.world_size} processes between barriers "
             f"(DDP, {opt.runtime.backend})",
             "total img/s: their sum; efficiency: total / (processes x 1-process img/s), the 1-process img/s " + baseline,
             "under torchrun only training is timed: inference, FLOP counting, memory peaks and --peak are skipped"]
    if any(record["efficiency"] is None for record in records) and args.baseline is not None:
        lines.append(f"note: --baseline {args.baseline} has no single-process line for some configurations; "
                     "run the benchmark without torchrun with the same flags and --json to get one")
    return lines


def parse_arguments(argv):
    """The benchmark's command line; UserError for values it cannot run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="cycle_gan", choices=("cycle_gan", "pix2pix"), help="model to measure (default: %(default)s)")
    parser.add_argument("--netG", default=None, choices=GENERATOR_CHOICES,
                        help="generator (default: the model's own, resnet_9blocks or unet_256)")
    parser.add_argument("--ngf", type=int, default=64, help="generator filters in the last conv layer (default: %(default)s)")
    parser.add_argument("--ndf", type=int, default=64, help="discriminator filters in the first conv layer (default: %(default)s)")
    parser.add_argument("--crop_size", type=int, default=256, help="image size, square (default: %(default)s)")
    parser.add_argument("--batch_size", type=int, default=1, help="images per iteration (default: %(default)s)")
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
                        help="also measure a large conv's throughput per precision and report each config's share of it")
    parser.add_argument("--json", metavar="PATH", help="also append the JSON lines to this file")
    parser.add_argument("--baseline", metavar="PATH",
                        help="under torchrun: a single-process run's --json file, for the scaling efficiency")
    args = parser.parse_args(argv)
    for name in ("ngf", "ndf", "crop_size", "batch_size", "warmup", "iters", "rounds", "inference_iters"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} {getattr(args, name)} is too small; give at least 1")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads {args.threads} is too small; give at least 1 or leave it out")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: CUDA is not available here; use --device cpu")
    return args


def prepared_runs(args, opt, configs, batch):
    """The warmed-up runs of the configurations this device can run; UserError when it runs none."""
    runs = [run for run in (prepare(args, opt, config, batch) for config in configs) if run is not None]
    if not runs:
        raise UserError("no configuration can run on this device; choose other --amp values or --device")
    return runs


def benchmark_single(args, opt, configs, batch):
    """Measure `configs` in this process alone: (table, explanation lines, records)."""
    flops = count_flops(args, opt, batch)
    runs = prepared_runs(args, opt, configs, batch)
    for _ in range(args.rounds):
        for run in runs:
            measure_round(run, args, batch)
    # After the rounds, so that the conv's buffers do not weigh on the configurations' memory peaks.
    peaks = measure_peaks(args.device, configs) if args.peak else {}
    records = [result_record(run, runs[0], args, flops, peaks) for run in runs]
    return format_table(records), explanations(args, peaks), records


def benchmark_distributed(args, opt, configs, batch, baselines):
    """Measure `configs` on every rank of a torchrun job; rank 0 gets (table, explanation lines,
    records), the other ranks None. baselines: as read_baselines returns, or None."""
    runs = prepared_runs(args, opt, configs, batch)
    for _ in range(args.rounds):
        for run in runs:
            measure_distributed_round(run, args, opt, batch)
    rank_rates = opt.runtime.gather_to_main([[run.train_rates for run in runs]])  # one list per rank, in rank order
    if not opt.runtime.is_main:
        return None
    records = [distributed_record(run, args, opt, [rates[index] for rates in rank_rates], baselines)
               for index, run in enumerate(runs)]
    return format_distributed_table(records), distributed_explanations(args, opt, records), records


def publish(args, table, notes, records):
    """Print the table, its explanations and the BENCH lines; append the JSON lines to --json."""
    print(table)
    for line in notes:
        print(line)
    lines = [json.dumps(record) for record in records]
    print("\n".join("BENCH " + line for line in lines))
    if args.json:  # plain JSON lines, one file gathering many runs
        try:
            with open(args.json, "a", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
        except OSError as err:
            raise UserError(f"cannot append to --json {args.json!r} ({err.strerror}); choose a writable file")


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
        publish(args, *report)


if __name__ == "__main__":
    main()
