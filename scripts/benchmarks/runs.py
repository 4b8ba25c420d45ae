"""Shared set-up of every measurement: the tool's options and models built as train.py builds them,
synthetic batches like the data loader's, timed iterations, and each configuration's warm-up into a
Run that the speed and scaling measurements time round by round."""
import contextlib
import copy
import io
import time
from dataclasses import dataclass, field

import torch

from models import create_model
from options.base_options import seed_everything
from options.train_options import TrainOptions
from scripts.benchmarks.configurations import Config
from scripts.benchmarks.memory import cuda_memory_in_use
from util.errors import UserError


@dataclass
class Run:
    """A configuration under measurement. model: its built model; resident_bytes: CUDA memory its
    own tensors hold after warm-up (None on the CPU); first_iteration_s: the first training
    iteration's time (compilation included); the lists hold one rate per round; work_profile: with
    --peak, (profiled seconds per iteration, seconds of it in conv and matmul operators)."""

    config: Config
    model: object
    resident_bytes: int
    first_iteration_s: float
    train_rates: list = field(default_factory=list)
    infer_rates: list = field(default_factory=list)
    peak_bytes: int = 0
    work_profile: tuple = (None, None)


# The tool's yes/no flags of CUT's layers that the benchmark passes on (with --model cut or sincut).
ANTIALIAS_FLAGS = ("no_antialias", "no_antialias_up")


def parse_tool_options(args, workdir):
    """The tool's training options for the benchmark's model (their printout silenced), parsed once
    per process: parsing sets up the device and, under torchrun, joins the process group (CPU: gloo;
    CUDA: NCCL on GPU LOCAL_RANK), which can happen only once. The sizes not given in `args` are the
    model's own defaults, written back into `args`."""
    argv = ["--dataroot", workdir, "--checkpoints_dir", workdir, "--name", "bench", "--display_id", "0",
            "--gpu_ids", "0" if args.device == "cuda" else "-1", "--seed", "0", "--model", args.model]
    for name in ("ngf", "ndf", "crop_size", "batch_size", "netG", "CUT_mode"):
        if getattr(args, name):
            argv += [f"--{name}", str(getattr(args, name))]
    if args.crop_size:
        argv += ["--load_size", str(args.crop_size)]
    argv += [f"--{name}" for name in ANTIALIAS_FLAGS if getattr(args, name)]
    with contextlib.redirect_stdout(io.StringIO()):
        opt = TrainOptions().parse(argv)
    for name in ("ngf", "ndf", "crop_size", "batch_size"):
        setattr(args, name, getattr(opt, name))
    return opt


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


def prepared_runs(args, opt, configs, batch):
    """The warmed-up runs of the configurations this device can run; UserError when it runs none."""
    runs = [run for run in (prepare(args, opt, config, batch) for config in configs) if run is not None]
    if not runs:
        raise UserError("no configuration can run on this device; choose other --amp values or --device")
    return runs
