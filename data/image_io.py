"""Reading one image file into a PIL image of the mode a dataset wants ('RGB' or 'L'), whatever it holds.

`load_image` decodes the whole file (a truncated or corrupt file raises `UnreadableImage` instead of
coming back half grey), turns the picture upright by its EXIF orientation, and brings every pixel kind
to 8 bits per channel without losing its meaning:
  1, L, P, RGB         converted directly (RGB -> L uses the ITU-R 601 luminance)
  alpha or tRNS key    composited onto white (RGBA, LA, PA, P/L/RGB with a transparency entry)
  I;16*, I             16-bit grey: value / 257, rounded (I is clamped to 0..65535 first)
  F                    float grey: 0..1 when its maximum is <= 1, else 0..255; clamped
  CMYK, YCbCr, ...     through Pillow's RGB conversion
16-bit-per-channel RGB(A) PNGs need nothing here: Pillow already reduces them to 8-bit RGB(A).
Multi-frame files (GIF, TIFF) give their first frame.

Files whose header claims more pixels than Pillow's decompression-bomb limit (`Image.MAX_IMAGE_PIXELS`,
about 89 million) are unreadable too, whether Pillow only warns (up to twice the limit) or refuses:
decoding one could take gigabytes of memory, and no training or test image needs that many pixels.
`opened_image` gives the same treatment to code that only reads a header.
"""
import contextlib
import struct
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from util.errors import UserError

# What Pillow raises for files it cannot open or decode; it has no single base class for them. Its
# decompression-bomb warning is turned into an error while a file is open (see opened_image).
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, Image.DecompressionBombError,
                 Image.DecompressionBombWarning)
# Transparent pixels are composited onto this colour: their hidden colour values are arbitrary (often
# black, left over from the editor), so dropping alpha would paint see-through regions with junk.
BACKGROUND = (255, 255, 255, 255)
SIXTEEN_BIT_MAX = 65535
EIGHT_BIT_SCALE = 257  # 65535 / 255: maps 16-bit 0..65535 exactly onto 8-bit 0..255


class UnreadableImage(UserError):
    """An image file that cannot be decoded (corrupt, truncated, not an image, missing).

    path: the file; reason: one short line saying what is wrong. str() is '<path>: <reason>'.
    """

    def __init__(self, path, reason):
        # Both go to Exception.__init__ so that pickling (e.g. from a worker process) rebuilds it.
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self):
        return f"{self.path}: {self.reason}"


@contextlib.contextmanager
def opened_image(path):
    """Open the image file at `path` (its header only; pixels are decoded on demand) for a `with` block.

    Pillow's errors, in the block too, and a size above the decompression-bomb limit raise UnreadableImage.
    path: the file (str or path-like).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                yield image
    except UnidentifiedImageError:
        raise UnreadableImage(path, "not an image format Pillow can read (or the file is empty)") from None
    except DECODE_ERRORS as err:
        raise UnreadableImage(path, _short_reason(err)) from None


def load_image(path, mode="RGB"):
    """Decode the whole image file at `path` and return it upright as a PIL image in `mode`.

    path: the file (str or path-like); mode: 'RGB' or 'L'. Raises UnreadableImage when it cannot be decoded.
    """
    with opened_image(path) as image:
        image.load()  # decode now, while the file is open
        return _to_eight_bit(ImageOps.exif_transpose(image)).convert(mode)


def _to_eight_bit(image):
    """Return `image` as 1, L, P or RGB, transparency flattened onto white and high depths scaled down."""
    if image.mode.startswith("I;16") or image.mode == "I":
        return _scale_sixteen_bit(image)
    if image.mode == "F":
        return _scale_float(image)
    if image.has_transparency_data:
        return Image.alpha_composite(Image.new("RGBA", image.size, BACKGROUND), image.convert("RGBA")).convert("RGB")
    if image.mode in ("1", "L", "P", "RGB"):
        return image
    return image.convert("RGB")


def _scale_sixteen_bit(image):
    """16-bit grey (I;16, I;16B, ... or 32-bit I holding 16-bit values) to L; a plain convert would
    saturate everything above 255 to white. A 16-bit tRNS transparency key is ignored."""
    values = np.clip(np.asarray(image).astype(np.int64), 0, SIXTEEN_BIT_MAX)
    return Image.fromarray(np.rint(values / EIGHT_BIT_SCALE).astype(np.uint8))


def _scale_float(image):
    """Float grey (F) to L. Files do not say their range, so a maximum <= 1 is read as 0..1 and
    anything else as 0..255; values outside the range are clamped, NaN counts as 0."""
    values = np.nan_to_num(np.asarray(image, dtype=np.float64))
    if values.size and values.max() <= 1.0:
        values = values * 255.0
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))


def _short_reason(err):
    """One line describing a decode error: an OS error's text without the repeated path, else the first
    line of its message, else its class name."""
    text = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
    lines = text.strip().splitlines()
    return lines[0] if lines else type(err).__name__
