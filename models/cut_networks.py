"""The networks of `--model cut` as the official CUT code builds them (taesungp/contrastive-unpaired-translation):
a ResNet generator and a PatchGAN discriminator whose changes of resolution are anti-aliased
(models/antialias.py) unless `--no_antialias` / `--no_antialias_up` ask for the strided convolutions
of the CycleGAN networks; or the StyleGAN2 generator and discriminator of its single-image model
(`--netG stylegan2`/`smallstylegan2`, `--netD stylegan2`: models/stylegan2_networks.py).

Module order, indices and parameter names are the official ones, so its `latest_net_G.pth` and
`latest_net_D.pth` load unchanged. With the anti-aliasing on, the generator's `model` reads
(resnet_9blocks): 0 pad, 1 conv7x7, 2 norm, 3 ReLU, 4 conv3x3 (stride 1), 5 norm, 6 ReLU, 7 blur-down,
8 conv3x3, 9 norm, 10 ReLU, 11 blur-down, 12-20 residual blocks, 21 blur-up, 22 conv3x3, 23 norm,
24 ReLU, 25 blur-up, 26 conv3x3, 27 norm, 28 ReLU, 29 pad, 30 conv7x7, 31 Tanh. The discriminator's
`model` (basic): 0 conv4x4 (stride 1), 1 LeakyReLU, 2 blur-down, then per stride-2 stage conv4x4,
norm, LeakyReLU, blur-down, and the usual stride-1 conv4x4, norm, LeakyReLU, conv4x4 to one score.
The ResNet generator's `model` is the chain of layers whose outputs PatchNCE compares (for the StyleGAN2
one its `encoder.convs`; models/encoder_features.py).
"""
import torch.nn as nn

from util.errors import UserError

from .antialias import BlurDownsample, BlurUpsample
from .blocks import residual_block, upsampling_layer
from .discriminators import define_D
from .encoder_features import EncoderFeatures
from .generators import GENERATOR_OPTION_DEFAULTS
from .initialization import init_weights
from .norms import get_norm_layer, uses_bias
from .reflection_pad import ReflectionPad2d
from .stylegan2_networks import (
    STYLEGAN2_DISCRIMINATORS,
    STYLEGAN2_GENERATORS,
    StyleGAN2Discriminator,
    define_stylegan2_G,
)

CUT_GENERATORS = {"resnet_9blocks": 9, "resnet_6blocks": 6}


class CUTResnetGenerator(EncoderFeatures, nn.Module):
    """Encoder (7x7 conv, two halvings), n_blocks residual blocks at 4*ngf, decoder (two doublings), Tanh.

    input_nc/output_nc: image channels; ngf: width of the first layer; norm_layer: norm factory;
    use_dropout: dropout inside the blocks; n_blocks: number of residual blocks; no_antialias: halve
    with stride-2 convs instead of a stride-1 conv and a blur; no_antialias_up: double with transposed
    convs instead of a blur-upsampling and a 3x3 conv.
    """

    size_multiple = 4  # two halvings

    def __init__(self, input_nc, output_nc, ngf=64, norm_layer=nn.InstanceNorm2d, use_dropout=False, n_blocks=9,
                 no_antialias=False, no_antialias_up=False):
        super().__init__()
        self.input_nc = input_nc
        use_bias = uses_bias(norm_layer)
        layers = [ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=use_bias), norm_layer(ngf), nn.ReLU(True)]
        for i in range(2):
            width = ngf * 2 ** i
            stride = 2 if no_antialias else 1
            layers += [nn.Conv2d(width, width * 2, 3, stride=stride, padding=1, bias=use_bias),
                       norm_layer(width * 2), nn.ReLU(True)]
            if not no_antialias:
                layers.append(BlurDownsample(width * 2))
        layers += [residual_block("original", ngf * 4, norm_layer, use_dropout, use_bias) for _ in range(n_blocks)]
        for i in range(2):
            width = ngf * 2 ** (2 - i)
            if no_antialias_up:
                layers.append(upsampling_layer("transpose", width, width // 2, 3, use_bias))
            else:
                layers += [BlurUpsample(width), nn.Conv2d(width, width // 2, 3, padding=1, bias=use_bias)]
            layers += [norm_layer(width // 2), nn.ReLU(True)]
        layers += [ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)

    @property
    def feature_layers(self):
        """The chain of layers that --nce_layers indexes: the whole generator."""
        return self.model


class CUTNLayerDiscriminator(nn.Module):
    """The anti-aliased PatchGAN: every stride-2 4x4 conv of `NLayerDiscriminator` becomes a
    stride-1 4x4 conv followed (after its norm and LeakyReLU) by a blur-downsampling.

    input_nc: input channels; ndf: width of the first layer; n_layers: number of halvings;
    norm_layer: norm factory (none after the first conv).
    """

    def __init__(self, input_nc, ndf=64, n_layers=3, norm_layer=nn.InstanceNorm2d):
        super().__init__()
        use_bias = uses_bias(norm_layer)
        layers = [nn.Conv2d(input_nc, ndf, 4, padding=1), nn.LeakyReLU(0.2, True), BlurDownsample(ndf)]
        width = ndf
        for n in range(1, n_layers + 1):
            next_width = ndf * min(2 ** n, 8)
            layers += [nn.Conv2d(width, next_width, 4, padding=1, bias=use_bias), norm_layer(next_width),
                       nn.LeakyReLU(0.2, True)]
            if n < n_layers:
                layers.append(BlurDownsample(next_width))
            width = next_width
        layers.append(nn.Conv2d(width, 1, 4, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


def check_cut_generator(netG, opt):
    """UserError when the generator flags ask for what the CUT generators do not have: a U-Net (its
    encoder features are not a chain of layers), our other generator options, or ResNet-only flags with
    a StyleGAN2 generator (whose layers have no norm and whose resampling is always blurred)."""
    choices = (*CUT_GENERATORS, *STYLEGAN2_GENERATORS)
    if netG not in choices:
        raise UserError(f"--model cut needs a ResNet or StyleGAN2 generator, not --netG {netG}; "
                        f"use --netG {', '.join(choices[:-1])} or {choices[-1]}")
    changed = [f"--{name}" for name, default in GENERATOR_OPTION_DEFAULTS.items() if getattr(opt, name, default) != default]
    if changed:
        raise UserError(f"{' and '.join(changed)} do not apply to --model cut, whose generator is the official "
                        "CUT one; leave them out (--no_antialias and --no_antialias_up change its sampling)")
    resnet_only = [flag for flag, value in (("--normG", getattr(opt, "normG", None)),
                                            ("--no_antialias_up", getattr(opt, "no_antialias_up", False))) if value]
    if netG in STYLEGAN2_GENERATORS and resnet_only:
        raise UserError(f"{' and '.join(resnet_only)} apply to the ResNet generators only, not --netG {netG}; "
                        "leave them out")


def define_cut_G(input_nc, output_nc, ngf, netG, norm, use_dropout, init_type, init_gain, no_antialias=False,
                 no_antialias_up=False, resolution=None, num_downsampling=1):
    """Build and initialise CUT's generator (`netG`: one of CUT_GENERATORS); the other arguments as for
    CUTResnetGenerator, `norm` naming the norm layers. For a StyleGAN2 generator (STYLEGAN2_GENERATORS)
    only the channels, ngf, the training `resolution` and `num_downsampling` count, and it keeps its own
    initialisation (models/stylegan2_networks.py)."""
    if netG in STYLEGAN2_GENERATORS:
        return define_stylegan2_G(input_nc, output_nc, ngf, netG, resolution, num_downsampling)
    net = CUTResnetGenerator(input_nc, output_nc, ngf, get_norm_layer(norm), use_dropout, CUT_GENERATORS[netG],
                             no_antialias, no_antialias_up)
    return init_weights(net, init_type, init_gain)


def define_cut_D(input_nc, ndf, netD, n_layers_D, norm, init_type, init_gain, no_antialias=False, resolution=None):
    """Build and initialise CUT's discriminator: the anti-aliased PatchGAN for `basic` (3 halvings) and
    `n_layers` (n_layers_D), or, with no_antialias and for `pixel`, the CycleGAN discriminator of the
    same name (which is what the official code builds then); for `stylegan2` the StyleGAN2 one for
    images of `resolution` px, with its own initialisation (models/stylegan2_networks.py)."""
    if netD in STYLEGAN2_DISCRIMINATORS:
        return StyleGAN2Discriminator(input_nc, ndf, resolution)
    if no_antialias or netD == "pixel":
        return define_D(input_nc, ndf, netD, n_layers_D, norm, init_type, init_gain)
    net = CUTNLayerDiscriminator(input_nc, ndf, 3 if netD == "basic" else n_layers_D, get_norm_layer(norm))
    return init_weights(net, init_type, init_gain)
