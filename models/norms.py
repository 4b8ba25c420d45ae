"""Normalisation layers chosen by `--norm`, and whether convolutions next to them carry a bias."""
import functools

import torch.nn as nn

NORM_CHOICES = ("instance", "batch", "syncbatch", "none")


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
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm_type == "none":
        return lambda num_features: Identity()
    raise ValueError(f"unknown norm {norm_type!r}; choose one of {', '.join(NORM_CHOICES)}")


def uses_bias(norm_layer):
    """Convolutions carry a bias only next to instance norm (the original's layout, kept for checkpoints)."""
    factory = norm_layer.func if isinstance(norm_layer, functools.partial) else norm_layer
    return factory is nn.InstanceNorm2d
