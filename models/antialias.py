"""Anti-aliased resampling layers of the CUT networks (Zhang 2019, "Making Convolutional Networks
Shift-Invariant Again"): a fixed binomial blur around every change of resolution.

Each layer keeps its filter as a buffer named `filt`, one copy per channel (channels, 1, k, k), as the
official CUT code saves it, so its `latest_net_G.pth` / `latest_net_D.pth` load with these layers in
place. The blur has no parameters; nothing trains it.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .reflection_pad import reflect_pad


def binomial_filter(taps, channels, gain=1.0):
    """The 2-d blur kernel of the 1-d binomial row `taps` (e.g. [1, 2, 1]), normalised to sum to
    `gain`, repeated for `channels` depthwise channels: shape (channels, 1, k, k)."""
    row = torch.tensor(taps, dtype=torch.float32)
    kernel = row[:, None] * row[None, :]
    kernel = kernel / kernel.sum() * gain
    return kernel[None, None].repeat(channels, 1, 1, 1)


class BlurDownsample(nn.Module):
    """Halve the size (ceil(side / 2)) after a [1, 2, 1] x [1, 2, 1] / 16 blur: reflection padding by
    one pixel, then a depthwise 3x3 convolution of stride 2 with the fixed filter.

    channels: the input's channels. `kernel_size` and `stride` describe it like a convolution, for
    models.discriminators.receptive_field.
    """

    kernel_size = (3, 3)
    stride = (2, 2)

    def __init__(self, channels):
        super().__init__()
        self.register_buffer("filt", binomial_filter([1.0, 2.0, 1.0], channels))

    def forward(self, x):
        padded = reflect_pad(x, [1, 1, 1, 1])
        return F.conv2d(padded, self.filt, stride=2, groups=x.shape[1])


class BlurUpsample(nn.Module):
    """Double the size with a [1, 3, 3, 1] x [1, 3, 3, 1] kernel (normalised to 4, the stride squared,
    so that a constant image stays constant): in the official code replication padding by one pixel,
    a depthwise transposed convolution of stride 2 (padding 2) and one row and column cropped from
    each side. Each output pixel is then 3/4 of its nearer input neighbour and 1/4 of the farther one
    in each direction, edges repeated: exactly bilinear upsampling by 2 with pixel centres at half
    steps (align_corners False), which this layer computes, in one pass that is about twice as fast
    forward and backward on the CPU as the transposed convolution.

    channels: the input's channels (for the `filt` buffer, kept so that official weight files load).
    """

    def __init__(self, channels):
        super().__init__()
        self.register_buffer("filt", binomial_filter([1.0, 3.0, 3.0, 1.0], channels, gain=4.0))

    def forward(self, x):
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
