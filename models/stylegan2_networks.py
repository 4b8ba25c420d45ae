"""The StyleGAN2-based generator and discriminator of the official CUT code (`--netG stylegan2`,
`--netG smallstylegan2`, `--netD stylegan2`), which its single-image model `sincut` uses by default.
Their layers are in models/stylegan2_layers.py; their widths depend on the training resolution, the
power of two nearest to min(--load_size, --crop_size) (64 for sincut's defaults).

Generator (`encoder.convs`, `decoder.convs`, the official names): an identity (layer 0, so that
PatchNCE can compare the input itself), a 1x1 ConvLayer to the resolution's width,
--stylegan2_G_num_downsampling halving ResBlocks, n_blocks // 2 ResBlocks (3 for stylegan2, 1 for
smallstylegan2); the decoder as many ResBlocks, one doubling StyledConv per halving (with noise
injection, except smallstylegan2's), a 1x1 ConvLayer to the output channels. The output is not
squashed by a Tanh; the saved images are clipped to [-1, 1] like every output.
Widths: round(16384 / resolution * ngf / 32), at most 512 at 32 px and below.

Discriminator (`convs`, `final_conv`, `final_linear`): a 1x1 ConvLayer, halving ResBlocks down to 4x4,
a 3x3 ConvLayer, two EqualLinear layers to one score per image. It judges whole images of exactly the
resolution's side. Widths: int(16384 / resolution * ndf / 64), at most 384 at 32 px and below.

Neither network is initialised by --init_type: their weights are drawn from N(0, 1), biases and noise
weights start at zero (the equalised learning rate scales them at every use).
"""
import math

import torch.nn as nn

from util.errors import UserError

from .encoder_features import EncoderFeatures
from .stylegan2_layers import ConvLayer, EqualLinear, ResBlock, StyledConv

STYLEGAN2_GENERATORS = {"stylegan2": 6, "smallstylegan2": 2}  # name: n_blocks (official defaults), half per side
STYLEGAN2_DISCRIMINATORS = ("stylegan2",)
SMALLEST_RESOLUTION, LARGEST_RESOLUTION = 4, 1024  # the official width tables' range


def training_resolution(load_size, crop_size):
    """The side (a power of two) that the StyleGAN2 networks' widths are made for: the power of two
    nearest to min(load_size, crop_size), as the official code rounds it; UserError beyond the
    official width tables (4 to 1024 px)."""
    resolution = 2 ** round(math.log2(min(load_size, crop_size)))
    if not SMALLEST_RESOLUTION <= resolution <= LARGEST_RESOLUTION:
        raise UserError(f"the StyleGAN2 networks are made for a resolution between {SMALLEST_RESOLUTION} and "
                        f"{LARGEST_RESOLUTION} px, the power of two nearest to min(--load_size, --crop_size) = "
                        f"{min(load_size, crop_size)}; choose sizes in that range")
    return resolution


def stylegan2_width(resolution, multiplier, cap, rounding):
    """The official width of a layer at `resolution` px: rounding(16384 / resolution * multiplier),
    capped at `cap` for 32 px and below."""
    width = rounding(16384 / resolution * multiplier)
    return min(cap, width) if resolution <= 32 else width


class Stack(nn.Module):
    """A chain of layers kept as `convs` (the official encoder's and decoder's attribute name)."""

    def __init__(self, layers):
        super().__init__()
        self.convs = nn.Sequential(*layers)

    def forward(self, x):
        return self.convs(x)


class StyleGAN2Generator(EncoderFeatures, nn.Module):
    """The official CUT StyleGAN2 generator (module docstring).

    input_nc/output_nc: image channels; ngf: width multiplier (ngf / 32); n_blocks: residual blocks, half
    in the encoder and half in the decoder; resolution: training_resolution(); num_downsampling: halvings
    (then doublings); inject_noise: noise after each doubling.
    """

    def __init__(self, input_nc, output_nc, ngf, n_blocks, resolution, num_downsampling, inject_noise=True):
        super().__init__()
        bottom = resolution // 2 ** num_downsampling
        if bottom < SMALLEST_RESOLUTION:
            raise UserError(f"--stylegan2_G_num_downsampling {num_downsampling} halves the {resolution} px training "
                            f"resolution to {bottom} px, below the StyleGAN2 networks' smallest "
                            f"{SMALLEST_RESOLUTION} px; use fewer halvings or a larger --crop_size")

        def width(side):
            return stylegan2_width(side, ngf / 32, 512, round)

        self.input_nc = input_nc
        self.size_multiple = 2 ** num_downsampling
        side = resolution
        encoder = [nn.Identity(), ConvLayer(input_nc, width(side), 1)]
        for _ in range(num_downsampling):
            encoder.append(ResBlock(width(side), width(side // 2), downsample=True))
            side //= 2
        encoder += [ResBlock(width(side), width(side), downsample=False) for _ in range(n_blocks // 2)]
        decoder = [ResBlock(width(side), width(side), downsample=False) for _ in range(n_blocks // 2)]
        for _ in range(num_downsampling):
            decoder.append(StyledConv(width(side), width(side * 2), inject_noise))
            side *= 2
        decoder.append(ConvLayer(width(side), output_nc, 1))
        self.encoder, self.decoder = Stack(encoder), Stack(decoder)

    @property
    def feature_layers(self):
        """The chain of layers that --nce_layers indexes: the encoder's."""
        return self.encoder.convs

    def forward(self, x):
        return self.decoder(self.encoder(x))


class StyleGAN2Discriminator(nn.Module):
    """The official CUT StyleGAN2 discriminator (module docstring): one score per image of exactly
    `resolution` px (training_resolution()). input_nc: image channels; ndf: width multiplier (ndf / 64)."""

    def __init__(self, input_nc, ndf, resolution):
        super().__init__()

        def width(side):
            return stylegan2_width(side, ndf / 64, 384, int)

        self.resolution = resolution
        convs = [ConvLayer(input_nc, width(resolution), 1)]
        side = resolution
        while side > SMALLEST_RESOLUTION:
            convs.append(ResBlock(width(side), width(side // 2)))
            side //= 2
        self.convs = nn.Sequential(*convs)
        self.final_conv = ConvLayer(width(side), width(SMALLEST_RESOLUTION), 3)
        self.final_linear = nn.Sequential(EqualLinear(width(SMALLEST_RESOLUTION) * side * side,
                                                      width(SMALLEST_RESOLUTION), activate=True),
                                          EqualLinear(width(SMALLEST_RESOLUTION), 1))

    def forward(self, x):
        if x.shape[-2:] != (self.resolution, self.resolution):
            raise ValueError(f"the StyleGAN2 discriminator judges {self.resolution}x{self.resolution} images, "
                             f"not {tuple(x.shape[-2:])}")
        features = self.final_conv(self.convs(x))
        return self.final_linear(features.flatten(1))


def define_stylegan2_G(input_nc, output_nc, ngf, netG, resolution, num_downsampling):
    """The generator `netG` (one of STYLEGAN2_GENERATORS) for the training `resolution`."""
    return StyleGAN2Generator(input_nc, output_nc, ngf, STYLEGAN2_GENERATORS[netG], resolution, num_downsampling,
                              inject_noise=not netG.startswith("small"))
