"""DiffAugment (Zhao et al. 2020) for `--diffaug`: random colour, translation and cutout, differentiable.

Every image a discriminator judges, real or generated, in its own loss and in the generator's, goes
through the same policy first, so the discriminator cannot tell real from fake by the augmentation,
and the generator's gradient flows back through it. Each image of a batch gets its own random
draws, taken from torch's generator on the images' device: a seeded run is repeatable and a resumed
one continues with the saved random state. Like the paper's, the colour transforms may leave [-1, 1]
(reals and fakes alike); translation and cutout fill with 0, the middle of the range.
"""
import torch
import torch.nn.functional as F

from util.errors import UserError

TRANSLATION_RATIO = 0.125  # largest shift, as a fraction of the side (the paper's)
CUTOUT_RATIO = 0.5  # side of the cut-out square, as a fraction of the image's side (the paper's)


def _draw(x):
    """One uniform [0, 1) fp32 draw per image of the batch `x`, shaped to broadcast over it."""
    return torch.rand(x.size(0), 1, 1, 1, device=x.device)


def _brightness(x, draw):
    return x + (draw - 0.5)


def _saturation(x, draw):
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (draw * 2) + mean


def _contrast(x, draw):
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (draw + 0.5) + mean


def _colour(x, pictures):
    """Random brightness (+-0.5), saturation (x0 to x2) and contrast (x0.5 to x1.5) of each image.

    pictures: the channel counts of the pictures stacked in `x` (None: one picture); each gets the
    same draws, and its own means.
    """
    parts = torch.split(x, list(pictures), dim=1) if pictures else (x,)
    for transform in (_brightness, _saturation, _contrast):
        draw = _draw(x)
        parts = [transform(part, draw) for part in parts]
    return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


def _translation(x):
    """Shift each image by up to TRANSLATION_RATIO of its sides, filling the uncovered border with 0."""
    n, _, height, width = x.shape
    max_dy, max_dx = int(height * TRANSLATION_RATIO + 0.5), int(width * TRANSLATION_RATIO + 0.5)
    dy = torch.randint(-max_dy, max_dy + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-max_dx, max_dx + 1, (n, 1, 1), device=x.device)
    # Output pixel (i, j) reads input (i + dy, j + dx); the zero border of the padded image covers
    # every position a shift can reach outside the picture.
    rows = torch.arange(height, device=x.device).view(1, -1, 1) + dy + max_dy
    cols = torch.arange(width, device=x.device).view(1, 1, -1) + dx + max_dx
    padded = F.pad(x, (max_dx, max_dx, max_dy, max_dy)).permute(0, 2, 3, 1)
    batch = torch.arange(n, device=x.device).view(-1, 1, 1)
    return padded[batch, rows, cols].permute(0, 3, 1, 2)


def _cutout(x):
    """Zero one square of CUTOUT_RATIO of the sides per image, centred anywhere in it (it may overhang)."""
    n, _, height, width = x.shape
    size_y, size_x = int(height * CUTOUT_RATIO + 0.5), int(width * CUTOUT_RATIO + 0.5)
    top = torch.randint(0, height + (1 - size_y % 2), (n, 1, 1), device=x.device) - size_y // 2
    left = torch.randint(0, width + (1 - size_x % 2), (n, 1, 1), device=x.device) - size_x // 2
    rows = torch.arange(height, device=x.device).view(1, -1, 1)
    cols = torch.arange(width, device=x.device).view(1, 1, -1)
    inside = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
    return x * (~inside).unsqueeze(1).to(x.dtype)


# Spatial policies move or cut every picture of an input alike; colour is handled per picture (_colour).
_SPATIAL = {"translation": _translation, "cutout": _cutout}
POLICIES = ("color", *_SPATIAL)


def parse_policy(text):
    """The canonical --diffaug value of `text` ('color,translation'); '' for none; UserError for an
    unknown name. Used as the flag's argparse type, so the mistake is refused before anything runs."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise UserError(f"--diffaug: unknown policy {unknown[0]!r}; choose from {', '.join(POLICIES)} "
                        "(comma-separated, e.g. --diffaug color,translation,cutout)")
    return ",".join(dict.fromkeys(names))


class DiffAugment:
    """The --diffaug policy as a callable on batches of discriminator inputs (N, C, H, W).

    policy: a parse_policy value, its transforms applied in the order given ('' leaves inputs
    untouched and draws no random numbers, so runs without --diffaug are unchanged); pictures: the
    channel counts of the pictures stacked in one input, e.g. (input_nc, output_nc) for pix2pix's
    pairs, so that colour is changed per picture and the pair stays consistent; None: one picture.
    """

    def __init__(self, policy, pictures=None):
        self.names = [name for name in policy.split(",") if name]
        self.pictures = pictures

    def __call__(self, x):
        for name in self.names:
            x = _colour(x, self.pictures) if name == "color" else _SPATIAL[name](x)
        return x
