"""Tiled inference (test.py --tile SIZE --tile_overlap PIXELS): a generator translates an image of any
size one tile at a time, so that its memory follows the tile, not the image.

Placement: the image is first padded to the generator's side multiple (models/size_padding.py, by
reflection). Along each side, tiles of `tile` px start every `tile - overlap` px, the last one flush
with the far edge (a side shorter than a tile is one tile). Tile sizes and starts are multiples of
TILE_GRID, so every tile sees the sampling grid of the generator's stride-2 layers where the whole
image puts it.
Blending: a tile's weight rises linearly across its first `overlap` px and falls across its last ones
(not at the image's borders), per axis; at every pixel the weights of the tiles covering it are
divided by their sum, so they sum to 1 and the blend is exact wherever the tiles agree.
Normalisation: instance norm (and batch norm in training mode) normalises by the statistics of what
it sees, which is one tile here. With statistics="image" every such layer uses instead the statistics
of one pass over the whole image scaled down to a tile's area, the same for every tile.
"""
import contextlib
import functools
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from util.errors import UserError

from .size_padding import pad_to_multiple

# Tile corners lie on multiples of 4 px, the sampling grid of the ResNet generators' two stride-2 layers
# (the U-Nets' coarser grids would force overlaps of 128 or 256 px; their outputs depend on the whole tile
# anyway). Every generator's side multiple is a multiple of it.
TILE_GRID = 4
MIN_TILE = 32
STATISTICS_CHOICES = ("tile", "image")


def check_tile_sizes(tile, overlap):
    """UserError when tiles of `tile` px overlapping by `overlap` px cannot be laid out (see the module
    docstring); the generator's own side multiple is checked when tiling is attached."""
    if tile < MIN_TILE:
        raise UserError(f"--tile {tile} is too small; use 0 (no tiles) or at least {MIN_TILE} (e.g. --tile 512)")
    if overlap % TILE_GRID or overlap <= 0:
        lower = max(TILE_GRID, overlap // TILE_GRID * TILE_GRID)
        choices = f"{lower} or {lower + TILE_GRID}" if lower < overlap else f"{lower}"
        raise UserError(f"--tile_overlap {overlap} is not a positive multiple of {TILE_GRID} (tiles start on the "
                        f"generators' {TILE_GRID}-pixel grid and blend across the overlap); use --tile_overlap {choices}")
    if tile < 2 * overlap:
        largest = tile // 2 // TILE_GRID * TILE_GRID
        raise UserError(f"--tile {tile} is less than twice --tile_overlap {overlap}, so a tile's two blending ramps "
                        f"would cross; use --tile {2 * overlap} or more, or --tile_overlap {largest} or less")


def check_size_multiple(tile, size_multiple):
    """UserError when `tile` is not a multiple of the generator's side multiple `size_multiple`."""
    if tile % size_multiple:
        lower = tile // size_multiple * size_multiple
        choices = f"{lower} or {lower + size_multiple}" if lower else f"{size_multiple}"
        raise UserError(f"--tile {tile} is not a multiple of {size_multiple}, the side multiple of this generator "
                        f"(--netG); use --tile {choices}")


def tile_starts(length, tile, overlap):
    """The first pixel of each tile along a side of `length` px: every `tile - overlap` px, the last
    tile flush with the far edge; [0] when one tile covers the side."""
    if length <= tile:
        return [0]
    return list(range(0, length - tile, tile - overlap)) + [length - tile]


def axis_weights(length, tile, overlap):
    """[(start, weights)] of the tiles along a side of `length` px: each tile's blending weights
    (a tensor of its size), which sum to 1 at every pixel of the side.

    A tile's raw weight ramps from 0.5/overlap to 1 over its first `overlap` px and back over its
    last ones (pixel centres), except at the image's borders; where two neighbours overlap by exactly
    `overlap` px their ramps add up to 1, elsewhere (the last, flush tile) the sum is divided out.
    """
    size = min(tile, length)
    starts = tile_starts(length, tile, overlap)
    ramp = (torch.arange(size, dtype=torch.float64) + 0.5) / overlap
    raw = []
    for start in starts:
        weights = torch.ones(size, dtype=torch.float64)
        if start > 0:
            weights = torch.minimum(weights, ramp)
        if start + size < length:
            weights = torch.minimum(weights, ramp.flip(0))
        raw.append(weights)
    total = torch.zeros(length, dtype=torch.float64)
    for start, weights in zip(starts, raw):
        total[start:start + size] += weights
    return [(start, weights / total[start:start + size]) for start, weights in zip(starts, raw)]


def input_normalising_layers(net):
    """The normalisation layers of `net` that normalise by the statistics of their input as they run
    now: instance norm without running statistics, and any instance or batch norm in training mode."""
    layers = []
    for module in net.modules():
        if isinstance(module, (nn.InstanceNorm2d, nn.modules.batchnorm._BatchNorm)) and \
                (module.training or not module.track_running_stats):
            layers.append(module)
    return layers


def _at_least_fp32(x):
    """`x` in float32, or in its own precision when that is higher: statistics are not taken in --amp's
    bfloat16 or float16."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _reduced_dims(layer):
    """The dimensions a layer's statistics are taken over: per image and channel for instance norm,
    per channel over the batch for batch norm."""
    return (2, 3) if isinstance(layer, nn.InstanceNorm2d) else (0, 2, 3)


class SharedStatistics:
    """Each input-normalising layer's mean and variance, recorded in one pass (`recording`) and used
    in place of the layers' own in later passes (`applied`).

    net: the generator whose layers (input_normalising_layers) take part.
    """

    def __init__(self, net):
        self.layers = input_normalising_layers(net)
        self.statistics = {}

    @contextlib.contextmanager
    def recording(self):
        """Within it, every forward pass of the generator records each layer's input statistics."""
        def record(layer, args, output):
            x = _at_least_fp32(args[0])
            var, mean = torch.var_mean(x, dim=_reduced_dims(layer), correction=0, keepdim=True)
            self.statistics[layer] = (mean, var)
        with _hooks(self.layers, record):
            yield

    @contextlib.contextmanager
    def applied(self):
        """Within it, each layer normalises by the recorded statistics instead of its input's. Its forward
        is replaced (as TiledForward replaces the generator's), so that its own normalisation is not
        computed in vain."""
        for layer in self.layers:
            layer.forward = functools.partial(self.normalise, layer)
        try:
            yield
        finally:
            for layer in self.layers:
                del layer.forward  # back to the class's forward

    def normalise(self, layer, x):
        """`layer`'s output for input `x` with the recorded statistics."""
        mean, var = self.statistics[layer]
        out = (_at_least_fp32(x) - mean) * torch.rsqrt(var + layer.eps)
        if layer.affine:
            out = out * layer.weight.view(1, -1, 1, 1) + layer.bias.view(1, -1, 1, 1)
        return out.to(x.dtype)


@contextlib.contextmanager
def _hooks(layers, hook):
    """Forward hook `hook` on each of `layers` within the block."""
    handles = [layer.register_forward_hook(hook) for layer in layers]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class TiledForward:
    """A generator's forward pass over tiles (see the module docstring): call it with an image batch
    whose sides are multiples of the generator's side multiple.

    forward: the generator's own forward; net: the generator; tile, overlap: in px; statistics: one of
    STATISTICS_CHOICES. A plain object, not a module, so that setting it as `net.forward` leaves the
    network's parameters and state_dict names as they are.
    """

    def __init__(self, forward, net, tile, overlap, statistics):
        self.forward, self.net = forward, net
        self.tile, self.overlap, self.statistics = tile, overlap, statistics

    def __call__(self, x):
        shared = contextlib.nullcontext()
        if self.statistics == "image":
            shared = self.image_statistics(x).applied()
        with shared:
            return self.blend(x)

    def blend(self, x):
        """The tiles' outputs blended into one image of x's size."""
        height, width = x.shape[-2:]
        out = None
        for top, row_weights in axis_weights(height, self.tile, self.overlap):
            for left, column_weights in axis_weights(width, self.tile, self.overlap):
                piece = self.forward(x[..., top:top + len(row_weights), left:left + len(column_weights)])
                if out is None:  # summed in at least fp32, whatever the precision of --amp
                    out = _at_least_fp32(piece.new_zeros(*piece.shape[:2], height, width))
                weights = row_weights[:, None] * column_weights[None, :]
                out[..., top:top + piece.shape[-2], left:left + piece.shape[-1]] += piece * weights.to(out)
        return out.to(piece.dtype)

    def image_statistics(self, x):
        """SharedStatistics recorded from one pass over `x` scaled down to at most one tile's area (x
        itself when it is that small), padded to the generator's side multiple; no pass when no layer
        normalises by its input's statistics (no normalisation, or batch norm in eval mode)."""
        shared = SharedStatistics(self.net)
        if not shared.layers:
            return shared
        scale = min(1.0, self.tile / math.sqrt(x.shape[-2] * x.shape[-1]))
        if scale < 1.0:
            size = [max(1, round(side * scale)) for side in x.shape[-2:]]
            x = F.interpolate(x.float(), size=size, mode="bilinear", antialias=True, align_corners=False).to(x.dtype)
        with shared.recording():
            self.forward(pad_to_multiple(x, self.net.size_multiple))
        return shared


def attach_tiling(net, tile, overlap, statistics="tile"):
    """Make every forward pass of generator `net` (which has size padding attached, see
    models/size_padding.py) run over tiles; UserError when the sizes do not fit the generator."""
    if statistics not in STATISTICS_CHOICES:
        raise ValueError(f"unknown tile statistics {statistics!r}; choose one of {', '.join(STATISTICS_CHOICES)}")
    check_tile_sizes(tile, overlap)
    check_size_multiple(tile, net.size_multiple)
    net.forward = TiledForward(net.forward, net, tile, overlap, statistics)
    return net
