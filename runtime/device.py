"""Device, precision and distribution, decided once from the options and passed down in `opt`.

`setup_device(opt)` turns --gpu_ids into `opt.gpu_ids`/`opt.device`, joins torchrun's process group
when there is one, checks that --amp fits the device, and sets the backend switches (TF32, cuDNN
autotuning, determinism). `autocast(opt)` gives the mixed-precision context every model wraps its
forward passes in; the helpers below wrap networks for DDP and let ranks agree on small things.
"""
import contextlib
import datetime
import logging
import os
import sys

import torch
import torch.distributed as dist

from util.errors import UserError
from util.log import logger


def resolve_gpu_ids(text):
    """Turn the `--gpu_ids` text into a list of CUDA device indices ([] = CPU).

    text: None (not given: the first GPU if CUDA is available, else the CPU with one notice),
    '-1' (CPU) or comma-separated indices such as '0' or '0,1,2'.
    """
    if text is None:
        if torch.cuda.is_available():
            return [0]
        logger.info("note: no CUDA GPU found; running on the CPU (pass --gpu_ids -1 to choose the CPU explicitly)")
        return []
    try:
        ids = [int(part) for part in str(text).split(",") if part.strip() != ""]
    except ValueError:
        raise UserError(f"--gpu_ids {text!r} is not a list of numbers; use e.g. --gpu_ids 0, --gpu_ids 0,1 or -1 for the CPU")
    ids = [i for i in ids if i >= 0]
    if not ids:
        return []
    if not torch.cuda.is_available():
        raise UserError(f"--gpu_ids {text} asks for a GPU but CUDA is not available here; pass --gpu_ids -1 to run on the CPU")
    missing = [i for i in ids if i >= torch.cuda.device_count()]
    if missing:
        raise UserError(f"--gpu_ids {text}: this machine has {torch.cuda.device_count()} GPU(s), no GPU {missing[0]}; "
                        "choose existing indices")
    if len(ids) > 1:
        logger.warning(f"--gpu_ids {text}: one process uses one GPU; to train on {len(ids)} GPUs run "
                       f"`torchrun --nproc_per_node={len(ids)} train.py ...`; using GPU {ids[0]} now")
        ids = ids[:1]
    return ids


def device_for(gpu_ids):
    """The torch.device for a resolved `gpu_ids` list."""
    return torch.device(f"cuda:{gpu_ids[0]}") if gpu_ids else torch.device("cpu")


AMP_CHOICES = ("none", "bf16", "fp16")
_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def launch_rank():
    """This process's rank when started by torchrun (RANK), else 0."""
    return int(os.environ.get("RANK", "0"))


def quiet_unless_main():
    """Only rank 0 prints: other processes of a torchrun job send stdout nowhere and log errors only."""
    if launch_rank() != 0:
        sys.stdout = open(os.devnull, "w")
        logger.setLevel(logging.ERROR)


def setup_device(opt):
    """Resolve the device, precision and process group of `opt` (adds opt.gpu_ids as a list,
    opt.device, opt.rank, opt.world_size, opt.is_main) and configure the backends; UserError when
    --amp cannot run on that device.

    Under torchrun (WORLD_SIZE > 1) each process takes GPU LOCAL_RANK and joins an NCCL process
    group, or a gloo one on the CPU (--gpu_ids -1 or no CUDA). Without torchrun nothing changes.
    """
    opt.rank, opt.world_size = launch_rank(), int(os.environ.get("WORLD_SIZE", "1"))
    opt.is_main = opt.rank == 0
    if opt.world_size > 1:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = torch.cuda.is_available() and str(opt.gpu_ids).strip() != "-1"
        opt.gpu_ids = [local_rank] if use_cuda else []
        opt.device = device_for(opt.gpu_ids)
        if use_cuda:
            torch.cuda.set_device(opt.device)
        init_process_group(opt, "nccl" if use_cuda else "gloo")
    else:
        opt.gpu_ids = resolve_gpu_ids(opt.gpu_ids)
        opt.device = device_for(opt.gpu_ids)
    check_amp(opt.amp, opt.device)
    deterministic = getattr(opt, "deterministic", False)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by deterministic cuBLAS
        torch.use_deterministic_algorithms(True)
    if opt.device.type == "cuda":
        torch.backends.cudnn.deterministic = deterministic
        torch.backends.cudnn.benchmark = not deterministic  # fixed crop sizes: autotuning pays off
        torch.backends.cuda.matmul.allow_tf32 = not opt.no_tf32
        torch.backends.cudnn.allow_tf32 = not opt.no_tf32


_control_group = None  # a gloo group for small host-side agreements (stop flags, epoch losses)


def init_process_group(opt, backend):
    """Join torchrun's process group; collectives that wait longer than --dist_timeout fail loudly
    instead of hanging, and torchrun then ends the whole job."""
    global _control_group
    timeout = datetime.timedelta(seconds=opt.dist_timeout)
    dist.init_process_group(backend=backend, timeout=timeout)
    _control_group = dist.new_group(backend="gloo", timeout=timeout) if backend != "gloo" else dist.group.WORLD


def distributed():
    """Whether this process is one of several in a torchrun job."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_ranks_agree(flag):
    """True when `flag` is true on any rank (e.g. one rank received SIGTERM); no GPU synchronisation."""
    if not distributed():
        return bool(flag)
    value = torch.tensor([1 if flag else 0])
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=_control_group)
    return bool(value.item())


def mean_over_ranks(value):
    """The mean of a Python float over all ranks (the value itself without torchrun)."""
    if not distributed():
        return value
    total = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(total, group=_control_group)
    return total.item() / dist.get_world_size()


def gather_to_main(items):
    """Rank 0 gets the concatenation of every rank's list `items` (others get []); a plain list without torchrun."""
    if not distributed():
        return list(items)
    gathered = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(list(items), gathered, dst=0, group=_control_group)
    return [item for part in gathered for item in part] if gathered else []


def check_amp(amp, device):
    """UserError for a --amp value this device cannot run."""
    if amp == "fp16" and device.type != "cuda":
        raise UserError("--amp fp16 needs a CUDA GPU; on the CPU use --amp bf16 (fast on CPUs with AMX or AVX-512 BF16)")
    if amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserError("--amp bf16 needs an Ampere or newer GPU; use --amp fp16 on this one")


def autocast(opt):
    """The autocast context for forward passes under --amp (a no-op context for --amp none)."""
    if opt.amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device_type=opt.device.type, dtype=_AMP_DTYPES[opt.amp])
