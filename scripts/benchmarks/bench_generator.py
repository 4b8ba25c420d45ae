"""The generator that the test.py benchmarks run (scripts/benchmarks/testpy_speed.py and
scripts/tile_benchmark.py): random weights of a fixed seed, saved where test.py's `test` model loads them."""
import os

import torch

from models.generators import define_G


def random_generator(net_g, ngf, norm="instance"):
    """The --netG `net_g` generator of --ngf `ngf` and --norm `norm` with random weights (seed 0), RGB in
    and out, without dropout: what `test.py --model test --no_dropout` builds for these flags."""
    torch.manual_seed(0)
    return define_G(3, 3, ngf, net_g, norm, False, "normal", 0.02)


def save_test_weights(net, checkpoints, name):
    """Save `net`'s weights as checkpoints/name/latest_net_G.pth, the file `test.py --model test --name
    name` loads; return its path."""
    folder = os.path.join(checkpoints, name)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "latest_net_G.pth")
    torch.save(net.state_dict(), path)
    return path
