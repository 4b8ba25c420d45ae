"""Weight initialisation chosen by `--init_type` and `--init_gain`."""
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

INIT_CHOICES = ("normal", "xavier", "kaiming", "orthogonal")


def _init_weight(weight, init_type, gain):
    if init_type == "normal":
        nn.init.normal_(weight, 0.0, gain)
    elif init_type == "xavier":
        nn.init.xavier_normal_(weight, gain=gain)
    elif init_type == "kaiming":
        nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
    elif init_type == "orthogonal":
        nn.init.orthogonal_(weight, gain=gain)
    else:
        raise ValueError(f"unknown init type {init_type!r}; choose one of {', '.join(INIT_CHOICES)}")


def init_weights(net, init_type="normal", init_gain=0.02):
    """Initialise conv/linear weights by `init_type` (biases 0) and batch-norm scales as N(1, gain).

    net: the network, changed in place and returned; init_gain: std for normal, gain for
    xavier/orthogonal (kaiming ignores it).
    """
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            _init_weight(module.weight, init_type, init_gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, _BatchNorm) and module.affine:
            nn.init.normal_(module.weight, 1.0, init_gain)
            nn.init.zeros_(module.bias)
    return net
