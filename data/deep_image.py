"""DeepImage: a picture with more than 8 bits per channel (16-bit PNG or TIFF, float TIFF), kept at full depth.

Pillow holds 16-bit grey, but not 16-bit colour, and it resizes and crops only its own images. A
DeepImage keeps each channel as a Pillow 'F' image (32-bit float) with values in [0, 1], so Pillow's own
resampling filters (the same bicubic as for 8-bit images), crops and flips apply to it unchanged. It has
the members of a PIL image that the datasets and transforms use (size, width, height, mode, resize,
crop, transpose, convert); `np.asarray(image)` and `to_tensor()` give its values, clipped to [0, 1] (a
bicubic resize overshoots at edges; Pillow clips 8-bit images there too).
"""
import numpy as np
import torch
from PIL import Image

# ITU-R 601 luminance, the weights of Pillow's own RGB -> L conversion of 8-bit images.
LUMINANCE_WEIGHTS = (0.299, 0.587, 0.114)


class DeepImage:
    """A full-depth picture of one channel (mode 'L') or three (mode 'RGB').

    bands: one or three Pillow 'F' images of the same size, values in [0, 1].
    """

    def __init__(self, bands):
        self.bands = tuple(bands)
        if len(self.bands) not in (1, 3):
            raise ValueError(f"a DeepImage has 1 or 3 channels, not {len(self.bands)}")

    @classmethod
    def from_array(cls, values):
        """A DeepImage of `values`: an HxW or HxWx(1 or 3) array in [0, 1]."""
        values = np.asarray(values, dtype=np.float32)
        channels = values[..., None] if values.ndim == 2 else values
        return cls(Image.fromarray(np.ascontiguousarray(channels[..., c]), mode="F") for c in range(channels.shape[2]))

    @property
    def mode(self):
        """'L' or 'RGB', as a PIL image with these channels would say."""
        return "L" if len(self.bands) == 1 else "RGB"

    @property
    def size(self):
        """(width, height) in pixels."""
        return self.bands[0].size

    @property
    def width(self):
        return self.size[0]

    @property
    def height(self):
        return self.size[1]

    def resize(self, size, resample=Image.Resampling.BICUBIC):
        """Resized to size (width, height) with a Pillow filter, as Image.resize."""
        return DeepImage(band.resize(size, resample) for band in self.bands)

    def crop(self, box):
        """The (left, upper, right, lower) box, as Image.crop (outside the picture: 0)."""
        return DeepImage(band.crop(box) for band in self.bands)

    def transpose(self, method):
        """Flipped or rotated by a PIL Image.Transpose method, as Image.transpose."""
        return DeepImage(band.transpose(method) for band in self.bands)

    def convert(self, mode):
        """This picture in mode 'L' (the luminance of a colour one) or 'RGB' (a grey one repeated)."""
        if mode == self.mode:
            return self
        if mode == "RGB":
            return DeepImage(self.bands * 3)
        if mode == "L":
            red, green, blue = (np.asarray(band) for band in self.bands)
            weights = LUMINANCE_WEIGHTS
            return DeepImage.from_array(weights[0] * red + weights[1] * green + weights[2] * blue)
        raise ValueError(f"a DeepImage converts to 'L' or 'RGB', not {mode!r}")

    def __array__(self, dtype=None, copy=None):
        """HxW (mode L) or HxWx3 (mode RGB) float32 values in [0, 1]."""
        values = np.clip(np.stack([np.asarray(band) for band in self.bands], axis=-1), 0.0, 1.0)
        values = values[..., 0] if len(self.bands) == 1 else values
        return values if dtype is None else values.astype(dtype)

    def to_tensor(self):
        """A CxHxW float32 tensor in [0, 1], as torchvision's to_tensor gives for an 8-bit image."""
        return torch.from_numpy(np.atleast_3d(np.asarray(self))).permute(2, 0, 1).contiguous()
