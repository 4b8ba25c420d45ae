"""Where the networks run, decided once from `--gpu_ids` and passed down as `opt.gpu_ids`/`opt.device`."""
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


def configure_determinism(deterministic):
    """With `deterministic`, allow only deterministic algorithms (CPU and CUDA) so reruns match bit for bit."""
    if not deterministic:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by deterministic cuBLAS
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
