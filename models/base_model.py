"""BaseModel: what every model shares (devices, optimiser schedules, visuals, losses, state).

A model fills in `set_input`, `forward` and `optimize_parameters`, names its losses, visuals and
networks in `loss_names`, `visual_names` and `model_names` (its generators among them in
`generator_names`: those --ema_decay averages, see models/ema.py), and may add flags in
`modify_commandline_options`. Models never print or write files; train.py, test.py and engine/ do
(models/checkpoint.py only names and loads weights files).
"""
import contextlib
import itertools
from abc import ABC, abstractmethod
from collections import OrderedDict

import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from runtime.runtime import runtime_of
from util.errors import UserError

from .checkpoint import unwrap
from .discriminators import receptive_field
from .ema import WeightAverage
from .image_pool import ImagePool
from .parallel import data_parallel, sync_batch_norm
from .schedulers import get_scheduler
from .size_padding import attach_size_padding
from .tiling import attach_tiling

# The layers whose operations autocast runs in the reduced precision, with every weight converted:
# every convolution (the lazy ones are subclasses of these) and linear layer, named by public classes.
AUTOCAST_WEIGHT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
                          nn.Linear)


def to_channels_last(net):
    """Store every 4-d parameter and buffer of `net` channels-last, in place (Module.to would also ask it of
    5-d ones, which cannot: the StyleGAN2 decoder's weights are (1, out, in, k, k))."""
    for tensor in itertools.chain(net.parameters(), net.buffers()):
        if tensor.dim() == 4:
            tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)


class BaseModel(ABC):
    """Shared machinery of all models; `opt` is the parsed options (its Runtime says where and in which
    precision to run)."""

    def __init__(self, opt):
        self.opt = opt
        self.isTrain = opt.isTrain
        self.runtime = runtime_of(opt)
        self.device = self.runtime.device
        self.loss_names = []
        self.model_names = []
        self.generator_names = []  # the networks of model_names that are generators
        self.average = None  # their models.ema.WeightAverage with --ema_decay (training only)
        self.averaged_optimizers = []  # the optimisers after whose steps the average is updated
        self.visual_names = []
        self.optimizers = []
        self.scalers = []  # one loss scaler per optimiser (active for --amp fp16 only)
        self.steps_taken = []  # steps of each optimiser so far (lazy regularisers count them)
        self.schedulers = []
        self.image_paths = []

    @staticmethod
    def modify_commandline_options(parser, is_train):
        """Add model-specific flags or change defaults; is_train: training or testing. Returns parser."""
        return parser

    @staticmethod
    def dependent_defaults(known, is_train):
        """Defaults that depend on flags parsed before them (CUT's follow --CUT_mode): {dest: value},
        applied where the user gives no value. known: the options parsed so far; is_train: training
        or testing."""
        return {}

    @abstractmethod
    def set_input(self, batch):
        """Unpack a batch from the data loader (dict of tensors and paths) onto the device."""

    @abstractmethod
    def forward(self):
        """Compute the outputs; used by optimize_parameters and test."""

    @abstractmethod
    def optimize_parameters(self):
        """One training iteration: losses, gradients and optimiser steps."""

    def build_network(self, net):
        """Place a freshly built network on the device in the chosen memory format; generators also
        get size padding (below); with --compile its forward is compiled (names stay clean)."""
        net = sync_batch_norm(net.to(self.device), self.opt)
        if self.opt.channels_last:
            to_channels_last(net)
        if hasattr(net, "size_multiple"):
            attach_size_padding(net, net.size_multiple)
        if self.opt.compile:
            # Compiling the bound forward (not wrapping the module) keeps parameter names, hooks and
            # requires_grad switches as in eager mode; switching D on and off costs one recompile.
            net.forward = torch.compile(net.forward)
        return data_parallel(net, self.opt) if self.isTrain else net

    @staticmethod
    def without_sync(net):
        """The network itself, outside DistributedDataParallel: for forward passes through a frozen
        network (the discriminators in the generator step), whose parameters get no gradients, so
        that DDP neither waits for them nor hangs; and for the WGAN-GP penalty, whose input gradient
        DDP does not support (its parameter gradients join those of the DDP passes in the same
        backward, so DDP still averages them)."""
        return unwrap(net)

    def to_input(self, tensor):
        """A batch tensor on the device (asynchronous from pinned memory), in the networks' memory format."""
        memory_format = torch.channels_last if self.opt.channels_last else torch.preserve_format
        return tensor.to(self.device, non_blocking=True, memory_format=memory_format)

    def unpack_pair(self, batch):
        """(A images, B images, A paths) of a batch, on the device; --direction BtoA swaps the domains."""
        a, b = ("A", "B") if self.opt.direction == "AtoB" else ("B", "A")
        return self.to_input(batch[a]), self.to_input(batch[b]), batch[a + "_paths"]

    def autocast(self):
        """The mixed-precision context of --amp for forward passes and losses."""
        return self.runtime.autocast()

    def make_optimizer(self, parameters):
        """Adam with --lr, --beta1 and --beta2 (the fused kernel on CUDA and under --amp), registered with its loss
        scaler."""
        opt = self.opt
        optimizer = torch.optim.Adam(parameters, lr=opt.lr, betas=(opt.beta1, opt.beta2), fused=self.runtime.fused_adam)
        self.optimizers.append(optimizer)
        self.scalers.append(torch.amp.GradScaler(self.device.type, enabled=self.runtime.needs_grad_scaler))
        self.steps_taken.append(0)
        return optimizer

    def scaler_of(self, optimizer):
        """The loss scaler that goes with `optimizer`."""
        return self.scalers[self.optimizers.index(optimizer)]

    def steps_of(self, optimizer):
        """How many steps `optimizer` has taken in the run (resumed runs included)."""
        return self.steps_taken[self.optimizers.index(optimizer)]

    def backward(self, loss, optimizer):
        """Back-propagate `loss` for `optimizer` (scaled under --amp fp16)."""
        self.scaler_of(optimizer).scale(loss).backward()

    def step(self, optimizer):
        """Apply the gradients (fp16: unscaled, and skipped when not finite) and update the scaler."""
        scaler = self.scaler_of(optimizer)
        scaler.step(optimizer)
        scaler.update()
        self.steps_taken[self.optimizers.index(optimizer)] += 1
        if self.average and optimizer in self.averaged_optimizers:
            self.average.update(self.generators())

    def networks(self):
        """OrderedDict name -> network, in `model_names` order (G_A, G_B, D_A, D_B for CycleGAN)."""
        return OrderedDict((name, getattr(self, "net" + name)) for name in self.model_names)

    def setup(self):
        """Create the learning-rate schedulers and, with --ema_decay, the generators' averages (training
        only); call after the optimisers exist."""
        if self.isTrain:
            self.schedulers = [get_scheduler(optimizer, self.opt) for optimizer in self.optimizers]
            if getattr(self.opt, "ema_decay", 0) > 0:
                self.start_average()

    def start_average(self):
        """Average the generators (--ema_decay), updated after every step of an optimiser that trains them."""
        if not self.generator_names:
            raise UserError(f"--model {self.opt.model} names no generators to average; train it without --ema_decay")
        generators = self.generators()
        trained = {id(param) for net in generators.values() for param in net.parameters()}
        self.averaged_optimizers = [optimizer for optimizer in self.optimizers if any(
            id(param) in trained for group in optimizer.param_groups for param in group["params"])]
        self.average = WeightAverage(generators, self.opt.ema_decay)

    def generators(self):
        """name -> generator network, in `generator_names` order."""
        return {name: getattr(self, "net" + name) for name in self.generator_names}

    def averaged_networks(self):
        """name -> the EMA copy of each generator; empty without --ema_decay."""
        return dict(self.average.networks) if self.average else {}

    def restart_average(self):
        """Start the generators' averages afresh from their current weights (a run continued without
        saved averages); nothing without --ema_decay."""
        if self.average:
            self.average.restart(self.generators())

    def outputs_from_averages(self):
        """Whether the outputs the user sees come from the generators' averages (--ema_decay without
        --raw_weights)."""
        return self.average is not None and not self.opt.raw_weights

    @contextlib.contextmanager
    def generators_for_outputs(self):
        """Within it each generator attribute (netG_A, ...) is the network whose outputs the user sees:
        its EMA copy with --ema_decay, the trained network itself without it or with --raw_weights."""
        if not self.outputs_from_averages():
            yield
            return
        trained = self.generators()
        try:
            for name, average in self.average.networks.items():
                setattr(self, "net" + name, average)
            yield
        finally:
            for name, net in trained.items():
                setattr(self, "net" + name, net)

    def image_pools(self):
        """The model's image pools by attribute name (they are part of the training state)."""
        return {name: value for name, value in sorted(vars(self).items()) if isinstance(value, ImagePool)}

    def training_state(self):
        """Everything of the model a resumed run needs: networks, optimisers, schedulers, step counts,
        image pools, and the generators' averages with --ema_decay."""
        state = {
            "networks": {name: unwrap(net).state_dict() for name, net in self.networks().items()},
            "optimizers": [optimizer.state_dict() for optimizer in self.optimizers],
            "scalers": [scaler.state_dict() for scaler in self.scalers],
            "schedulers": [scheduler.state_dict() for scheduler in self.schedulers],
            "steps_taken": list(self.steps_taken),
            "pools": self.pool_states(),
        }
        if self.average:
            state["ema"] = self.average.state_dict()
        return state

    def pool_states(self):
        """The image pools' contents (each process of a torchrun job has its own)."""
        return {name: pool.state_dict() for name, pool in self.image_pools().items()}

    def load_pool_states(self, states):
        """Restore what `pool_states()` returned."""
        for name, pool in self.image_pools().items():
            pool.load_state_dict(states[name], self.device)

    def load_training_state(self, state):
        """Restore what `training_state()` returned, except the image pools: those belong to one
        process and are restored with `load_pool_states` (util/train_state.restore picks this rank's)."""
        for name, net in self.networks().items():
            unwrap(net).load_state_dict(state["networks"][name])
        for optimizer, saved in zip(self.optimizers, state["optimizers"]):
            optimizer.load_state_dict(saved)
        for scaler, saved in zip(self.scalers, state["scalers"]):
            if saved:
                scaler.load_state_dict(saved)
        for scheduler, saved in zip(self.schedulers, state["schedulers"]):
            scheduler.load_state_dict(saved)
        self.steps_taken = list(state.get("steps_taken", self.steps_taken))  # states saved before it: 0
        if self.average and "ema" in state:
            self.average.load_state_dict(state["ema"])
        else:
            self.restart_average()  # --ema_decay turned on for a run saved without it

    def train(self):
        """Put every network in training mode."""
        for net in self.networks().values():
            net.train()

    def eval(self):
        """Put every network in eval mode (batch-norm running statistics, no dropout)."""
        for net in self.networks().values():
            net.eval()

    def store_weights_in_amp_dtype(self):
        """For inference only (test.py): keep the weights of the layers that autocast runs in --amp's
        precision (convolutions and linear layers) in that precision, so that autocast no longer converts
        every weight on every forward pass. The outputs stay the same, bit for bit: autocast gives these
        layers the same rounded weights either way. Nothing without --amp; weights that a parametrisation
        computes (--spectral_norm) are left as they are. Train no further afterwards."""
        if self.runtime.amp_dtype is None:
            return
        for net in self.networks().values():
            for layer in net.modules():
                if isinstance(layer, AUTOCAST_WEIGHT_LAYERS) and not parametrize.is_parametrized(layer):
                    layer.to(self.runtime.amp_dtype)

    def test(self, training_visuals=False):
        """Forward pass without gradients, for test.py and for visuals. training_visuals: also compute the
        visuals that only a training step makes (see forward_training_visuals)."""
        with torch.inference_mode(), self.autocast():
            self.forward()
            if training_visuals:
                self.forward_training_visuals()
            self.compute_visuals()

    def forward_training_visuals(self):  # noqa: B027 - an optional hook, not an abstract method
        """Compute, with the current generators, the visuals that a training step makes besides `forward`'s
        (CycleGAN's and CUT's identity images), so that the generators' averages can show them too; none
        by default."""

    def tile_generators(self, tile, overlap, statistics):
        """From now on every generator translates in tiles of `tile` px overlapping by `overlap` px,
        normalised with `statistics` (test.py --tile, --tile_overlap, --tile_statistics; models/tiling.py)."""
        for net in self.networks().values():
            if hasattr(net, "size_multiple"):
                attach_tiling(net, tile, overlap, statistics)

    def compute_visuals(self):  # noqa: B027 - an optional hook, not an abstract method
        """Derive extra visuals after a forward pass (none by default)."""

    def get_image_paths(self):
        """Paths of the images of the current batch."""
        return self.image_paths

    def current_lr(self):
        """Learning rate of the first optimiser."""
        return self.optimizers[0].param_groups[0]["lr"]

    def update_learning_rate(self, metric=None):
        """Step every scheduler at the end of an epoch; metric: the quantity the plateau policy watches.

        Returns (old_lr, new_lr) of the first optimiser.
        """
        old_lr = self.current_lr()
        for scheduler in self.schedulers:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(metric)
            else:
                scheduler.step()
        return old_lr, self.current_lr()

    def get_current_visuals(self):
        """OrderedDict visual name -> image batch tensor in [-1, 1]."""
        return OrderedDict((name, getattr(self, name)) for name in self.visual_names if hasattr(self, name))

    def generator_loss(self):
        """The total generator loss of the last iteration, as a tensor (the plateau policy's metric)."""
        return self.loss_G

    def losses_finite(self):
        """A device bool tensor: whether every loss of the last iteration is finite (no sync)."""
        return torch.stack([getattr(self, "loss_" + name).detach().float() for name in self.loss_names]).isfinite().all()

    def get_current_losses(self):
        """OrderedDict loss name -> float (this synchronises with the device; call it sparingly)."""
        return OrderedDict((name, float(getattr(self, "loss_" + name).detach())) for name in self.loss_names)

    def describe_networks(self, verbose):
        """One line per network with its parameter count (and receptive field for discriminators, the
        options of ours a generator is built with); with verbose, each network's structure first."""
        lines = []
        for name, net in self.networks().items():
            if verbose:
                lines.append(str(net))
            count = sum(p.numel() for p in net.parameters())
            line = f"[Network {name}] Total number of parameters : {count / 1e6:.3f} M"
            if name.startswith("D"):
                line += f", receptive field {receptive_field(net)}x{receptive_field(net)} pixels"
            option_flags = getattr(unwrap(net), "option_flags", [])
            if option_flags:
                line += f", built with {' '.join(option_flags)}"
            lines.append(line)
        if self.average:
            lines.append(f"[EMA] {', '.join(self.generator_names)} averaged with --ema_decay {self.average.decay:g} "
                         "(decay min(D, (1 + n) / (10 + n)) at update n)")
        return "\n".join(lines)

    @staticmethod
    def set_requires_grad(nets, requires_grad):
        """Turn gradients of every parameter of `nets` on or off (frozen discriminators in the G step)."""
        for net in nets:
            for param in net.parameters():
                param.requires_grad_(requires_grad)

