"""The training-state file: everything needed to continue a run exactly where it stopped.

Every save is one commit of several files (see util.atomic_files.write_files): the original-format weights
`<epoch>_net_<name>.pth` or `iter_<n>_net_<name>.pth` of a numbered save (weights only, as the
original keeps them; with --ema_decay the generators' averages, their raw weights in
`..._net_<name>_raw.pth`), `latest_net_<name>.pth`, and last `latest_state.pth`, which marks the set
complete. It holds the networks (and averages), optimisers, schedulers, image pools, the position in the run
(epoch, images done in it, images in total, the epoch's running generator loss), the current
epoch's data order and data seed, the random states (Python, NumPy, torch CPU and CUDA; each rank's
own under torchrun), the prefixes it saved weights under and the options. A kill between the files
of a save leaves the previous state in place; on resume `repair_weight_files` makes the weights
files agree with the state again. Data-loader workers need no saved state: every item's augmentation is seeded
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

from models import checkpoint
from models.cut_model import CUT_ARCHITECTURE_OPTIONS
from models.generators import GENERATOR_OPTION_DEFAULTS
from runtime.runtime import options_without_runtime, runtime_of
from util import atomic_files
from util.errors import UserError
from util.log import logger

STATE_FORMAT = 2
LATEST = "latest"
STATE_SUFFIX = "_state.pth"
# Flags that change the networks (their parameters, or what they compute): a run cannot continue with other values.
ARCHITECTURE_OPTIONS = ("model", "netG", "netD", "ngf", "ndf", "n_layers_D", "norm", "no_dropout",
                        "input_nc", "output_nc", *GENERATOR_OPTION_DEFAULTS, "spectral_norm", *CUT_ARCHITECTURE_OPTIONS)
# The value of an architecture option in runs without it (saved before it existed, or of a model
# that has no such flag): its default.
ARCHITECTURE_DEFAULTS = {**GENERATOR_OPTION_DEFAULTS, "spectral_norm": False}
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
    """The options as plain values (the device as text; the Runtime object left out), fit for a
    weights_only file."""
    return {key: str(value) if isinstance(value, torch.device) else value
            for key, value in options_without_runtime(opt).items()}


def state_path(save_dir, prefix):
    """checkpoints_dir/name/<prefix>_state.pth"""
    return os.path.join(save_dir, prefix + STATE_SUFFIX)


def rank_state(model):
    """This process's own random states and image pools (each rank of a torchrun job has its own)."""
    return {"rng": rng_states(), "pools": model.pool_states()}


def epoch_order(loader, progress):
    """The data order of the epoch in progress, to replay on resume; None at an epoch's end, where
    the loader still holds the finished epoch's order and the next one is drawn afresh."""
    return list(loader.sampler.order) if loader.sampler.epoch == progress.epoch else None


def build_state(model, progress, loader, opt, saved_as, other_ranks=()):
    """The training state as one dict of tensors and plain values.

    saved_as: the prefixes whose weights files this save writes; other_ranks: rank_state() of ranks
    1, 2, ... of a torchrun job (rank 0's are the top-level "rng" and the model's "pools").
    """
    return {
        "format": STATE_FORMAT,
        "model": model.training_state(),
        "progress": {"epoch": progress.epoch, "epoch_iter": progress.epoch_iter,
                     "total_iters": progress.total_iters, "loss_sum": progress.loss_sum.detach().cpu(),
                     "batches": progress.batches},
        "data": {"seed": loader.seed, "order": epoch_order(loader, progress), "dataset_len": len(loader.dataset)},
        "rng": rng_states(),
        "other_ranks": list(other_ranks),
        "saved_as": list(saved_as),
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


def save_checkpoint(model, progress, loader, opt, numbered=None, other_ranks=()):
    """Write one save as a single commit: the weights `<numbered>_net_*.pth` (an epoch or iter_<n>
    save, weights only, as the original tool keeps them) when given, `latest_net_*.pth`, and last
    `latest_state.pth`, the full training state that marks the set complete. UserError if it cannot
    (the previous save then stays as it was).

    other_ranks: rank_state() of the other processes of a torchrun job (see build_state).
    """
    save_dir = os.path.join(opt.checkpoints_dir, opt.name)
    prefixes = [numbered, LATEST] if numbered else [LATEST]
    state = build_state(model, progress, loader, opt, prefixes, other_ranks)
    files = checkpoint.weight_files(save_dir, prefixes, checkpoint.network_weights(model))
    files.append((state_path(save_dir, LATEST), state))
    check_free_space(save_dir, sum(_tensor_bytes(obj) for _, obj in files))
    atomic_files.write_files(files)


def _megabytes(count):
    """A byte count in MB, as `du --si` and the original's 113 MB per epoch count them."""
    return f"{count / 1e6:,.0f} MB" if count >= 1e7 else f"{count / 1e6:.2g} MB"


def numbered_saves_left(opt, progress, images_per_epoch):
    """How many numbered saves (epoch saves, or iter_<n> saves with --save_by_iter) the rest of the
    run makes, and how many of them stay on disk (--keep_last keeps only the newest)."""
    last_epoch = opt.n_epochs + opt.n_epochs_decay
    count = sum(1 for epoch in range(progress.epoch, last_epoch + 1)
                if epoch % opt.save_epoch_freq == 0 or epoch == last_epoch)
    if opt.save_by_iter and opt.save_latest_freq > 0:
        final_images = progress.total_iters + (last_epoch - progress.epoch + 1) * images_per_epoch - progress.epoch_iter
        count += final_images // opt.save_latest_freq - progress.total_iters // opt.save_latest_freq
    return count, min(count, opt.keep_last) if opt.keep_last > 0 else count


def estimate_save_sizes(model, opt):
    """(bytes of one set of weights files, bytes of the training state) of `model`: the state holds
    the networks, two Adam moments per parameter and the full image pools of every process."""
    weights = _tensor_bytes(checkpoint.network_weights(model))
    moments = sum(2 * _tensor_bytes(group["params"]) for optimizer in model.optimizers
                  for group in optimizer.param_groups)
    channels = max(opt.input_nc, opt.output_nc)
    pools = sum(pool.pool_size for pool in model.image_pools().values()) * channels * opt.crop_size ** 2 * 4
    return weights, weights + moments + pools * runtime_of(opt).world_size


def report_disk_plan(model, opt, progress, images_per_epoch):
    """Print what the run's saves will take on disk; warn when the free space will not last."""
    save_dir = os.path.join(opt.checkpoints_dir, opt.name)
    weights, state = estimate_save_sizes(model, opt)
    made, kept = numbered_saves_left(opt, progress, images_per_epoch)
    latest = weights + state
    # The newest save is written in full before it replaces the previous one.
    needed = kept * weights + 2 * latest
    free = shutil.disk_usage(save_dir).free
    print(f"disk: {made} numbered save(s) of {_megabytes(weights)} each (weights only"
          f"{f', the newest {kept} kept' if kept < made else ''}), plus latest: {_megabytes(weights)} of "
          f"weights and about {_megabytes(state)} of training state; about {_megabytes(needed)} in all, "
          f"{_megabytes(free)} free in {save_dir}")
    if free < needed:
        logger.warning(f"the saves of this run need about {_megabytes(needed)} but only {_megabytes(free)} is free "
                       f"in {save_dir}; free disk space, or save less with --keep_last or a larger --save_epoch_freq")


def repair_weight_files(save_dir, state):
    """Make the weights files of the save `state` marks complete equal its networks.

    A kill between the renames of a save, or a file damaged since, leaves weights files that are
    missing or belong to another save; they are rewritten from the state (which holds the networks).
    Weights of numbered saves beyond the state's position are the remains of a save that never
    completed: they are removed (training writes them again). Returns the paths rewritten and removed.
    """
    networks = checkpoint.state_weights(state["model"])
    stale = [(path, weights) for path, weights in
             checkpoint.weight_files(save_dir, state.get("saved_as", []), networks)
             if not _file_holds(path, weights)]
    atomic_files.write_files(stale)
    removed = [path for path in _numbered_weight_files(save_dir) if _saved_after(path, state["progress"])]
    for path in removed:
        os.remove(path)
    return [path for path, _ in stale], removed


def _file_holds(path, weights):
    """Whether the weights file `path` exists and holds exactly `weights`."""
    try:
        saved = checkpoint.load_state_dict_file(path)
    except UserError:
        return False
    return (isinstance(saved, dict) and saved.keys() == weights.keys()
            and all(torch.equal(saved[key], weights[key].cpu()) for key in weights))


def _numbered_weight_files(save_dir):
    return [path for path in glob.glob(os.path.join(glob.escape(save_dir), "*_net_*.pth"))
            if re.match(r"(iter_)?\d+_net_", os.path.basename(path))]


def _saved_after(path, progress):
    """Whether the numbered save `path` lies beyond `progress`: epoch saves are made when their epoch
    ends (progress then stands at the next epoch), iteration saves at their image count."""
    name = os.path.basename(path)
    iteration = re.match(r"iter_(\d+)_", name)
    if iteration:
        return int(iteration.group(1)) > progress["total_iters"]
    return int(re.match(r"(\d+)_", name).group(1)) >= progress["epoch"]


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
    saved_options, options = {**ARCHITECTURE_DEFAULTS, **saved_options}, {**ARCHITECTURE_DEFAULTS, **vars(opt)}
    differing = [name for name in ARCHITECTURE_OPTIONS if saved_options.get(name) != options.get(name)]
    if differing:
        saved = " ".join(_as_flag(name, saved_options.get(name)) for name in differing)
        given = " ".join(_as_flag(name, options.get(name)) for name in differing)
        raise UserError(f"{path} was trained with {saved}, not {given}; repeat the saved flags to continue it, "
                        "or start a new run with another --name")


def check_ema_decay(saved_options, opt, path):
    """Continuing a run with another --ema_decay: a new decay continues the generators' averages, and
    turning it on starts them from the current weights (a note each); turning it off is a UserError,
    as the run's usual weights files hold averages (its raw weights are in the *_raw.pth files)."""
    saved, given = saved_options.get("ema_decay", 0.0), opt.ema_decay
    if saved == given:
        return
    if given == 0:
        raise UserError(f"{path} was trained with --ema_decay {saved:g}, whose weights files hold the generators' "
                        f"averages; continue it with --ema_decay {saved:g} (or another decay above 0), or start a new "
                        "run with another --name")
    if saved == 0:
        logger.info(f"note: {path} was trained without --ema_decay; the generators' averages start from their "
                    "current weights")
    else:
        logger.info(f"note: the generators' averages continue with --ema_decay {given:g} (the run had {saved:g})")


def _as_flag(name, value):
    if isinstance(value, bool):
        return f"--{name}" if value else f"(no --{name})"
    return f"--{name} {value}"


def restore(model, state, rank=0):
    """Load a training state into `model` and the random generators; return its Progress.

    rank: this process's rank; each rank of a torchrun job takes back its own random states and
    image pools (a rank the save did not have keeps its fresh ones, with a warning).
    """
    model.load_training_state(state["model"])
    own = {"rng": state["rng"], "pools": state["model"]["pools"]}
    if rank > 0:
        others = state.get("other_ranks", [])
        own = others[rank - 1] if rank <= len(others) else None
        if own is None:
            logger.warning(f"the save holds no random states for rank {rank} (it was made by "
                           f"{len(others) + 1} process(es)); this rank continues with fresh ones")
    if own is not None:
        restore_rng_states(own["rng"])
        model.load_pool_states(own["pools"])
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


def guard_existing_run(opt, launch):
    """Refuse to start a new run over an experiment that already has saved weights, unless the user
    continues it (--continue_train) or asks to replace it (--overwrite: its files are moved aside).
    launch: this process's runtime.runtime.Launch."""
    save_dir = os.path.join(opt.checkpoints_dir, opt.name)
    saved = checkpoint.saved_prefixes(save_dir) if os.path.isdir(save_dir) else []
    if not saved or opt.continue_train:
        return
    if opt.overwrite and not launch.is_main:
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
