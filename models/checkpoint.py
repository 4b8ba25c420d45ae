"""Network weights files as the original tool names them: <prefix>_net_<name>.pth.

Files are plain state_dicts of CPU tensors (written with util.atomic_files). Loads use
`weights_only=True`, accept the original tool's files (including stale InstanceNorm statistics of
its published generators) and explain a mismatch instead of dumping a state_dict error. A run with
--ema_decay saves each generator's averaged (EMA) weights under the usual name, so that any test.py,
the original's included, picks them, and its raw weights beside them as <prefix>_net_<name>_raw.pth.
The averages' file carries a mark with the decay in the state_dict's `_metadata` (where PyTorch keeps
its per-module versions; loading ignores it, the original tool deletes it), so that what a file holds
is told by the file itself, not by train_opt.txt, which a later run of the experiment rewrites.
"""
import glob
import os
import pickle
import re
from collections import OrderedDict

import torch
from torch import nn

from util.errors import UserError

from .generators import infer_generator_flags

_STALE_NORM_KEYS = ("running_mean", "running_var", "num_batches_tracked")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # left by DataParallel/DDP and torch.compile
RAW_SUFFIX = "_raw"  # <prefix>_net_<name>_raw.pth: a generator's raw weights beside its EMA weights
# The _metadata key of the averages' mark: load_state_dict looks up module names there, and no module
# name ends with a dot.
AVERAGE_MARK = "ema."


def checkpoint_path(save_dir, prefix, net_name):
    """checkpoints_dir/name/<prefix>_net_<net_name>.pth"""
    return os.path.join(save_dir, f"{prefix}_net_{net_name}.pth")


def _cpu_weights(net):
    return {key: value.detach().cpu() for key, value in unwrap(net).state_dict().items()}


def network_weights(model):
    """file name part -> state_dict as CPU tensors with clean names: what the weights files of a save of
    `model` hold (see weights_by_file)."""
    return weights_by_file({name: _cpu_weights(net) for name, net in model.networks().items()},
                           {name: _cpu_weights(net) for name, net in model.averaged_networks().items()},
                           model.average.decay if model.average else None)


def weights_by_file(networks, averaged, decay):
    """The weights files' contents, by the name part of each file: every network of `networks` (name ->
    state_dict) under its name, except that a generator with an average in `averaged` (name -> state_dict
    of its EMA copy) has the average, marked with `decay` (see mark_average), under its name and its own
    weights under <name>_raw."""
    files = dict(networks)
    for name, state in averaged.items():
        files[name + RAW_SUFFIX] = networks[name]
        files[name] = mark_average(state, decay)
    return files


def state_weights(model_state):
    """weights_by_file of the model part of a training state (see BaseModel.training_state)."""
    ema = model_state.get("ema", {})
    return weights_by_file(model_state["networks"], ema.get("networks", {}), ema.get("decay"))


def mark_average(state_dict, decay):
    """A copy of `state_dict` marked as averaged weights of --ema_decay `decay` (see average_decay)."""
    marked = OrderedDict(state_dict)
    marked._metadata = OrderedDict({AVERAGE_MARK: {"ema_decay": decay}})
    return marked


def average_decay(state_dict):
    """The --ema_decay of averaged weights read from a weights file (mark_average), None without the mark."""
    mark = getattr(state_dict, "_metadata", None) or {}
    return mark.get(AVERAGE_MARK, {}).get("ema_decay")


def weight_files(save_dir, prefixes, weights):
    """The (path, state_dict) pairs that save `weights` (see network_weights) under each prefix."""
    return [(checkpoint_path(save_dir, prefix, name), state) for prefix in prefixes
            for name, state in weights.items()]


def saved_prefixes(save_dir):
    """The epochs/iterations with saved networks in `save_dir` (e.g. ['5', 'iter_400', 'latest'])."""
    names = (os.path.basename(path) for path in glob.glob(os.path.join(glob.escape(save_dir), "*_net_*.pth"))
             if os.path.isfile(path))
    return sorted({re.sub(r"_net_.*\.pth$", "", name) for name in names})


def unwrap(net):
    """The plain network inside DDP/DataParallel or torch.compile wrappers."""
    while True:
        if isinstance(net, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            net = net.module
        elif hasattr(net, "_orig_mod"):
            net = net._orig_mod
        else:
            return net


def clean_state_dict(net, state_dict):
    """Adapt a saved state_dict to `net`: strip wrapper prefixes and drop InstanceNorm statistics
    that old versions of the original tool saved although the layers do not use them."""
    cleaned = {}
    for key, value in state_dict.items():
        for prefix in _WRAPPER_PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix):]
        cleaned[key] = value
    modules = dict(net.named_modules())
    for key in list(cleaned):
        module_name, _, leaf = key.rpartition(".")
        if leaf in _STALE_NORM_KEYS and isinstance(modules.get(module_name), nn.InstanceNorm2d):
            del cleaned[key]
    return cleaned


def load_state_dict_file(path):
    """Read a weights file safely (tensors and plain types only); UserError if it is not one."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise UserError(f"refusing to load {path}: it is not a plain weights file ({_first_line(err)}); "
                        "use a checkpoint written by this tool or the original one")
    except Exception as err:  # noqa: BLE001 - garbage makes the unpickler fail in many ways (KeyError, ...)
        raise UserError(f"cannot read {path} ({_first_line(err)}); the file is damaged, "
                        "pick another --epoch or re-download it")


def _first_line(err):
    """The first line of an error's message, or its class name when the message is empty (an empty
    file gives a bare EOFError)."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _mismatch_summary(net, state_dict):
    expected = net.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    resized = [k for k in expected if k in state_dict and state_dict[k].shape != expected[k].shape]
    if resized:
        key = resized[0]
        return f"{key} is {tuple(state_dict[key].shape)} in the file but {tuple(expected[key].shape)} here"
    return f"{len(missing)} missing keys (e.g. {missing[:1]}), {len(unexpected)} unexpected keys (e.g. {unexpected[:1]})"


def require_state_dict(obj, path):
    """UserError unless `obj`, read from weights file `path`, is a state_dict: a dict of tensors by name."""
    if isinstance(obj, dict) and obj and all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items()):
        return
    if isinstance(obj, dict):
        what = "a dict that is not all tensors by name" if obj else "an empty dict"
    else:
        what = f"a {type(obj).__name__}"
    raise UserError(f"{path} holds {what}, not network weights (a state_dict of tensors by name); use a "
                    "weights file written by this tool or the original one, or pick another --epoch")


def load_network(net, path, arch_hint=""):
    """Load the weights file `path` into `net` (unwrapped first). arch_hint: the flags `net` was built
    with, named in the error message when the file does not fit. Returns what the file holds, as
    weights_kind does."""
    target = unwrap(net)
    saved = load_state_dict_file(path)
    require_state_dict(saved, path)
    state_dict = clean_state_dict(target, saved)
    try:
        target.load_state_dict(state_dict)
    except RuntimeError:
        saved_flags = infer_generator_flags(state_dict)
        fix = f"it looks like {saved_flags}: pass these flags" if saved_flags else \
            "pass the architecture flags it was trained with"
        raise UserError(f"{path} does not fit the network built from {arch_hint or 'these flags'} "
                        f"({_mismatch_summary(target, state_dict)}); {fix}")
    return weights_kind(path, saved)


def raw_weights_path(path):
    """The file of the raw weights beside the averages in weights file `path`: <prefix>_net_<name>_raw.pth."""
    return path[:-len(".pth")] + RAW_SUFFIX + ".pth"


def weights_kind(path, saved):
    """(kind, decay) of weights file `path` whose contents are `saved`: ("ema", its --ema_decay) for a
    generator's averaged weights, ("raw", None) for weights as trained. Told by the file's mark; a file
    without one holds averages only when raw weights lie beside it (saves of ours made before the mark:
    their decay is unknown, None)."""
    decay = average_decay(saved)
    if decay is not None:
        return "ema", decay
    return ("ema", None) if os.path.isfile(raw_weights_path(path)) else ("raw", None)


def weights_file(save_dir, prefix, name, raw_weights=False):
    """The weights file of network `name` of the save `prefix`: <prefix>_net_<name>.pth, or with
    raw_weights the raw weights beside it where there are any (<prefix>_net_<name>_raw.pth)."""
    path = checkpoint_path(save_dir, prefix, name)
    raw_path = raw_weights_path(path)
    return raw_path if raw_weights and os.path.isfile(raw_path) else path


def describe_weights(loaded):
    """Which weights `loaded` ((path, kind, decay) of each file, see weights_kind) are, in words, e.g.
    'EMA weights (decay 0.999) from latest_net_G_A.pth, latest_net_G_B.pth'."""
    groups = {}
    for path, kind, decay in loaded:
        if kind == "raw":
            label = "raw weights"
        else:
            label = f"EMA weights (decay {decay:g})" if decay is not None else "EMA weights"
        groups.setdefault(label, []).append(os.path.basename(path))
    return "; ".join(f"{label} from {', '.join(files)}" for label, files in groups.items())


def require_raw_weights(path, kind, decay):
    """UserError when the raw weights were asked for but `path` (kind, decay: see weights_kind) holds a
    generator's averages whose raw weights file is missing."""
    if kind == "ema":
        of_decay = f" of --ema_decay {decay:g}" if decay is not None else ""
        raise UserError(f"no raw weights file {raw_weights_path(path)}: {os.path.basename(path)} holds the "
                        f"averaged (EMA) weights{of_decay}; leave out --raw_weights to use those, or pick an --epoch "
                        "saved with its raw weights")


def networks_in_save(save_dir, prefix):
    """The names of the networks saved as `prefix` in `save_dir` (e.g. ['D_A', 'D_B', 'G_A', 'G_B'])."""
    pattern = os.path.join(glob.escape(save_dir), f"{glob.escape(prefix)}_net_*.pth")
    names = (re.sub(r"(_raw)?\.pth$", "", os.path.basename(path)[len(prefix) + len("_net_"):])
             for path in glob.glob(pattern) if os.path.isfile(path))
    return sorted(set(names))


def missing_weights_message(save_dir, prefix, name, path):
    """The one-line error for network `name`'s weights `path` missing: which saves exist, or, where the
    save `prefix` exists with other networks (a run of another model), which networks it holds and
    how to test them."""
    held = networks_in_save(save_dir, prefix)
    if not held:
        found = saved_prefixes(save_dir)
        choice = f"saved there: {', '.join(found)}" if found else "nothing is saved there yet; train first"
        return f"no checkpoint {path}; pick an existing --epoch/--load_iter ({choice})"
    holds = f"no checkpoint {path}: save {prefix} holds {', '.join(held)}, not {name}"
    if {"G_A", "G_B"} <= set(held):
        return (f"{holds}, the networks of --model cycle_gan; test with --model cycle_gan, or one direction with "
                "--model test --model_suffix _A (or _B)")
    return f"{holds}; test with the --model (and --model_suffix) the run was trained with"


def load_networks(model, save_dir, prefix, arch_hint="", raw_weights=False):
    """Load the weights of save `prefix` into each network of `model` (the raw weights of generators saved
    with averages when raw_weights); UserError naming what exists if absent. Returns what was loaded, in
    words (describe_weights)."""
    loaded = []
    for name, net in model.networks().items():
        path = weights_file(save_dir, prefix, name, raw_weights)
        if not os.path.isfile(path):
            raise UserError(missing_weights_message(save_dir, prefix, name, path))
        kind, decay = load_network(net, path, arch_hint)
        if raw_weights:
            require_raw_weights(path, kind, decay)
        loaded.append((path, kind, decay))
    return describe_weights(loaded)


def load_prefix(opt):
    """The file prefix chosen by --epoch / --load_iter: iter_<n> when load_iter > 0, else the epoch."""
    return f"iter_{opt.load_iter}" if opt.load_iter > 0 else opt.epoch
