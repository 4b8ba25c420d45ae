"""The training-state file: everything needed to continue a run exactly where it stopped.

Every save writes, next to the original-format `<prefix>_net_<name>.pth` weights, one
`<prefix>_state.pth` holding the networks, optimisers, schedulers, image pools, the position in
the run (epoch, images done in it, images in total, the epoch's running generator loss), the
current epoch's data order and data seed, the random states (Python, NumPy, torch CPU and CUDA)
and the options. Data-loader workers need no saved state: every item's augmentation is seeded
from (data seed, epoch, position). State files hold only tensors and plain Python values, so they
load with `torch.load(..., weights_only=True)`.
"""
import glob
import os
import random
import re
import shutil
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from . import checkpoint
from .errors import UserError
from .log import logger

STATE_FORMAT = 1
STATE_SUFFIX = "_state.pth"
# Flags that change the networks' parameters: a run cannot continue with other values.
ARCHITECTURE_OPTIONS = ("model", "netG", "netD", "ngf", "ndf", "n_layers_D", "norm", "no_dropout",
                        "input_nc", "output_nc")
_FREE_SPACE_MARGIN = 1.2  # estimate of a save's size times this, plus a fixed reserve
_FREE_SPACE_RESERVE = 16 * 2 ** 20


@dataclass
class Progress:
    """Where a run stands: `epoch` is the epoch in progress, of which `epoch_iter` images are done.

    total_iters: images seen since the run started; loss_sum/batches: the epoch's running generator
    loss (for the plateau policy); order: the epoch's data order when resuming (None: draw it).
    """

    epoch: int
    epoch_iter: int = 0
    total_iters: int = 0
    loss_sum: torch.Tensor = field(default_factory=lambda: torch.zeros(()))
    batches: int = 0
    order: list = None

    def start_epoch(self, epoch):
        """Move to the start of `epoch`."""
        self.epoch, self.epoch_iter, self.batches, self.order = epoch, 0, 0, None
        self.loss_sum = torch.zeros((), device=self.loss_sum.device)


def rng_states():
    """The states of every random generator training draws from (Python, NumPy, torch CPU/CUDA)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_states(states):
    """Put back what `rng_states()` returned (CUDA states only when this machine has the GPUs)."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


def plain_options(opt):
    """The options as plain values (the device as text), fit for a weights_only file."""
    return {key: str(value) if isinstance(value, torch.device) else value for key, value in vars(opt).items()}


def state_path(save_dir, prefix):
    """checkpoints_dir/name/<prefix>_state.pth"""
    return os.path.join(save_dir, prefix + STATE_SUFFIX)


def build_state(model, progress, loader, opt):
    """The training state as one dict of tensors and plain values."""
    return {
        "format": STATE_FORMAT,
        "model": model.training_state(),
        "progress": {"epoch": progress.epoch, "epoch_iter": progress.epoch_iter,
                     "total_iters": progress.total_iters, "loss_sum": progress.loss_sum.detach().cpu(),
                     "batches": progress.batches},
        "data": {"seed": loader.seed, "order": list(loader.sampler.order), "dataset_len": len(loader.dataset)},
        "rng": rng_states(),
        "options": plain_options(opt),
    }


def _tensor_bytes(obj):
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(value) for value in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(value) for value in obj)
    return 0


def check_free_space(folder, needed_bytes):
    """UserError when `folder`'s file system has less room than a save of `needed_bytes` needs."""
    needed = needed_bytes * _FREE_SPACE_MARGIN + _FREE_SPACE_RESERVE
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise UserError(f"only {free / 2 ** 20:.0f} MiB free in {folder}, a save needs about "
                        f"{needed / 2 ** 20:.0f} MiB; free disk space (the previous checkpoint is intact)")


def save_checkpoint(model, progress, loader, opt, prefix):
    """Write <prefix>_state.pth and the <prefix>_net_<name>.pth weights (UserError if it cannot)."""
    save_dir = os.path.join(opt.checkpoints_dir, opt.name)
    state = build_state(model, progress, loader, opt)
    check_free_space(save_dir, 2 * _tensor_bytes(state))
    try:
        checkpoint.atomic_save(state, state_path(save_dir, prefix))
    except OSError as err:
        raise UserError(f"could not save {state_path(save_dir, prefix)} ({err.strerror or err}); free disk space "
                        "or fix the folder's permissions (the previous checkpoint is intact)")
    checkpoint.save_networks(model, save_dir, prefix)


def _saved_states(save_dir):
    """State files in `save_dir`, newest first."""
    return sorted(glob.glob(os.path.join(glob.escape(save_dir), "*" + STATE_SUFFIX)), key=os.path.getmtime,
                  reverse=True)


def find_resume_state(save_dir, prefix):
    """The state to continue from: <prefix>_state.pth when a specific epoch/iteration is asked for,
    otherwise the newest loadable state file. Returns (path, state) or (None, None)."""
    if prefix != "latest":
        path = state_path(save_dir, prefix)
        return (path, checkpoint.load_state_dict_file(path)) if os.path.isfile(path) else (None, None)
    for path in _saved_states(save_dir):
        try:
            return path, checkpoint.load_state_dict_file(path)
        except UserError as err:
            logger.warning(f"skipping {path}: {err}")
    return None, None


def check_same_architecture(saved_options, opt, path):
    """UserError naming every architecture flag that differs from the saved run's."""
    differing = [name for name in ARCHITECTURE_OPTIONS if saved_options.get(name) != getattr(opt, name, None)]
    if differing:
        saved = " ".join(_as_flag(name, saved_options.get(name)) for name in differing)
        given = " ".join(_as_flag(name, getattr(opt, name, None)) for name in differing)
        raise UserError(f"{path} was trained with {saved}, not {given}; repeat the saved flags to continue it, "
                        "or start a new run with another --name")


def _as_flag(name, value):
    if isinstance(value, bool):
        return f"--{name}" if value else f"(no --{name})"
    return f"--{name} {value}"


def restore(model, state):
    """Load a training state into `model` and the random generators; return its Progress."""
    model.load_training_state(state["model"])
    restore_rng_states(state["rng"])
    saved = state["progress"]
    return Progress(epoch=saved["epoch"], epoch_iter=saved["epoch_iter"], total_iters=saved["total_iters"],
                    loss_sum=saved["loss_sum"].to(model.device), batches=saved["batches"],
                    order=state["data"]["order"])


def prune_checkpoints(save_dir, keep_last):
    """Delete all but the newest `keep_last` epoch saves and iteration saves (weights and states).

    `latest` is never touched, nor the newest state file, whatever its name.
    """
    if keep_last <= 0:
        return
    newest_states = _saved_states(save_dir)[:1]
    protected = {os.path.basename(path)[:-len(STATE_SUFFIX)] for path in newest_states}
    prefixes = checkpoint.saved_prefixes(save_dir) + [os.path.basename(p)[:-len(STATE_SUFFIX)]
                                                      for p in _saved_states(save_dir)]
    for pattern in (r"(\d+)", r"iter_(\d+)"):
        numbered = sorted({p for p in prefixes if re.fullmatch(pattern, p)},
                          key=lambda p: int(re.fullmatch(pattern, p).group(1)))
        for prefix in numbered[:-keep_last]:
            if prefix in protected:
                continue
            for path in glob.glob(os.path.join(glob.escape(save_dir), f"{prefix}_net_*.pth")) + \
                    [state_path(save_dir, prefix)]:
                if os.path.exists(path):
                    os.remove(path)


def guard_existing_run(opt):
    """Refuse to start a new run over an experiment that already has saved weights, unless the user
    continues it (--continue_train) or asks to replace it (--overwrite: its files are moved aside)."""
    save_dir = os.path.join(opt.checkpoints_dir, opt.name)
    saved = checkpoint.saved_prefixes(save_dir) if os.path.isdir(save_dir) else []
    if not saved or opt.continue_train:
        return
    if opt.overwrite and int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun, rank 0 alone moves the old files
    if not opt.overwrite:
        raise UserError(f"{save_dir} already holds a training run (saved: {', '.join(saved)}); pass --continue_train "
                        "to resume it, --overwrite to start over (its files are kept aside), or choose another --name")
    archive = os.path.join(save_dir, time.strftime("replaced-%Y%m%d-%H%M%S"))
    os.makedirs(archive)
    for entry in os.listdir(save_dir):
        if not entry.startswith("replaced-"):
            shutil.move(os.path.join(save_dir, entry), os.path.join(archive, entry))
    logger.info(f"note: the previous run's files are moved to {archive}")
