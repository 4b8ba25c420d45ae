"""Image and file helpers: tensors in [-1, 1] to uint8 pictures, saving them, making folders."""
import os

import numpy as np
import torch
from PIL import Image


def tensor2im(image):
    """Turn an image tensor into a uint8 HxWx3 array.

    image: a tensor in [-1, 1] shaped (C, H, W) or (N, C, H, W) (the first of the batch is used),
    or an array that is already a picture (returned unchanged). One-channel images are repeated to
    three channels so that every picture can be shown and saved the same way.
    """
    if not isinstance(image, torch.Tensor):
        return image
    if image.dim() == 4:
        image = image[0]
    array = image.detach().float().cpu().clamp(-1.0, 1.0).numpy()
    if array.shape[0] == 1:
        array = np.repeat(array, 3, axis=0)
    array = (np.transpose(array, (1, 2, 0)) + 1.0) / 2.0 * 255.0
    return np.rint(array).astype(np.uint8)


def save_image(image_numpy, image_path, aspect_ratio=1.0):
    """Save a uint8 HxWx3 array as an image file.

    aspect_ratio: width/height factor applied on save; > 1 widens the picture, < 1 makes it taller
    (the `--aspect_ratio` flag of test.py).
    """
    image = Image.fromarray(image_numpy)
    height, width = image_numpy.shape[:2]
    if aspect_ratio > 1.0:
        image = image.resize((int(round(width * aspect_ratio)), height), Image.BICUBIC)
    elif aspect_ratio < 1.0:
        image = image.resize((width, int(round(height / aspect_ratio))), Image.BICUBIC)
    try:
        image.save(image_path)
    except OSError as err:  # Pillow's failed writes do not name the file
        raise OSError(err.errno, err.strerror, image_path) from err


def mkdirs(*paths):
    """Create each folder (and its parents) if it does not exist yet."""
    for path in paths:
        os.makedirs(path, exist_ok=True)
