"""Device and precision, decided once from the options and passed down in `opt`.

`setup_device(opt)` turns --gpu_ids into `opt.gpu_ids`/`opt.device`, checks that --amp fits the
device, and sets the backend switches (TF32, cuDNN autotuning, determinism). `autocast(opt)` gives
the mixed-precision context every model wraps its forward passes in.
"""
import contextlib
import os

import torch

from .errors import UserError
from .log import logger


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


def setup_device(opt):
    """Resolve the device and precision of `opt` (adds opt.gpu_ids as a list and opt.device) and
    configure the backends; UserError when --amp cannot run on that device."""
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
