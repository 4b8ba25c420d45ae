"""Reading one image file into a picture of the mode a dataset wants ('RGB' or 'L'), at the file's full depth.

`load_image` decodes the whole file (a truncated or corrupt file raises `UnreadableImage` instead of
coming back half grey), turns the picture upright by its EXIF orientation, and brings every pixel kind
to 'RGB' or 'L' without losing its meaning. 8-bit kinds become PIL images:
  1, L, P, RGB         converted directly (RGB -> L uses the ITU-R 601 luminance)
  alpha or tRNS key    composited onto white (RGBA, LA, PA, P/L/RGB with a transparency entry)
  CMYK, YCbCr, ...     through Pillow's RGB conversion
Deeper kinds become a DeepImage (data/deep_image.py), values in [0, 1] at full precision, so that
neighbouring 16-bit values stay distinct all the way to the network's input:
  I;16*, I             16-bit grey: value / 65535 (I is clamped to 0..65535 first; a tRNS key is ignored)
  F                    float grey: 0..1 when its maximum is <= 1, else 0..255; clamped
  16-bit RGB(A), LA    PNG, TIFF, PPM: Pillow would keep only their high bytes, so OpenCV decodes them;
                       alpha is composited onto white
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

from data.deep_image import DeepImage
from util.errors import UserError
from util.util import SIXTEEN_BIT_MAX, import_opencv

# What Pillow raises for files it cannot open or decode; it has no single base class for them. Its
# decompression-bomb warning is turned into an error while a file is open (see opened_image).
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, Image.DecompressionBombError,
                 Image.DecompressionBombWarning)
# Transparent pixels are composited onto this colour: their hidden colour values are arbitrary (often
# black, left over from the editor), so dropping alpha would paint see-through regions with junk.
BACKGROUND = (255, 255, 255, 255)
ORIENTATION_TAG = 0x0112
# How EXIF orientations 2..8 turn a stored picture upright (the EXIF standard's table; 1 = as stored).
EXIF_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
                  5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                  8: Image.Transpose.ROTATE_90}


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
    """Decode the whole image file at `path` and return it upright in `mode`: a PIL image for 8-bit
    files, a DeepImage for deeper ones (see the module docstring).

    path: the file (str or path-like); mode: 'RGB' or 'L'. Raises UnreadableImage when it cannot be decoded.
    """
    with opened_image(path) as image:
        if _holds_sixteen_bit_colour(image):
            return _load_sixteen_bit_colour(path, image).convert(mode)
        image.load()  # decode now, while the file is open
        return _to_rgb_or_grey(ImageOps.exif_transpose(image)).convert(mode)


def _to_rgb_or_grey(image):
    """`image` as 1, L, P or RGB (8 bits, transparency flattened onto white), or a DeepImage for the
    deep grey kinds I;16*, I and F."""
    if image.mode.startswith("I;16") or image.mode == "I":
        return DeepImage.from_array(np.clip(np.asarray(image).astype(np.float32), 0, SIXTEEN_BIT_MAX) / SIXTEEN_BIT_MAX)
    if image.mode == "F":
        return _float_grey(image)
    if image.has_transparency_data:
        return _onto_white(image.convert("RGBA"))
    if image.mode in ("1", "L", "P", "RGB"):
        return image
    return image.convert("RGB")


def _onto_white(image):
    """An 8-bit RGBA image composited onto white, as RGB."""
    return Image.alpha_composite(Image.new("RGBA", image.size, BACKGROUND), image).convert("RGB")


def _float_grey(image):
    """Float grey (F) in [0, 1]. Files do not say their range, so a maximum <= 1 is read as 0..1 and
    anything else as 0..255; values outside the range are clamped, NaN counts as 0."""
    values = np.nan_to_num(np.asarray(image, dtype=np.float64))
    if values.size and values.max() > 1.0:
        values = values / 255.0
    return DeepImage.from_array(np.clip(values, 0.0, 1.0))


def _holds_sixteen_bit_colour(image):
    """Whether the opened (not yet decoded) `image` has 16-bit colour or grey-and-alpha pixels, which
    Pillow decodes to 8 bits (PNG and TIFF say so in their raw mode, e.g. 'RGB;16B'; PPM in its maximum
    value). Pillow's own 16-bit kinds (I;16*) are grey without alpha."""
    if image.mode not in ("RGB", "RGBA", "LA") or not image.tile:
        return False
    args = image.tile[0].args
    raw_mode, rest = (args, ()) if isinstance(args, str) else (args[0], args[1:])
    if image.format == "PPM":
        return bool(rest) and isinstance(rest[0], int) and rest[0] > 255
    return ";16" in str(raw_mode)


def _load_sixteen_bit_colour(path, image):
    """The 16-bit colour file at `path` (opened as `image` for its header) as an upright RGB DeepImage,
    alpha composited onto white. OpenCV decodes it: it keeps all 16 bits of every channel."""
    try:
        with open(path, "rb") as handle:
            encoded = handle.read()
    except OSError as err:
        raise UnreadableImage(path, _short_reason(err)) from None
    pixels = _opencv_decode(path, np.frombuffer(encoded, dtype=np.uint8))
    rgb_order = [2, 1, 0, *range(3, pixels.shape[2])]  # OpenCV's BGR(A)
    values = pixels[..., rgb_order].astype(np.float32) / np.iinfo(pixels.dtype).max
    if values.shape[2] == 4:
        colour, alpha = values[..., :3], values[..., 3:]
        values = colour * alpha + (1.0 - alpha)  # onto white
    picture = DeepImage.from_array(values)
    # OpenCV turns TIFFs upright itself (by their Orientation tag) but leaves PNGs as stored; PPMs have no
    # EXIF. Pillow reads a PNG's EXIF by decoding the whole picture once more, so only a PNG that holds an
    # eXIf chunk is asked.
    if image.format == "PNG" and b"eXIf" in encoded:
        method = EXIF_TRANSPOSE.get(image.getexif().get(ORIENTATION_TAG))
        picture = picture if method is None else picture.transpose(method)
    return picture


def _opencv_decode(path, encoded):
    """The pixels of the image file at `path`, whose bytes are `encoded` (a uint8 array), as OpenCV
    decodes them unchanged: an HxWx3 or HxWx4 array of the file's integer type, channels in BGR(A) order."""
    cv2 = import_opencv("images with 16 bits per colour channel")
    pixels = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.dtype.kind != "u":
        raise UnreadableImage(path, "its 16-bit pixels cannot be decoded (truncated or corrupt file)")
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise UnreadableImage(path, f"its 16-bit pixels decode to shape {pixels.shape}, not a layout this tool "
                                    "reads; save it as 16-bit RGB, RGBA or grey")
    return pixels


def _short_reason(err):
    """One line describing a decode error: an OS error's text without the repeated path, else the first
    line of its message, else its class name."""
    text = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
    lines = text.strip().splitlines()
    return lines[0] if lines else type(err).__name__
