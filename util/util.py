"""Image and file helpers: tensors in [-1, 1] to uint8 (or 16-bit) pictures, saving them, making folders."""
import os
import zlib

import numpy as np
import torch
from PIL import Image

from util.errors import UserError

SIXTEEN_BIT_MAX = 65535
# zlib settings of the 8-bit PNGs written: level 1 with run-length matching only (Z_RLE), which suits
# PNG's filtered rows. On 20 photo crops of 256 px (an Intel Xeon): 3.4 ms a picture against Pillow's
# default (level 6) 11.5 ms, at 92.7 against 90.1 KB (level 1 alone: 4.0 ms, 97.7 KB); flat pictures as
# small as level 6's. test.py encodes two pictures per image on the cores the network runs on. OpenCV's
# 16-bit PNGs use level 1 by default too.
PNG_ENCODER_OPTIONS = {"compress_level": 1, "compress_type": zlib.Z_RLE}


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


def tensor2deep(image):
    """Turn an image tensor into a uint16 HxWxC array (C: the tensor's 1 or 3 channels), for 16-bit files.

    image: a tensor in [-1, 1] shaped (C, H, W) or (N, C, H, W) (the first of the batch is used).
    Unlike tensor2im, one-channel images stay one channel: a 16-bit grey file is what they become.
    """
    if image.dim() == 4:
        image = image[0]
    array = image.detach().float().cpu().clamp(-1.0, 1.0).numpy().astype(np.float64)
    array = (np.transpose(array, (1, 2, 0)) + 1.0) / 2.0 * SIXTEEN_BIT_MAX
    return np.rint(array).astype(np.uint16)


def save_image(picture, image_path, aspect_ratio=1.0):
    """Save a picture as an image file: a uint8 HxWx3 array in the format of the path's extension, or a
    uint16 HxWxC array (C = 1 or 3, from tensor2deep) as a 16-bit PNG.

    aspect_ratio: width/height factor applied on save; > 1 widens the picture, < 1 makes it taller
    (the `--aspect_ratio` flag of test.py).
    """
    picture = _stretched(picture, aspect_ratio)
    try:
        if picture.dtype == np.uint16:
            _write_sixteen_bit_png(picture, image_path)
        else:
            Image.fromarray(picture).save(image_path, **_encoder_options(image_path))
    except OSError as err:  # Pillow's failed writes do not name the file
        raise OSError(err.errno, err.strerror, image_path) from err


def _encoder_options(image_path):
    """Pillow's save options for the file format that `image_path`'s extension names."""
    return PNG_ENCODER_OPTIONS if os.fspath(image_path).lower().endswith(".png") else {}


def _stretched(picture, aspect_ratio):
    """`picture` (HxWxC) resized (bicubic, channel by channel, which keeps 16 bits) to `aspect_ratio`."""
    height, width = picture.shape[:2]
    if aspect_ratio > 1.0:
        size = (int(round(width * aspect_ratio)), height)
    elif aspect_ratio < 1.0:
        size = (width, int(round(height / aspect_ratio)))
    else:
        return picture
    channels = [Image.fromarray(np.ascontiguousarray(picture[..., c])).resize(size, Image.BICUBIC)
                for c in range(picture.shape[2])]
    return np.stack([np.asarray(channel) for channel in channels], axis=-1)


def _write_sixteen_bit_png(picture, image_path):
    """Write a uint16 HxWxC array (C = 1 or 3, RGB) to `image_path` as a 16-bit grey or RGB PNG (Pillow
    writes 16-bit grey only, so OpenCV encodes it)."""
    cv2 = import_opencv("16-bit output files (--output_bits 16)")
    encoded, data = cv2.imencode(".png", picture[..., ::-1] if picture.shape[2] == 3 else picture[..., 0])
    if not encoded:
        raise ValueError(f"OpenCV could not encode a {picture.shape} 16-bit picture as PNG")
    with open(image_path, "wb") as handle:
        handle.write(data.tobytes())


def import_opencv(purpose):
    """The cv2 module (opencv-python, pinned in requirements.txt); UserError naming `purpose` (what
    needs it) when it is not installed."""
    try:
        import cv2
    except ImportError:
        raise UserError(f"{purpose} need OpenCV, which is not installed; pip install -r requirements.txt "
                        "(it pins opencv-python)")
    return cv2


def mkdirs(*paths):
    """Create each folder (and its parents) if it does not exist yet."""
    for path in paths:
        os.makedirs(path, exist_ok=True)
