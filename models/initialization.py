"""Weight initialisation chosen by `--init_type` and `--init_gain`."""
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils import parametrize

INIT_CHOICES = ("normal", "xavier", "kaiming", "orthogonal", "xavier_uniform", "kaiming_uniform")
_WEIGHT_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
# The activations whose gain torch.nn.init.calculate_gain knows. ELU has none there; it is the
# identity for positive inputs, so it counts as linear (gain 1).
_ACTIVATIONS = {nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.ELU: "linear"}


def following_nonlinearities(net):
    """For each conv/linear layer of `net`: (name, parameter) of the nonlinearity its output meets
    next, as torch.nn.init.calculate_gain takes them: ("relu", None), ("leaky_relu", 0.2),
    ("tanh", None), ... ; ("linear", None) when another weight layer (or the end) comes first, as for
    the second conv of a residual block, whose output is added to the block's input.

    Layers are visited in the order the networks register them, which is the order of their forward
    passes (normalisation and padding in between do not count).
    """
    found, waiting = {}, None
    for module in net.modules():
        if isinstance(module, _WEIGHT_LAYERS):
            if waiting is not None:
                found[waiting] = ("linear", None)
            waiting = module
        elif type(module) in _ACTIVATIONS and waiting is not None:
            name = _ACTIVATIONS[type(module)]
            found[waiting] = (name, module.negative_slope if name == "leaky_relu" else None)
            waiting = None
    if waiting is not None:
        found[waiting] = ("linear", None)
    return found


def _init_weight(weight, init_type, gain, nonlinearity):
    if init_type == "normal":
        nn.init.normal_(weight, 0.0, gain)
    elif init_type == "xavier":
        nn.init.xavier_normal_(weight, gain=gain)
    elif init_type == "kaiming":
        nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
    elif init_type == "orthogonal":
        nn.init.orthogonal_(weight, gain=gain)
    elif init_type == "xavier_uniform":
        nn.init.xavier_uniform_(weight, gain=nn.init.calculate_gain(*nonlinearity))
    elif init_type == "kaiming_uniform":
        name, slope = nonlinearity
        nn.init.kaiming_uniform_(weight, a=slope or 0, mode="fan_in", nonlinearity=name)
    else:
        raise ValueError(f"unknown init type {init_type!r}; choose one of {', '.join(INIT_CHOICES)}")


def _init_layer(module, init_type, gain, nonlinearity):
    """Initialise one conv/linear layer; a weight-normalised one through its weight (which sets its
    scale g and direction v); a layer with `initial_scale` is scaled by it (the gated block's gate: 0.1;
    the last conv of a --residual_output generator: 0)."""
    scale = getattr(module, "initial_scale", 1.0)
    with torch.no_grad():
        if parametrize.is_parametrized(module, "weight"):
            weight = torch.empty_like(module.weight)
            _init_weight(weight, init_type, gain, nonlinearity)
            module.weight = weight * scale
        else:
            _init_weight(module.weight, init_type, gain, nonlinearity)
            if scale != 1.0:
                module.weight.mul_(scale)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def init_weights(net, init_type="normal", init_gain=0.02):
    """Initialise conv/linear weights by `init_type` (biases 0) and batch-norm scales as N(1, gain).

    net: the network, changed in place and returned; init_gain: std for normal, gain for
    xavier/orthogonal; kaiming ignores it, and xavier_uniform/kaiming_uniform use instead the gain of
    the nonlinearity that follows each layer (see following_nonlinearities).
    """
    nonlinearities = following_nonlinearities(net)
    for module in net.modules():
        if isinstance(module, _WEIGHT_LAYERS):
            _init_layer(module, init_type, init_gain, nonlinearities[module])
        elif isinstance(module, _BatchNorm) and module.affine:
            nn.init.normal_(module.weight, 1.0, init_gain)
            nn.init.zeros_(module.bias)
    return net
