"""Generators chosen by `--netG`: ResNet (6 or 9 blocks) and U-Net (128 or 256), with the choices of
`--upsample`, `--resblock`, `--residual_output` and `--affine_output` with `--affine_smooth` (their layers live in
models/blocks.py).

With the default choices, module and parameter names follow the original tool exactly (`model.1.weight`,
`model.10.conv_block.1.weight`, `model.model.1.model.3...`), so its checkpoints load unchanged.
Each generator tells, as `size_multiple`, what image sides it can take without shape errors.
"""
import re

import torch
import torch.nn as nn

from util.errors import UserError

from .blocks import (
    RESBLOCK_CHOICES,
    RESIDUAL_BLOCKS,
    UPSAMPLE_CHOICES,
    apply_change,
    apply_color_transform,
    last_layer_channels,
    padded_relu,
    residual_block,
    smooth_color_transform,
    start_from_input,
    upsampling_layer,
)
from .initialization import init_weights
from .norms import get_norm_layer, uses_bias
from .reflection_pad import ReflectionPad2d
from .stylegan2_networks import STYLEGAN2_GENERATORS

GENERATOR_CHOICES = ("resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128")
# The generator options of ours beyond the original tool's, with their defaults (the original networks).
GENERATOR_OPTION_DEFAULTS = {"upsample": "transpose", "resblock": "original", "residual_output": False,
                             "affine_output": False, "affine_smooth": 1}


class ResnetGenerator(nn.Module):
    """Encoder (7x7 conv, two stride-2 convs), n_blocks residual blocks at 4*ngf, decoder, Tanh (the ReLU
    before the last conv after its padding: blocks.padded_relu).

    input_nc/output_nc: image channels; ngf: width of the first layer; norm_layer: norm factory;
    use_dropout: dropout inside the blocks; n_blocks: number of residual blocks; upsample: the
    decoder's x2 layers (UPSAMPLE_CHOICES); resblock: the kind of block (RESBLOCK_CHOICES);
    residual_output: the last conv predicts a change to the input (blocks.apply_change) instead of
    the image; affine_output: it predicts a per-pixel colour transform of the input
    (blocks.apply_color_transform), averaged over cells of affine_smooth pixels
    (blocks.smooth_color_transform).
    """

    size_multiple = 4  # two stride-2 downsamplings

    def __init__(self, input_nc, output_nc, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False, n_blocks=6,
                 upsample="transpose", resblock="original", residual_output=False, affine_output=False,
                 affine_smooth=1):
        super().__init__()
        self.output = output_kind(residual_output, affine_output)
        self.affine_smooth = affine_smooth
        use_bias = uses_bias(norm_layer)
        layers = [ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=use_bias), norm_layer(ngf), nn.ReLU(True)]
        for i in range(2):
            width = ngf * 2 ** i
            layers += [nn.Conv2d(width, width * 2, 3, stride=2, padding=1, bias=use_bias),
                       norm_layer(width * 2), nn.ReLU(True)]
        layers += [residual_block(resblock, ngf * 4, norm_layer, use_dropout, use_bias) for _ in range(n_blocks)]
        layers += [upsampling_layer(upsample, ngf * 4, ngf * 2, 3, use_bias), norm_layer(ngf * 2), nn.ReLU(True),
                   upsampling_layer(upsample, ngf * 2, ngf, 3, use_bias), norm_layer(ngf)]
        layers += padded_relu(3) + [nn.Conv2d(ngf, last_layer_channels(output_nc, affine_output), 7)]
        if self.output == "image":
            layers.append(nn.Tanh())
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return meet_input(self.output, x, self.model(x), self.affine_smooth)


class UnetSkipConnectionBlock(nn.Module):
    """One level of the U-Net: downsample, the inner levels (`submodule`), upsample, skip connection.

    outer_nc/inner_nc: channels outside/inside this level; input_nc: channels of the input (default
    outer_nc); submodule: the next inner level; outermost/innermost: the first/last level;
    norm_layer: norm factory; use_dropout: Dropout(0.5) after the upsampling; upsample: the kind of
    x2 layer (UPSAMPLE_CHOICES); final_tanh: whether the outermost level ends in Tanh.
    """

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm_layer=nn.BatchNorm2d, use_dropout=False, upsample="transpose", final_tanh=True):
        super().__init__()
        self.outermost = outermost
        use_bias = uses_bias(norm_layer)
        input_nc = outer_nc if input_nc is None else input_nc
        down_conv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=use_bias)
        if outermost:
            up_conv = upsampling_layer(upsample, inner_nc * 2, outer_nc, 4, True)
            layers = [down_conv, submodule, nn.ReLU(True), up_conv] + ([nn.Tanh()] if final_tanh else [])
        elif innermost:
            up_conv = upsampling_layer(upsample, inner_nc, outer_nc, 4, use_bias)
            layers = [nn.LeakyReLU(0.2, True), down_conv, nn.ReLU(True), up_conv, norm_layer(outer_nc)]
        else:
            up_conv = upsampling_layer(upsample, inner_nc * 2, outer_nc, 4, use_bias)
            layers = [nn.LeakyReLU(0.2, True), down_conv, norm_layer(inner_nc), submodule,
                      nn.ReLU(True), up_conv, norm_layer(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """U-Net with `num_downs` stride-2 levels (7: 128x128 bottleneck 1x1, 8: 256x256).

    input_nc/output_nc: image channels; num_downs: number of downsamplings; ngf: width of the
    outermost level; norm_layer: norm factory; use_dropout: dropout in the inner 8*ngf levels;
    upsample, residual_output, affine_output and affine_smooth: as for ResnetGenerator.
    """

    def __init__(self, input_nc, output_nc, num_downs, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False,
                 upsample="transpose", residual_output=False, affine_output=False, affine_smooth=1):
        super().__init__()
        self.size_multiple = 2 ** num_downs
        self.output = output_kind(residual_output, affine_output)
        self.affine_smooth = affine_smooth
        shared = dict(norm_layer=norm_layer, upsample=upsample)
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, **shared)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout, **shared)
        for outer in (4, 2, 1):
            block = UnetSkipConnectionBlock(ngf * outer, ngf * outer * 2, submodule=block, **shared)
        self.model = UnetSkipConnectionBlock(last_layer_channels(output_nc, affine_output), ngf, input_nc=input_nc,
                                             submodule=block, outermost=True, final_tanh=self.output == "image",
                                             **shared)

    def forward(self, x):
        return meet_input(self.output, x, self.model(x), self.affine_smooth)


def output_kind(residual_output, affine_output):
    """What a generator's last layer predicts: "change" (--residual_output), "affine" (--affine_output) or
    the "image" itself."""
    return "change" if residual_output else "affine" if affine_output else "image"


def meet_input(output: str, x: torch.Tensor, last_layer: torch.Tensor, affine_smooth: int) -> torch.Tensor:
    """The generator's output from its input `x` and its last layer's output, for each output kind
    (affine_smooth: the cell of --affine_smooth)."""
    if output == "change":
        return apply_change(x, last_layer)
    if output == "affine":
        return apply_color_transform(x, smooth_color_transform(last_layer, affine_smooth))
    return last_layer


def generator_options(opt):
    """The GENERATOR_OPTION_DEFAULTS options of `opt` (parsed options; missing ones at their defaults),
    as keyword arguments of define_G."""
    return {name: getattr(opt, name, default) for name, default in GENERATOR_OPTION_DEFAULTS.items()}


def generator_option_flags(upsample="transpose", resblock="original", residual_output=False, affine_output=False,
                           affine_smooth=1):
    """The generator options that differ from their defaults, as a user types them, e.g.
    ['--resblock gated', '--residual_output'] (empty for the original networks)."""
    flags = [f"--{name} {value}" for name, value in (("resblock", resblock), ("upsample", upsample))
             if value != GENERATOR_OPTION_DEFAULTS[name]]
    flags += [f"--{name}" for name, value in (("residual_output", residual_output),
                                              ("affine_output", affine_output)) if value]
    return flags + ([f"--affine_smooth {affine_smooth}"] if affine_smooth != 1 else [])


def check_generator_options(netG, input_nc, output_nc, upsample, resblock, residual_output, affine_output=False,
                            affine_smooth=1):
    """UserError when the generator options do not fit the generator or the channels (ValueError for
    names outside the choices, which the option parser already refuses)."""
    if upsample not in UPSAMPLE_CHOICES:
        raise ValueError(f"unknown upsampling {upsample!r}; choose one of {', '.join(UPSAMPLE_CHOICES)}")
    if resblock not in RESBLOCK_CHOICES:
        raise ValueError(f"unknown residual block {resblock!r}; choose one of {', '.join(RESBLOCK_CHOICES)}")
    if resblock != "original" and not netG.startswith("resnet"):
        raise UserError(f"--resblock {resblock} applies to the ResNet generators only, not --netG {netG}; "
                        "use --netG resnet_9blocks or resnet_6blocks, or leave out --resblock")
    if residual_output and affine_output:
        raise UserError("--residual_output and --affine_output are two ways of predicting the output from the "
                        "input; choose one of them")
    if affine_smooth != 1 and not affine_output:
        raise UserError(f"--affine_smooth {affine_smooth} smooths the colour transform of --affine_output; "
                        "add --affine_output or leave out --affine_smooth")
    if affine_smooth < 1:
        raise ValueError(f"--affine_smooth must be 1 or more pixels, not {affine_smooth}")
    flag = "--residual_output" if residual_output else "--affine_output" if affine_output else None
    if flag and input_nc != output_nc:
        raise UserError(f"{flag} changes the generator's input into its output, so it needs as many input "
                        f"as output channels (here {input_nc} -> {output_nc}); leave out {flag} "
                        "or make --input_nc and --output_nc equal")


def define_G(input_nc, output_nc, ngf, netG, norm="batch", use_dropout=False, init_type="normal", init_gain=0.02,
             upsample="transpose", resblock="original", residual_output=False, affine_output=False, affine_smooth=1):
    """Build and initialise the generator named `netG` (one of GENERATOR_CHOICES).

    upsample, resblock, residual_output, affine_output, affine_smooth: see ResnetGenerator (the U-Nets take the
    original block only). The network's `option_flags` names the options that differ from the
    original's (for summaries).
    """
    if netG in STYLEGAN2_GENERATORS:
        raise UserError(f"--netG {netG} is a generator of --model cut only (the official CUT code's single-image "
                        f"networks); train it with --model cut, or choose --netG {' or '.join(GENERATOR_CHOICES)}")
    check_generator_options(netG, input_nc, output_nc, upsample, resblock, residual_output, affine_output, affine_smooth)
    norm_layer = get_norm_layer(norm)
    if netG in ("resnet_9blocks", "resnet_6blocks"):
        n_blocks = 9 if netG == "resnet_9blocks" else 6
        net = ResnetGenerator(input_nc, output_nc, ngf, norm_layer, use_dropout, n_blocks, upsample, resblock,
                              residual_output, affine_output, affine_smooth)
    elif netG in ("unet_256", "unet_128"):
        num_downs = 8 if netG == "unet_256" else 7
        net = UnetGenerator(input_nc, output_nc, num_downs, ngf, norm_layer, use_dropout, upsample, residual_output,
                            affine_output, affine_smooth)
    else:
        raise ValueError(f"unknown generator {netG!r}; choose one of {', '.join(GENERATOR_CHOICES)}")
    net.option_flags = generator_option_flags(upsample, resblock, residual_output, affine_output, affine_smooth)
    if residual_output or affine_output:
        start_from_input(net)
    return init_weights(net, init_type, init_gain)


def infer_generator_flags(state_dict):
    """The --netG --ngf --norm [--resblock --upsample] [--no_dropout] flags a generator state_dict was
    saved with, as text (None when the keys are not those of a generator of ours or of the original
    tool). --residual_output and --affine_smooth hold no parameters, so the file cannot tell them."""
    keys = set(state_dict)
    block = next((cls for cls in RESIDUAL_BLOCKS.values() if any(f".{cls.branch}." in key for key in keys)), None)
    options = {"upsample": "resize" if any(key.endswith(".conv.weight") for key in keys) else "transpose"}
    if "model.1.weight" in keys and block is not None:
        ngf = state_dict["model.1.weight"].shape[0]
        blocks = {key.split(".")[1] for key in keys if f".{block.branch}." in key}
        net_g = f"resnet_{len(blocks)}blocks"
        options["resblock"] = next(kind for kind, cls in RESIDUAL_BLOCKS.items() if cls is block)
        # Dropout holds no parameters but moves the branch's last conv (a 4-d weight) one place up.
        after_dropout = re.compile(rf"\.{block.branch}\.{block.last_conv + 1}\.")
        dropout = any(after_dropout.search(key) and state_dict[key].dim() == 4 for key in keys)
        norm_key, bias_key = "model.2.weight", "model.1.bias"
    elif "model.model.0.weight" in keys:
        ngf = state_dict["model.model.0.weight"].shape[0]
        net_g = f"unet_{2 ** (max(key.split('.').count('model') for key in keys) - 1)}"
        dropout = False  # U-Net dropout layers hold no parameters, so the file cannot tell
        norm_key, bias_key = "model.model.1.model.2.weight", "model.model.1.model.1.bias"
    else:
        return None
    norm = "batch" if norm_key in keys else "instance" if bias_key in keys else "none"
    resnet = net_g.startswith("resnet")
    options["affine_output"] = predicts_colour_transform(state_dict, "model.1.weight" if resnet else "model.model.0.weight",
                                                         last_transposed=not resnet and options["upsample"] == "transpose")
    flags = [f"--netG {net_g}", f"--ngf {ngf}", f"--norm {norm}", *generator_option_flags(**options)]
    return " ".join(flags) + (" (without --no_dropout)" if dropout else "")


def predicts_colour_transform(state_dict, first_key, last_transposed):
    """Whether a generator state_dict's last layer has the channels of an --affine_output colour transform:
    C*(C+1) for the C input channels of its first conv `first_key`; last_transposed: the last layer is a
    transposed conv (whose weight is stored in, out, k, k). One input channel is left out, as its
    transform's 2 channels are also those of a plain two-channel output (colorization's L -> ab)."""
    channels = state_dict[first_key].shape[1]
    last = [value for key, value in state_dict.items() if key.endswith("weight") and value.dim() == 4][-1]
    return channels > 1 and last.shape[1 if last_transposed else 0] == last_layer_channels(channels, affine_output=True)


def smallest_input_side(netG):
    """The smallest image side (px) that generator `netG` can be trained on: a ResNet generator pads
    to a multiple of 4, and its normalisation after two halvings needs more than one value per channel
    (so 5 px); a U-Net pads to its full depth, so any side; a StyleGAN2 generator too (it has no norm)."""
    return 5 if netG.startswith("resnet") else 1
