"""CIE Lab colour for colorization: RGB pictures to normalised L and ab tensors, and back to RGB.

The original tool's scaling is kept, so that its colorization datasets and weights mean the same here:
lightness L (0..100) is stored as L / 50 - 1 and the colour channels ab (about -110..110 for sRGB
colours) as ab / 110, both in [-1, 1] like every other image tensor. The conversions themselves are
scikit-image's `rgb2lab` and `lab2rgb` (D65 white, 2-degree observer), as in the original.
The colorization dataset (data/colorization_dataset.py) uses the first direction, the colorization
model (models/colorization_model.py) the second, for its RGB visuals.
"""
import warnings

import numpy as np
import torch
from skimage import color

from util.errors import UserError

L_HALF_RANGE = 50.0  # L in 0..100 -> L / 50 - 1 in [-1, 1]
AB_RANGE = 110.0  # ab of sRGB colours lie within about +-110 -> ab / 110 in [-1, 1]


def require_lab_layout(opt, what):
    """Refuse options under which A is not the L channel and B not the ab channels.

    opt: options (input_nc, output_nc, direction); what: the flag that asks for Lab data, for the message.
    """
    if (opt.input_nc, opt.output_nc, opt.direction) != (1, 2, "AtoB"):
        raise UserError(f"{what} maps the L channel to the ab channels (--input_nc 1 --output_nc 2 --direction "
                        f"AtoB, the defaults of --dataset_mode colorization), not --input_nc {opt.input_nc} "
                        f"--output_nc {opt.output_nc} --direction {opt.direction}; use --dataset_mode "
                        "colorization and leave those flags out")


def rgb_to_lab_tensors(picture):
    """Split an RGB picture into its normalised Lab channels.

    picture: a PIL RGB image, a uint8 HxWx3 array, or anything np.asarray turns into a float HxWx3 array
    in [0, 1] (a full-depth data.deep_image.DeepImage). Returns (L as a 1xHxW float32 tensor, ab as a
    2xHxW float32 tensor), both in [-1, 1].
    """
    lab = color.rgb2lab(np.asarray(picture)).astype(np.float32)
    lab = torch.from_numpy(lab).permute(2, 0, 1)
    return lab[:1] / L_HALF_RANGE - 1.0, lab[1:] / AB_RANGE


def lab_tensors_to_rgb(lightness, ab):
    """Join normalised L and ab batches into RGB pictures, as a tensor in [-1, 1] (the convention of
    every visual, so pages, metrics and loggers show them like any other image).

    lightness: (N, 1, H, W) tensor; ab: (N, 2, H, W) tensor (e.g. a generator's output). Returns an
    (N, 3, H, W) float32 tensor on lightness's device.
    """
    lab = torch.cat([(lightness.detach().float() + 1.0) * L_HALF_RANGE, ab.detach().float() * AB_RANGE], dim=1)
    lab = lab.cpu().permute(0, 2, 3, 1).numpy().astype(np.float64)
    with warnings.catch_warnings():
        # Generated ab values often leave the sRGB gamut; lab2rgb clips them, which is what we want,
        # but it warns on every call, which would flood the log at each display.
        warnings.filterwarnings("ignore", message=".*negative Z values that have been clipped", category=UserWarning)
        rgb = color.lab2rgb(lab)
    rgb = torch.from_numpy(rgb.astype(np.float32)).permute(0, 3, 1, 2)
    return (rgb * 2.0 - 1.0).to(lightness.device)
