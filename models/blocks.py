"""Building blocks of the generators: the residual blocks of `--resblock`, the x2 upsampling layer of
`--upsample`, and the output rules of `--residual_output` and `--affine_output` (with `--affine_smooth`).

Every residual block keeps the size and width of its input (the ResNet generator stacks them at
4 * ngf channels). Each names its residual branch differently (`conv_block`, `basic_block`,
`bottleneck_block`, `gated_block`), so a saved state_dict tells which block it holds (see
models.generators.infer_generator_flags). The blocks pad by reflection, as the original block does:
the seeds' zero padding would darken image borders.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from .reflection_pad import ReflectionPad2d

RESBLOCK_CHOICES = ("original", "basic", "bottleneck", "gated")
UPSAMPLE_CHOICES = ("transpose", "resize")


def padded_conv3x3(in_channels, out_channels, use_bias):
    """[ReflectionPad2d(1), 3x3 conv]: a 3x3 convolution that keeps the image size."""
    return [ReflectionPad2d(1), nn.Conv2d(in_channels, out_channels, 3, bias=use_bias)]


def padded_relu(padding):
    """[ReflectionPad2d(padding), in-place ReLU]: a ReLU before a convolution that pads by reflection,
    applied after the padding. Padding only copies values, so the conv sees exactly what ReLU-then-pad
    gives it, and the gradients are the same bit for bit (a copied value is masked alike in both
    places); but autograd keeps one feature map, the padded one that the ReLU and the conv both save,
    instead of the unpadded ReLU output as well: about 14% of a resnet_9blocks generator's training
    activations. Neither layer holds parameters, so the other layers keep their names."""
    return [ReflectionPad2d(padding), nn.ReLU(True)]


def relu_padded_conv3x3(in_channels, out_channels, use_bias):
    """ReLU, then a 3x3 convolution that keeps the image size, as [ReflectionPad2d(1), ReLU, 3x3 conv]
    (padded_relu)."""
    return padded_relu(1) + [nn.Conv2d(in_channels, out_channels, 3, bias=use_bias)]



def two_conv_branch(dim, norm_layer, use_dropout, use_bias):
    """The layers of the original and the basic block's branch: pad-conv3x3-norm-ReLU-[dropout]-pad-conv3x3-norm
    (the indices of the original tool's parameter names); without dropout the ReLU comes after the
    second pad (padded_relu)."""
    layers = padded_conv3x3(dim, dim, use_bias) + [norm_layer(dim)]
    if use_dropout:
        return layers + [nn.ReLU(True), nn.Dropout(0.5)] + padded_conv3x3(dim, dim, use_bias) + [norm_layer(dim)]
    return layers + relu_padded_conv3x3(dim, dim, use_bias) + [norm_layer(dim)]


class ResnetBlock(nn.Module):
    """The original tool's block: x + F(x), F = pad-conv3x3-norm-ReLU-[dropout]-pad-conv3x3-norm.

    dim: channels; norm_layer: norm factory; use_dropout: Dropout(0.5) between the convs;
    use_bias: whether the convs carry a bias.
    """

    branch = "conv_block"
    last_conv = 5  # index of the branch's last conv without dropout (one more with it)

    def __init__(self, dim, norm_layer, use_dropout, use_bias):
        super().__init__()
        self.conv_block = nn.Sequential(*two_conv_branch(dim, norm_layer, use_dropout, use_bias))

    def forward(self, x):
        return x + self.conv_block(x)


class BasicBlock(nn.Module):
    """ResNet's BasicBlock (seeds 000 and 003): ReLU(x + F(x)), F = conv3x3-norm-ReLU-[dropout]-conv3x3-norm.

    The original block's layers with the ReLU after the addition, as the seeds' `forward` ends
    (`out += shortcut(x); out = relu(out)`). Input and output widths are equal in the generator, so
    the shortcut is the identity. dim: channels; norm_layer: norm factory; use_dropout: Dropout(0.5)
    between the convs; use_bias: whether the convs carry a bias.
    """

    branch = "basic_block"
    last_conv = 5

    def __init__(self, dim, norm_layer, use_dropout, use_bias):
        super().__init__()
        self.basic_block = nn.Sequential(*two_conv_branch(dim, norm_layer, use_dropout, use_bias))
        self.relu = nn.ReLU(True)

    def forward(self, x):
        return self.relu(x + self.basic_block(x))


class BottleneckBlock(nn.Module):
    """ResNet's Bottleneck (seeds 000 and 003): ReLU(shortcut(x) + F(x)), F = conv1x1 to `planes`-norm-ReLU-
    conv3x3-norm-ReLU-[dropout]-conv1x1 to `planes * expansion`-norm, with expansion 4 as in the seeds.

    The shortcut is the identity when the input has `planes * 4` channels (always so in the generator,
    which uses planes = width / 4), otherwise a projection: conv1x1 to `planes * 4`, norm (seed 003's
    downsample). in_channels: input channels; planes: width of the 1x1 reduction and the 3x3 conv;
    norm_layer: norm factory; use_dropout: Dropout(0.5) before the expanding conv; use_bias: whether
    the convs carry a bias.
    """

    branch = "bottleneck_block"
    last_conv = 7
    expansion = 4

    def __init__(self, in_channels, planes, norm_layer, use_dropout, use_bias):
        super().__init__()
        out_channels = planes * self.expansion
        layers = [nn.Conv2d(in_channels, planes, 1, bias=use_bias), norm_layer(planes)]
        layers += relu_padded_conv3x3(planes, planes, use_bias) + [norm_layer(planes), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.Conv2d(planes, out_channels, 1, bias=use_bias), norm_layer(out_channels)]
        self.bottleneck_block = nn.Sequential(*layers)
        self.shortcut = nn.Identity() if in_channels == out_channels else nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=use_bias), norm_layer(out_channels))
        self.relu = nn.ReLU(True)

    def forward(self, x):
        return self.relu(self.shortcut(x) + self.bottleneck_block(x))


class GatedBlock(nn.Module):
    """PixelSNAIL's gated residual block (seed 004): x + a * sigmoid(b), where
    (a, b) = split(conv3x3_2C(dropout(ELU(conv3x3_C(ELU(x)))))) along the channels.

    As the seed describes: a nonlinearity before each convolution, the second convolution to twice
    the channels, its halves a and b, the gate a * sigmoid(b) added to the input; both convolutions
    are weight-normalised (w = g * v / |v|, per output channel) and carry a bias, and the block has no
    normalisation layers (so `--norm` does not apply to it). The nonlinearity is the ELU of the
    seed's PyTorch version (its TensorFlow original uses concat_elu, ELU of [x, -x], which doubles
    every convolution's input). The gating conv starts at a tenth of the initial scale (the seed's
    `init_scale=0.1`), so each block starts close to the identity.
    dim: channels; use_dropout: Dropout(0.5) before the second conv.
    """

    branch = "gated_block"
    last_conv = 5

    def __init__(self, dim, use_dropout):
        super().__init__()
        first, gate = nn.Conv2d(dim, dim, 3), nn.Conv2d(dim, 2 * dim, 3)
        gate.initial_scale = 0.1  # read by models.initialization.init_weights
        layers = [nn.ELU(), ReflectionPad2d(1), weight_norm(first), nn.ELU()]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [ReflectionPad2d(1), weight_norm(gate)]
        self.gated_block = nn.Sequential(*layers)

    def forward(self, x):
        a, b = self.gated_block(x).chunk(2, dim=1)
        return x + a * torch.sigmoid(b)


def fold_weight_norm(net):
    """Replace the (g, v) of every weight-normalised layer of `net` by the plain weight they make, in
    place: the outputs stay the same, and TorchScript cannot run parametrised layers (for export)."""
    for module in net.modules():
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations):
                parametrize.remove_parametrizations(module, name)
    return net


RESIDUAL_BLOCKS = {"original": ResnetBlock, "basic": BasicBlock, "bottleneck": BottleneckBlock, "gated": GatedBlock}


def residual_block(kind, dim, norm_layer, use_dropout, use_bias):
    """A block of `kind` (one of RESBLOCK_CHOICES) that keeps `dim` channels; the arguments as for ResnetBlock."""
    if kind == "bottleneck":
        return BottleneckBlock(dim, dim // BottleneckBlock.expansion, norm_layer, use_dropout, use_bias)
    if kind == "gated":
        return GatedBlock(dim, use_dropout)
    return RESIDUAL_BLOCKS[kind](dim, norm_layer, use_dropout, use_bias)


class ResizeConv2d(nn.Module):
    """x2 upsampling without checkerboard: nearest-neighbour enlargement, then a 3x3 convolution
    (padded by reflection). Every output pixel sees the same number of input pixels, which a strided
    transposed convolution does not guarantee (seed 002's checkerboard artefacts).

    in_channels/out_channels: channels; use_bias: whether the conv carries a bias.
    """

    def __init__(self, in_channels, out_channels, use_bias):
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.pad = ReflectionPad2d(1)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, bias=use_bias)

    def forward(self, x):
        return self.conv(self.pad(self.upsample(x)))


def upsampling_layer(kind, in_channels, out_channels, kernel_size, use_bias):
    """One layer that doubles the image size, of `kind` (one of UPSAMPLE_CHOICES).

    transpose: the original's ConvTranspose2d(kernel_size, stride 2, padding 1), with the output
    padding that makes the output exactly twice the input (1 for a 3x3 kernel, 0 for 4x4);
    resize: ResizeConv2d (a 3x3 conv whatever kernel_size is). It replaces the transposed conv at the
    same position, so the generator's other layers keep their names.
    """
    if kind == "resize":
        return ResizeConv2d(in_channels, out_channels, use_bias)
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=2, padding=1,
                              output_padding=kernel_size % 2, bias=use_bias)


def apply_change(image, change):
    """The output of `--residual_output`: tanh(atanh(image) + change).

    The generator's last layer predicts `change` in the space before the output Tanh, so a change
    of 0 returns the input, and the result always lies in (-1, 1) with a gradient everywhere (a clamp
    of image + change would stop learning wherever it clips). The image is kept within +-0.999, where
    atanh is finite; 8-bit pixel values still round to themselves when the change is 0. (The limit is
    written out because TorchScript cannot read module-level floats.)
    """
    return torch.tanh(torch.atanh(image.clamp(-0.999, 0.999)) + change)


def apply_color_transform(image, params):
    """The output of `--affine_output`: per pixel, tanh((I + M) atanh(x) + c), a colour matrix and an
    offset applied to the input x in the space before the output Tanh, with M (C*C channels) and c (C
    channels) the generator's last layer (`params`, C*(C+1) channels for an image of C channels).

    Brightness, contrast, saturation, tints and channel mixing (a sepia toning, a colour grade) are
    about constant M and c, whatever the pixel values (exactly so in the mid-tones, where atanh is
    nearly linear), whereas a network that sees the input through instance norm cannot tell an image's
    absolute colours and so cannot predict them as a change (--residual_output) or as a new image. As
    for apply_change, the result stays in (-1, 1) with a gradient everywhere: measured, a clip whose
    gradient passes straight through let the transform run away within a few hundred iterations.
    """
    channels = image.shape[1]
    matrix = params[:, :channels * channels].unflatten(1, (channels, channels))  # B, C_out, C_in, H, W
    before_tanh = torch.atanh(image.clamp(-0.999, 0.999))
    mixed = (matrix * before_tanh.unsqueeze(1)).sum(2)
    return torch.tanh(before_tanh + mixed + params[:, channels * channels:])


def smooth_color_transform(params, cell: int):
    """`--affine_smooth`: the colour transform `params` averaged over cells of cell x cell pixels, then
    interpolated bilinearly back to every pixel, so it changes smoothly across the picture (1: unchanged).

    A smooth transform cannot follow the input's noise, nor vary with each pixel's brightness: on the
    quality benchmark it helped a global colour grade and hurt tone curves (README, Recommended
    configuration). Partial cells at the right and bottom edges average what they hold.
    """
    if cell == 1:
        return params
    coarse = F.avg_pool2d(params, cell, ceil_mode=True)
    return F.interpolate(coarse, size=[params.shape[-2], params.shape[-1]], mode="bilinear", align_corners=False)


def last_layer_channels(channels, affine_output):
    """The channels of a generator's last layer for images of `channels`: the image's, or with
    `affine_output` its colour transform's (a matrix and an offset)."""
    return channels * (channels + 1) if affine_output else channels


def start_from_input(net):
    """Make a `--residual_output` or `--affine_output` generator start as the identity: its last conv,
    which predicts the change (or the colour transform), starts at zero (models.initialization reads
    `initial_scale`). Left to the usual init, that conv's output spreads about as widely as an image's
    values, and an untrained generator scores far below its own input (12 dB against 26 dB of PSNR on a
    colour-grade task). Returns `net`."""
    convs = [module for module in net.modules() if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d))]
    convs[-1].initial_scale = 0.0
    return net
