"""Generators chosen by `--netG`: ResNet (6 or 9 blocks) and U-Net (128 or 256).

Module and parameter names follow the original tool exactly (`model.1.weight`,
`model.10.conv_block.1.weight`, `model.model.1.model.3...`), so its checkpoints load unchanged.
Each generator tells, as `size_multiple`, what image sides it can take without shape errors.
"""
import torch
import torch.nn as nn

from .initialization import init_weights
from .norms import get_norm_layer, uses_bias

GENERATOR_CHOICES = ("resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128")


class ResnetBlock(nn.Module):
    """x + F(x), where F is pad-conv3x3-norm-ReLU-[dropout]-pad-conv3x3-norm at a fixed width.

    dim: channels; norm_layer: norm factory; use_dropout: Dropout(0.5) between the convs;
    use_bias: whether the convs carry a bias.
    """

    def __init__(self, dim, norm_layer, use_dropout, use_bias):
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(dim), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """Encoder (7x7 conv, two stride-2 convs), n_blocks ResNet blocks at 4*ngf, decoder, Tanh.

    input_nc/output_nc: image channels; ngf: width of the first layer; norm_layer: norm factory;
    use_dropout: dropout inside the blocks; n_blocks: number of ResNet blocks.
    """

    size_multiple = 4  # two stride-2 downsamplings

    def __init__(self, input_nc, output_nc, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False, n_blocks=6):
        super().__init__()
        use_bias = uses_bias(norm_layer)
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=use_bias), norm_layer(ngf), nn.ReLU(True)]
        for i in range(2):
            width = ngf * 2 ** i
            layers += [nn.Conv2d(width, width * 2, 3, stride=2, padding=1, bias=use_bias),
                       norm_layer(width * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, norm_layer, use_dropout, use_bias) for _ in range(n_blocks)]
        for i in range(2):
            width = ngf * 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1, bias=use_bias),
                       norm_layer(width // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class UnetSkipConnectionBlock(nn.Module):
    """One level of the U-Net: downsample, the inner levels (`submodule`), upsample, skip connection.

    outer_nc/inner_nc: channels outside/inside this level; input_nc: channels of the input (default
    outer_nc); submodule: the next inner level; outermost/innermost: the first/last level;
    norm_layer: norm factory; use_dropout: Dropout(0.5) after the upsampling.
    """

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        self.outermost = outermost
        use_bias = uses_bias(norm_layer)
        input_nc = outer_nc if input_nc is None else input_nc
        down_conv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=use_bias)
        if outermost:
            up_conv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1)
            layers = [down_conv, submodule, nn.ReLU(True), up_conv, nn.Tanh()]
        elif innermost:
            up_conv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=use_bias)
            layers = [nn.LeakyReLU(0.2, True), down_conv, nn.ReLU(True), up_conv, norm_layer(outer_nc)]
        else:
            up_conv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=use_bias)
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
    outermost level; norm_layer: norm factory; use_dropout: dropout in the inner 8*ngf levels.
    """

    def __init__(self, input_nc, output_nc, num_downs, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        self.size_multiple = 2 ** num_downs
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm_layer=norm_layer)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer,
                                            use_dropout=use_dropout)
        for outer in (4, 2, 1):
            block = UnetSkipConnectionBlock(ngf * outer, ngf * outer * 2, submodule=block, norm_layer=norm_layer)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block,
                                             outermost=True, norm_layer=norm_layer)

    def forward(self, x):
        return self.model(x)


def define_G(input_nc, output_nc, ngf, netG, norm="batch", use_dropout=False, init_type="normal", init_gain=0.02):
    """Build and initialise the generator named `netG` (one of GENERATOR_CHOICES)."""
    norm_layer = get_norm_layer(norm)
    if netG in ("resnet_9blocks", "resnet_6blocks"):
        n_blocks = 9 if netG == "resnet_9blocks" else 6
        net = ResnetGenerator(input_nc, output_nc, ngf, norm_layer, use_dropout, n_blocks)
    elif netG in ("unet_256", "unet_128"):
        num_downs = 8 if netG == "unet_256" else 7
        net = UnetGenerator(input_nc, output_nc, num_downs, ngf, norm_layer, use_dropout)
    else:
        raise ValueError(f"unknown generator {netG!r}; choose one of {', '.join(GENERATOR_CHOICES)}")
    return init_weights(net, init_type, init_gain)


def infer_generator_flags(state_dict):
    """The --netG --ngf --norm [--no_dropout] flags a generator state_dict was saved with, as text
    (None when the keys are not those of a generator of ours or of the original tool)."""
    keys = set(state_dict)
    if "model.1.weight" in keys and any(".conv_block." in key for key in keys):
        ngf = state_dict["model.1.weight"].shape[0]
        blocks = {key.split(".")[1] for key in keys if ".conv_block." in key}
        net_g = f"resnet_{len(blocks)}blocks"
        # With dropout the second conv of a block moves from index 5 to 6 (index 6 is a norm otherwise).
        dropout = any(key.endswith("conv_block.6.weight") and state_dict[key].dim() == 4 for key in keys)
        norm_key, bias_key = "model.2.weight", "model.1.bias"
    elif "model.model.0.weight" in keys:
        ngf = state_dict["model.model.0.weight"].shape[0]
        net_g = f"unet_{2 ** (max(key.split('.').count('model') for key in keys) - 1)}"
        dropout = False  # U-Net dropout layers hold no parameters, so the file cannot tell
        norm_key, bias_key = "model.model.1.model.2.weight", "model.model.1.model.1.bias"
    else:
        return None
    norm = "batch" if norm_key in keys else "instance" if bias_key in keys else "none"
    return f"--netG {net_g} --ngf {ngf} --norm {norm}" + (" (without --no_dropout)" if dropout else "")


def smallest_input_side(netG):
    """The smallest image side (px) that generator `netG` can be trained on: a ResNet generator pads
    to a multiple of 4, and its normalisation after two halvings needs more than one value per channel
    (so 5 px); a U-Net pads to its full depth, so any side."""
    return 5 if netG.startswith("resnet") else 1
