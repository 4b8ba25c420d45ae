"""Layers of the StyleGAN2 networks (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN") in the form the official CUT code uses for single-image translation (`--netG stylegan2`,
`--netD stylegan2`): convolutions and linear layers with an equalised learning rate (weights drawn from
N(0, 1), scaled by 1 / sqrt(fan-in) at every use), a leaky ReLU with its own bias and a gain of
sqrt(2), a [1, 3, 3, 1] blur around every change of resolution, residual blocks, and the decoder's
demodulated upsampling convolution followed by noise injection.

Parameter and buffer names are the official ones (`weight`, `bias`, the blur's `kernel`, a styled
convolution's `conv.weight`, `noise.weight` and `activate.bias`), so its weight files load. Each layer
that changes the channel count says so as `out_channels` (for the CUT head's feature sizes).
"""
import contextlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

BLUR_TAPS = (1.0, 3.0, 3.0, 1.0)


def fused_leaky_relu(x, bias):
    """leaky_relu(x + bias, 0.2) * sqrt(2): StyleGAN2's activation with the layer's bias folded in (the gain
    keeps the activations' scale). Numbers are literals here, as TorchScript (scripts/export.py) takes no
    global ones."""
    return F.leaky_relu(x + bias, 0.2) * math.sqrt(2.0)


class FusedLeakyReLU(nn.Module):
    """fused_leaky_relu with a learned bias per channel (`bias`, shape (1, C, 1, 1), zeros at first)."""

    def __init__(self, channels):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x):
        return fused_leaky_relu(x, self.bias)


class Blur(nn.Module):
    """Zero padding by `pad` = (before, after) on every side, then each channel filtered by the 4x4 kernel
    of BLUR_TAPS (sum `gain`; buffer `kernel`): the side grows by before + after - 3."""

    def __init__(self, pad, gain=1.0):
        super().__init__()
        row = torch.tensor(BLUR_TAPS)
        kernel = row[:, None] * row[None, :]
        self.register_buffer("kernel", kernel / kernel.sum() * gain)
        self.pad = pad

    def forward(self, x):
        before, after = self.pad
        channels = x.shape[1]
        # A convolution is a correlation: the flip makes it filter with the kernel itself (as upfirdn).
        weight = self.kernel.flip(0, 1).to(x.dtype).expand(channels, 1, -1, -1)
        return F.conv2d(F.pad(x, [before, after, before, after]), weight, groups=channels)


class EqualConv2d(nn.Module):
    """A convolution whose weight (out, in, k, k) is drawn from N(0, 1) and scaled by 1 / sqrt(in * k * k)
    at every use; `bias` zeros (or none)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size ** 2)
        self.stride, self.padding, self.out_channels = stride, padding, out_channels

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias, self.stride, self.padding)


class EqualLinear(nn.Module):
    """A linear layer with the equalised learning rate of EqualConv2d, optionally followed by
    fused_leaky_relu with its bias (`activate`)."""

    def __init__(self, in_features, out_features, activate=False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = 1.0 / math.sqrt(in_features)
        self.activate = activate

    def forward(self, x):
        if self.activate:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias)
        return F.linear(x, self.weight * self.scale, self.bias)


class ConvLayer(nn.Sequential):
    """[blur, stride 2 when `downsample`] EqualConv2d (k x k, zero 'same' padding otherwise) [FusedLeakyReLU
    when `activate`, which then holds the bias; without it the conv has one when `bias`]."""

    def __init__(self, in_channels, out_channels, kernel_size, downsample=False, activate=True, bias=True):
        layers = []
        if downsample:
            spread = len(BLUR_TAPS) - 2 + kernel_size - 1  # the blur's and the conv's reach, for a halved side
            layers.append(Blur(((spread + 1) // 2, spread // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_channels))
        super().__init__(*layers)
        self.out_channels = out_channels


class ResBlock(nn.Module):
    """(conv2(conv1(x)) + skip(x)) / sqrt(2): two 3x3 ConvLayers, the second halving the side when
    `downsample`; the skip a 1x1 conv without bias or activation (blurred and halved likewise) when the
    shape changes, else x itself."""

    def __init__(self, in_channels, out_channels, downsample=True):
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=downsample)
        if in_channels != out_channels or downsample:
            self.skip = ConvLayer(in_channels, out_channels, 1, downsample=downsample, activate=False, bias=False)
        else:
            self.skip = nn.Identity()
        self.out_channels = out_channels

    def forward(self, x):
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2.0)


class DemodulatedUpConv(nn.Module):
    """StyleGAN2's modulated convolution as the CUT decoder uses it, without a style: the weight
    (`weight`, (1, out, in, k, k), N(0, 1)) scaled by 1 / sqrt(in * k * k) and demodulated (each output
    channel's weights divided by their L2 norm), applied as a stride-2 transposed convolution, then
    blurred by the [1, 3, 3, 1] kernel times 4: the side exactly doubles."""

    def __init__(self, in_channels, out_channels, kernel_size=3):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size ** 2)
        spread = len(BLUR_TAPS) - 2 - (kernel_size - 1)
        self.blur = Blur(((spread + 1) // 2 + 1, spread // 2 + 1), gain=4.0)

    def forward(self, x):
        weight = self.weight[0] * self.scale
        weight = weight * torch.rsqrt(weight.pow(2).sum([1, 2, 3], keepdim=True) + 1e-8)
        return self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))


class NoiseInjection(nn.Module):
    """x + weight * N(0, 1) noise, one draw per pixel shared by all channels (`weight` zero at first).
    The draws come from torch's generator of x's device, in training and at test time alike."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        batch, _, height, width = x.shape
        return x + self.weight * x.new_empty(batch, 1, height, width).normal_()


class StyledConv(nn.Module):
    """The decoder's doubling layer: DemodulatedUpConv, noise injection (skipped unless `inject_noise`;
    its weight exists either way, as in the official networks), FusedLeakyReLU."""

    def __init__(self, in_channels, out_channels, inject_noise=True):
        super().__init__()
        self.conv = DemodulatedUpConv(in_channels, out_channels)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channels)
        self.inject_noise = inject_noise
        self.draws_random_numbers = inject_noise  # so that test.py keeps --seed's outputs (engine/image_lanes.py)
        self.out_channels = out_channels

    def forward(self, x):
        x = self.conv(x)
        if self.inject_noise:
            x = self.noise(x)
        return self.activate(x)


@contextlib.contextmanager
def noise_off(net):
    """Within the block the StyledConv layers of `net` inject no noise: for a check that compares two
    implementations of `net` (scripts/export.py: PyTorch and onnxruntime), which cannot draw the same
    numbers."""
    layers = [layer for layer in net.modules() if isinstance(layer, StyledConv) and layer.inject_noise]
    for layer in layers:
        layer.inject_noise = False
    try:
        yield
    finally:
        for layer in layers:
            layer.inject_noise = True
