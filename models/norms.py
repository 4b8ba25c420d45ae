"""Normalisation layers chosen by `--norm`, and whether convolutions next to them carry a bias."""
import functools

import torch
import torch.nn as nn
import torch.nn.functional as F

from runtime.runtime import group_place

NORM_CHOICES = ("instance", "batch", "syncbatch", "none")


class InstanceNorm2d(nn.InstanceNorm2d):
    """Instance norm, printed and saved exactly like torch's, whose gradient is right for channels-last
    tensors and whose training pass on one image does no needless copy (same values, bit for bit).
    torch 2.14's CPU instance norm returns a wrong input gradient (off by the size of the gradient
    itself) when the incoming gradient is channels-last and the batch holds one image, which is what
    `--channels_last` training at batch size 1 feeds it; a contiguous gradient is handled right.
    """

    def _apply_instance_norm(self, x):
        # torch's nn.InstanceNorm2d hook for the normalisation itself; written out (not via super())
        # so that the module stays scriptable for `scripts/export.py --format torchscript`.
        if self.running_mean is None and is_channels_last_on_cpu(x) and not x.requires_grad:
            # Group norm with one group per channel is instance norm (the same statistics, up to float
            # rounding), and its CPU kernel keeps the channels-last layout where torch's instance norm
            # converts to contiguous and back: a bf16 generator at 256 px ran twice as fast on an AMX
            # Xeon. Inference only: group norm's CPU backward pass in bf16 took 17 ms a layer there.
            return F.group_norm(x, x.size(1), self.weight, self.bias, self.eps)
        if x.requires_grad and x.size(0) == 1 and self.running_mean is None:
            # One image: batch norm over the batch is instance norm, the very call torch's instance norm
            # makes on the same contiguous values, which then returns a view of the result. The in-place
            # ReLU after a view costs a copy of the gradient in backward (about 2% of a training step at
            # 128 px); batch norm's own result does not. Only while training: exports keep InstanceNorm.
            out = F.batch_norm(x.contiguous(), None, None, self.weight, self.bias, True, 0.0, self.eps)
        else:
            out = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                  self.training or not self.track_running_stats,
                                  self.momentum if self.momentum is not None else 0.0, self.eps)
        if not torch.jit.is_scripting() and out.requires_grad:
            out.register_hook(torch.Tensor.contiguous)
        return out

    def _get_name(self):
        return "InstanceNorm2d"


def is_channels_last_on_cpu(x):
    """Whether x is a CPU image batch laid out channels-last (and not also contiguous, as tensors with one
    channel or one pixel are)."""
    return x.device.type == "cpu" and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
        and not x.is_contiguous()


class Identity(nn.Module):
    """A no-op layer standing in for a normalisation when `--norm none`."""

    def forward(self, x):
        return x


def get_norm_layer(norm_type="instance"):
    """Return a factory `f(num_features) -> nn.Module` for the named normalisation.

    batch/syncbatch keep affine parameters and running statistics; instance has neither (so a
    checkpoint holds no entries for it); none is an identity.
    """
    if norm_type == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm_type == "syncbatch":
        return functools.partial(nn.SyncBatchNorm, affine=True, track_running_stats=True)
    if norm_type == "instance":
        return functools.partial(InstanceNorm2d, affine=False, track_running_stats=False)
    if norm_type == "none":
        return lambda num_features: Identity()
    raise ValueError(f"unknown norm {norm_type!r}; choose one of {', '.join(NORM_CHOICES)}")


def uses_bias(norm_layer):
    """Convolutions carry a bias only next to instance norm (the original's layout, kept for checkpoints)."""
    factory = norm_layer.func if isinstance(norm_layer, functools.partial) else norm_layer
    return isinstance(factory, type) and issubclass(factory, nn.InstanceNorm2d)


class CrossRankBatchNorm2d(nn.BatchNorm2d):
    """Batch norm whose training statistics cover the batches of every process of a torchrun job,
    on any device (PyTorch's SyncBatchNorm only runs on GPUs, and cannot be differentiated twice as
    the WGAN-GP penalty needs). Parameter and buffer names are those of BatchNorm2d, so checkpoints
    do not change. Outside a process group it is plain batch norm."""

    def forward(self, x):
        place = group_place()
        if not (self.training and place):
            return super().forward(x)
        mean, var, total = cross_rank_statistics(x.float(), *place)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * total / (total - 1).clamp(min=1), self.momentum)
        shape = (1, x.size(1), 1, 1)
        out = (x.float() - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)


def cross_rank_statistics(x, rank, world_size):
    """Per-channel mean, biased variance and value count of `x` (N, C, H, W) over every rank's batch.

    Each rank contributes its count, mean and sum of squared deviations from its own mean, combined
    by the parallel formula of Chan et al.; E[x^2] - E[x]^2 would cancel catastrophically (even turn
    negative) for channels whose mean is large next to their spread. Differentiable: the gradients
    reach every rank's input.
    """
    from torch.distributed.nn.functional import all_reduce
    local_var, local_mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
    count = torch.full_like(local_mean, x.numel() // x.size(1))
    own_row = torch.stack([count, local_mean, local_var * count])
    # Each rank fills its own row of an otherwise zero table; the sum over ranks holds every row.
    placement = (torch.arange(world_size, device=x.device) == rank).to(x.dtype).view(-1, 1, 1)
    counts, means, squared_deviations = all_reduce(placement * own_row).unbind(1)
    total = counts.sum(0)
    mean = (counts * means).sum(0) / total
    var = (squared_deviations + counts * (means - mean) ** 2).sum(0) / total
    return mean, var, total


def to_cross_rank_batch_norm(net):
    """Replace every batch norm of `net` (BatchNorm2d or SyncBatchNorm) by CrossRankBatchNorm2d,
    keeping its parameters and statistics; returns `net`."""
    for name, child in net.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, CrossRankBatchNorm2d):
            replacement = CrossRankBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                               child.track_running_stats)
            replacement.load_state_dict(child.state_dict())
            setattr(net, name, replacement.to(next(child.buffers(), torch.empty(0)).device))
        else:
            to_cross_rank_batch_norm(child)
    return net
