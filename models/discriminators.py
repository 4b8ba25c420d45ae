"""Discriminators chosen by `--netD`: PatchGAN (`basic` = 3 layers, `n_layers`) and per-pixel; the
flags of their regularisers (`--spectral_norm`, `--r1_gamma`, `--r1_every`, `--diffaug`).

Names follow the original tool (`model.0.weight` ..., `net.0.weight` ...) so its checkpoints load;
`--spectral_norm` renames each conv's weight (`model.0.parametrizations.weight.original`, plus the
power iteration's vectors `..._u`, `..._v`), so it is an architecture flag of a run.
`receptive_field` computes how many input pixels each output score sees (70 for `basic`).
"""
import torch.nn as nn
from torch.nn.utils.parametrizations import spectral_norm as add_spectral_norm

from util.errors import UserError
from util.ranges import NumberRange

from .antialias import BlurDownsample
from .diffaug import POLICIES, parse_policy
from .initialization import init_weights
from .norms import get_norm_layer, uses_bias
from .stylegan2_networks import SMALLEST_RESOLUTION, STYLEGAN2_DISCRIMINATORS, StyleGAN2Discriminator

DISCRIMINATOR_CHOICES = ("basic", "n_layers", "pixel")


class NLayerDiscriminator(nn.Module):
    """PatchGAN: stride-2 4x4 convs doubling the width (at most 8*ndf), two stride-1 4x4 convs, one score map.

    input_nc: input channels; ndf: width of the first layer; n_layers: number of stride-2
    convs; norm_layer: norm factory (none after the first conv).
    """

    def __init__(self, input_nc, ndf=64, n_layers=3, norm_layer=nn.BatchNorm2d):
        super().__init__()
        use_bias = uses_bias(norm_layer)
        layers = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for n in range(1, n_layers + 1):
            next_width = ndf * min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(width, next_width, 4, stride=stride, padding=1, bias=use_bias),
                       norm_layer(next_width), nn.LeakyReLU(0.2, True)]
            width = next_width
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 convs only: judges every pixel on its own (a 1x1 receptive field).

    input_nc: input channels; ndf: width; norm_layer: norm factory.
    """

    def __init__(self, input_nc, ndf=64, norm_layer=nn.BatchNorm2d):
        super().__init__()
        use_bias = uses_bias(norm_layer)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=use_bias), norm_layer(ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=use_bias))

    def forward(self, x):
        return self.net(x)


def receptive_field(net):
    """Side in input pixels of the patch that one output value of `net` depends on.

    Walks the convolutions from the output back to the input: a k x k conv of stride s turns a
    field of r pixels into (r - 1) * s + k (seed 001: 1 -> 4 -> 7 -> 16 -> 34 -> 70 for `basic`).
    The blur of anti-aliased downsampling (CUT's discriminator) counts as the 3x3 stride-2 conv it is.
    A StyleGAN2 discriminator's one score depends on the whole image of its resolution.
    """
    whole_image = [m.resolution for m in net.modules() if isinstance(m, StyleGAN2Discriminator)]
    if whole_image:
        return whole_image[0]
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, BlurDownsample))]
    field = 1
    for conv in reversed(convs):
        field = (field - 1) * conv.stride[0] + conv.kernel_size[0]
    return field


def define_D(input_nc, ndf, netD, n_layers_D=3, norm="batch", init_type="normal", init_gain=0.02,
             spectral_norm=False):
    """Build and initialise the discriminator named `netD` (one of DISCRIMINATOR_CHOICES); with
    spectral_norm, every conv's weight is divided by its largest singular value (Miyato et al. 2018)."""
    if netD in STYLEGAN2_DISCRIMINATORS:
        raise UserError(f"--netD {netD} is a discriminator of --model cut only (the official CUT code's single-image "
                        f"networks); train it with --model cut, or choose --netD {' or '.join(DISCRIMINATOR_CHOICES)}")
    norm_layer = get_norm_layer(norm)
    if netD == "basic":
        net = NLayerDiscriminator(input_nc, ndf, 3, norm_layer)
    elif netD == "n_layers":
        net = NLayerDiscriminator(input_nc, ndf, n_layers_D, norm_layer)
    elif netD == "pixel":
        net = PixelDiscriminator(input_nc, ndf, norm_layer)
    else:
        raise ValueError(f"unknown discriminator {netD!r}; choose one of {', '.join(DISCRIMINATOR_CHOICES)}")
    init_weights(net, init_type, init_gain)  # before spectral norm, which turns `weight` into a computed value
    return apply_spectral_norm(net) if spectral_norm else net


def apply_spectral_norm(net):
    """Put spectral normalisation on every convolution of `net` (in place; returns `net`).

    Each training-mode forward pass runs one power iteration to track the largest singular value;
    the vectors are buffers, so they are saved and restored with the weights.
    """
    for module in list(net.modules()):
        if isinstance(module, nn.Conv2d):
            add_spectral_norm(module)
    return net


def add_discriminator_flags(parser):
    """Add the discriminator regularisers' training flags to `parser` (for models with discriminators)."""
    g = parser.add_argument_group("discriminator regularisers")
    g.add_argument("--spectral_norm", action="store_true",
                   help="spectral normalisation on every convolution of the discriminators (an architecture "
                        "flag: a run continues only with the same choice)")
    g.add_argument("--r1_gamma", type=NumberRange(float, minimum=0), default=0.0,
                   help="weight gamma of the R1 penalty gamma/2 * E[|grad_x D(x)|^2] on real images, which keeps the "
                        "discriminators smooth where the data is (D(x): the sum of a PatchGAN's scores, so good "
                        "values shrink as images grow); 0: off")
    g.add_argument("--r1_every", type=NumberRange(int, minimum=1), default=1,
                   help="lazy R1: compute the penalty only every this many discriminator steps, weighted by this "
                        "number (StyleGAN2 uses 16), which saves most of its cost")
    g.add_argument("--diffaug", type=parse_policy, default="",
                   help=f"DiffAugment policies, comma-separated, from {', '.join(POLICIES)}: every image the "
                        "discriminators judge, real or generated, goes through them first (random draws for each "
                        "image), differentiably; helps with small datasets; empty: off")
    return parser


def smallest_input_side(netD, n_layers_D=3):
    """The smallest image side (px) that discriminator `netD` can be trained on.

    A PatchGAN's stride-2 4x4 convs floor-halve the side, its two stride-1 4x4 convs take one pixel
    each and the last must leave at least one score: 3 * 2 ** n_layers (24 for `basic`). The pixel
    discriminator's normalisation needs more than one value per channel: 2. The StyleGAN2 one takes
    images of its training resolution only, at least 4 px (options/base_options.py checks the crops).
    """
    if netD == "pixel":
        return 2
    if netD in STYLEGAN2_DISCRIMINATORS:
        return SMALLEST_RESOLUTION
    return 3 * 2 ** (3 if netD == "basic" else n_layers_D)
