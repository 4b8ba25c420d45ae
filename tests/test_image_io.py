"""Tests for data/image_io.py: every pixel kind reaches RGB/L correctly (16-bit and float ones at full depth),
bad files raise UnreadableImage."""
import builtins
import pickle
import struct
import sys
import warnings
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile, ImageOps

from data.deep_image import DeepImage
from data.image_folder import image_size
from data.image_io import UnreadableImage, load_image
from util.errors import UserError

ORIENTATION_TAG = 0x0112


def png_bytes(width, height, color_type, bit_depth, pixels, chunks=()):
    """A minimal PNG written by hand (Pillow cannot write 48-bit RGB). pixels: big-endian array, rows first;
    chunks: extra (kind, data) chunks, written before the pixels."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)  # filter type 0 on every row
    extra = b"".join(chunk(kind, data) for kind, data in chunks)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + extra + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def png_claiming(width, height):
    """A tiny PNG file whose header claims width x height RGB pixels (its pixel data is empty)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def saved(image, path, **params):
    """Save `image` to `path` (format from the extension) and return the path."""
    image.save(path, **params)
    return path


def noise_file(path):
    """A 64x64 random-noise picture saved at `path`, large enough that half the file cuts the pixel data."""
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return saved(Image.fromarray(pixels), path)


# --- conversions -------------------------------------------------------------------------------------

def test_rgb_passes_through_and_l_uses_luminance(tmp_path):
    path = saved(Image.new("RGB", (32, 32), (255, 0, 0)), tmp_path / "red.png")
    rgb = load_image(path, "RGB")
    assert (rgb.mode, rgb.size, rgb.getpixel((5, 5))) == ("RGB", (32, 32), (255, 0, 0))
    gray = load_image(path, "L")
    assert gray.mode == "L" and gray.getpixel((5, 5)) == 76  # 0.299 * 255


def test_grayscale_and_one_bit(tmp_path):
    gray = Image.new("L", (32, 32), 90)
    gray.putpixel((0, 0), 200)
    path = saved(gray, tmp_path / "gray.png")
    assert load_image(path, "L").getpixel((0, 0)) == 200
    assert load_image(path, "RGB").getpixel((1, 1)) == (90, 90, 90)

    bits = Image.new("1", (32, 32), 0)
    bits.putpixel((3, 4), 1)
    path = saved(bits, tmp_path / "bits.png")
    assert load_image(path, "L").getpixel((3, 4)) == 255
    assert load_image(path, "RGB").getpixel((0, 0)) == (0, 0, 0)


def test_rgba_is_composited_onto_white(tmp_path):
    rgba = Image.new("RGBA", (32, 32), (0, 0, 0, 0))  # fully transparent black
    rgba.putpixel((1, 1), (255, 0, 0, 255))
    rgba.putpixel((2, 2), (0, 0, 255, 128))
    path = saved(rgba, tmp_path / "rgba.png")
    image = load_image(path, "RGB")
    assert image.mode == "RGB"
    assert image.getpixel((10, 10)) == (255, 255, 255)
    assert image.getpixel((1, 1)) == (255, 0, 0)
    red, green, blue = image.getpixel((2, 2))
    assert abs(red - 127) <= 1 and abs(green - 127) <= 1 and blue == 255
    assert load_image(path, "L").getpixel((10, 10)) == 255


def test_la_is_composited_onto_white(tmp_path):
    la = Image.new("LA", (32, 32), (0, 0))
    la.putpixel((1, 1), (60, 255))
    path = saved(la, tmp_path / "la.png")
    image = load_image(path, "L")
    assert (image.mode, image.getpixel((5, 5)), image.getpixel((1, 1))) == ("L", 255, 60)
    assert load_image(path, "RGB").getpixel((1, 1)) == (60, 60, 60)


def test_palette_with_and_without_transparency(tmp_path):
    palette = Image.new("P", (32, 32), 0)
    palette.putpalette([0, 0, 0, 0, 200, 0] + [0] * (3 * 254))  # index 0 black, index 1 green
    palette.putpixel((4, 4), 1)
    plain = load_image(saved(palette, tmp_path / "plain.png"), "RGB")
    assert plain.getpixel((0, 0)) == (0, 0, 0) and plain.getpixel((4, 4)) == (0, 200, 0)

    see_through = load_image(saved(palette, tmp_path / "clear.png", transparency=0), "RGB")
    assert see_through.getpixel((0, 0)) == (255, 255, 255) and see_through.getpixel((4, 4)) == (0, 200, 0)
    gif = load_image(saved(palette, tmp_path / "clear.gif", transparency=0), "RGB")
    assert gif.getpixel((0, 0)) == (255, 255, 255) and gif.getpixel((4, 4)) == (0, 200, 0)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = saved(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), tmp_path / "cmyk.jpg")
    assert Image.open(path).mode == "CMYK"
    red, green, blue = load_image(path, "RGB").getpixel((16, 16))
    assert red >= 250 and green <= 5 and blue <= 5


def sixteen_bit_values(image):
    """The values of a loaded DeepImage on the 16-bit scale 0..65535 (exact for 16-bit files)."""
    assert isinstance(image, DeepImage)
    return np.rint(np.asarray(image, dtype=np.float64) * 65535).astype(np.int64)


@pytest.mark.parametrize("value", [0, 257, 32768, 32769, 65535])
def test_sixteen_bit_gray_png_keeps_its_full_depth(tmp_path, value):
    path = saved(Image.fromarray(np.full((32, 32), value, np.uint16)), tmp_path / "deep.png")
    assert Image.open(path).mode.startswith("I;16")
    grey = load_image(path, "L")
    assert grey.mode == "L" and grey.size == (32, 32) and (sixteen_bit_values(grey) == value).all()
    colour = load_image(path, "RGB")
    assert colour.mode == "RGB" and np.asarray(colour).shape == (32, 32, 3) and (sixteen_bit_values(colour) == value).all()


def test_sixteen_bit_big_endian_and_32_bit_int(tmp_path):
    path = saved(Image.new("I;16B", (32, 32), 32769), tmp_path / "big.tif")
    assert Image.open(path).mode == "I;16B"
    assert (sixteen_bit_values(load_image(path, "L")) == 32769).all()

    wide = Image.fromarray(np.array([[-5, 32768, 70000, 65535]] * 4, dtype=np.int32))
    path = saved(wide, tmp_path / "wide.tif")
    assert Image.open(path).mode == "I"
    assert sixteen_bit_values(load_image(path, "L"))[0].tolist() == [0, 32768, 65535, 65535]


def test_float_gray_unit_and_byte_ranges(tmp_path):
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0, 0.123456]] * 3, dtype=np.float32))
    path = saved(unit, tmp_path / "unit.tif")
    assert Image.open(path).mode == "F"
    assert np.asarray(load_image(path, "L"))[0].tolist() == pytest.approx([0.0, 0.5, 1.0, 0.123456])

    byte = Image.fromarray(np.array([[0.0, 100.4, 300.0]] * 3, dtype=np.float32))
    path = saved(byte, tmp_path / "byte.tif")
    assert np.asarray(load_image(path, "L"))[0].tolist() == pytest.approx([0.0, 100.4 / 255, 1.0])


def test_sixteen_bit_rgb_png(tmp_path):
    pixels = np.zeros((4, 6, 3), ">u2")
    pixels[...] = (65535, 32768, 0)
    pixels[0, 0] = (0, 65535, 257)
    pixels[0, 1] = (1, 2, 3)
    path = tmp_path / "deep_rgb.png"
    path.write_bytes(png_bytes(6, 4, color_type=2, bit_depth=16, pixels=pixels))
    image = load_image(path, "RGB")
    assert image.mode == "RGB" and image.size == (6, 4)
    assert (sixteen_bit_values(image) == pixels.astype(np.int64)).all()
    grey = sixteen_bit_values(load_image(path, "L"))
    assert grey[3, 2] == round(0.299 * 65535 + 0.587 * 32768) and grey[0, 1] == 2  # ITU-R 601 luminance


def test_sixteen_bit_rgb_tiff_and_ppm(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    tiff = tmp_path / "deep.tif"
    tifffile.imwrite(tiff, pixels, photometric="rgb", compression="zlib")
    ppm = tmp_path / "deep.ppm"
    ppm.write_bytes(b"P6 7 5 65535\n" + pixels.astype(">u2").tobytes())
    for path in (tiff, ppm):
        assert Image.open(path).mode == "RGB"  # Pillow itself would keep the high bytes only
        assert (sixteen_bit_values(load_image(path, "RGB")) == pixels).all(), path


def test_sixteen_bit_alpha_is_composited_onto_white(tmp_path):
    pixels = np.zeros((2, 3, 4), ">u2")
    pixels[0] = [(65535, 0, 0, 65535), (0, 0, 0, 0), (0, 0, 65535, 32768)]  # opaque red, clear, half blue
    path = tmp_path / "rgba.png"
    path.write_bytes(png_bytes(3, 2, color_type=6, bit_depth=16, pixels=pixels))
    values = np.asarray(load_image(path, "RGB"), dtype=np.float64)
    assert values[0, 0].tolist() == [1.0, 0.0, 0.0] and values[0, 1].tolist() == [1.0, 1.0, 1.0]
    assert values[0, 2] == pytest.approx([32767 / 65535, 32767 / 65535, 1.0], abs=1e-6)
    grey_alpha = np.array([[(1000, 65535), (1000, 0)]], ">u2")
    path = tmp_path / "la.png"
    path.write_bytes(png_bytes(2, 1, color_type=4, bit_depth=16, pixels=grey_alpha))
    assert sixteen_bit_values(load_image(path, "L"))[0].tolist() == [1000, 65535]


@pytest.mark.parametrize("orientation", [3, 6, 8])
@pytest.mark.parametrize("extension", ["png", "tif"])
def test_sixteen_bit_colour_is_turned_upright_as_pillow_turns_8_bit(tmp_path, extension, orientation):
    pixels = np.random.default_rng(1).integers(0, 65536, (6, 10, 3), dtype=np.uint16)
    path = tmp_path / f"turned.{extension}"
    if extension == "png":
        exif = Image.Exif()
        exif[ORIENTATION_TAG] = orientation
        path.write_bytes(png_bytes(10, 6, color_type=2, bit_depth=16, pixels=pixels.astype(">u2"),
                                   chunks=[(b"eXIf", exif.tobytes()[len(b"Exif\0\0"):])]))
    else:
        tifffile.imwrite(path, pixels, photometric="rgb", extratags=[(ORIENTATION_TAG, "H", 1, orientation, True)])
    high_bytes = np.asarray(ImageOps.exif_transpose(Image.open(path)))  # Pillow: 8 bits, upright
    assert high_bytes.shape[:2] != (6, 10) or orientation == 3
    deep = sixteen_bit_values(load_image(path, "RGB"))
    assert deep.shape == high_bytes.shape and ((deep >> 8) == high_bytes).all()


def test_truncated_sixteen_bit_colour_is_unreadable(tmp_path):
    pixels = np.random.default_rng(2).integers(0, 65536, (64, 64, 3), dtype=np.uint16).astype(">u2")
    data = png_bytes(64, 64, color_type=2, bit_depth=16, pixels=pixels)
    path = tmp_path / "cut.png"
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(UnreadableImage, match="cut.png: "):
        load_image(path, "RGB")


def test_sixteen_bit_colour_without_opencv_is_one_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "deep_rgb.png"
    path.write_bytes(png_bytes(2, 2, color_type=2, bit_depth=16, pixels=np.zeros((2, 2, 3), ">u2")))
    monkeypatch.setitem(sys.modules, "cv2", None)  # what `import cv2` meets when OpenCV is not installed
    with pytest.raises(UserError, match=r"^images with 16 bits per colour channel need OpenCV.*"
                                        r"pip install -r requirements.txt"):
        load_image(path, "RGB")


@pytest.mark.parametrize("orientation, red_corner", [(6, "top_right"), (8, "bottom_left")])
def test_exif_orientation_is_applied(tmp_path, orientation, red_corner):
    # Stored 48 wide x 32 high, red block in the stored top-left corner.
    stored = Image.new("RGB", (48, 32), (0, 0, 0))
    stored.paste((255, 0, 0), (0, 0, 16, 16))
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    path = saved(stored, tmp_path / "photo.jpg", exif=exif, quality=95)
    image = load_image(path, "RGB")
    assert image.size == (32, 48)
    corners = {"top_left": (4, 4), "top_right": (27, 4), "bottom_left": (4, 43), "bottom_right": (27, 43)}
    for name, corner in corners.items():
        red = image.getpixel(corner)[0]
        assert (red > 200) if name == red_corner else (red < 50), name


# --- unreadable files --------------------------------------------------------------------------------

@pytest.mark.parametrize("extension", ["jpg", "png"])
def test_truncated_file_raises(tmp_path, extension):
    path = noise_file(tmp_path / f"noise.{extension}")
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(UnreadableImage) as caught:
        load_image(path, "RGB")
    assert caught.value.path == path and str(caught.value).startswith(f"{path}: ")
    assert "truncated" in caught.value.reason and "\n" not in caught.value.reason
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("content", [b"", b"this is a text file, not a picture\n"], ids=["empty", "text"])
def test_non_image_raises(tmp_path, content):
    path = tmp_path / "fake.png"
    path.write_bytes(content)
    with pytest.raises(UnreadableImage, match="fake.png: not an image format"):
        load_image(path, "RGB")


def test_missing_file_raises_with_a_one_line_reason(tmp_path):
    path = tmp_path / "gone.png"
    with pytest.raises(UnreadableImage) as caught:
        load_image(path, "L")
    assert str(caught.value) == f"{path}: No such file or directory"


# Pillow warns between its pixel limit and twice the limit, and refuses above: both are unreadable.
@pytest.mark.parametrize("width, height", [(100_000, 100_000), (10_000, 10_000)], ids=["refused", "warned"])
def test_a_decompression_bomb_is_unreadable_without_a_warning(tmp_path, width, height):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(width, height))
    assert path.stat().st_size < 100
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for read in (lambda: load_image(path, "RGB"), lambda: image_size(path)):
            with pytest.raises(UnreadableImage, match=r"bomb.png: Image size \(\d+ pixels\) exceeds limit"):
                read()
    assert not caught


def test_pillows_pixel_limit_decides_what_is_a_bomb(tmp_path, monkeypatch):
    small, large = noise_file(tmp_path / "small.png"), noise_file(tmp_path / "large.png")
    Image.open(small).resize((10, 12)).save(small)  # 120 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64x64 = 4096 pixels: refused; 120: warned
    for path in (small, large):
        with pytest.raises(UnreadableImage, match="exceeds limit of"):
            load_image(path, "RGB")
    monkeypatch.undo()
    assert load_image(small, "RGB").size == (10, 12) and image_size(large) == (64, 64)


def test_exception_pickles_and_is_a_user_error():
    error = UnreadableImage("/data/a.png", "image file is truncated")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is UnreadableImage and isinstance(copy, UserError)
    assert (copy.path, copy.reason, str(copy)) == ("/data/a.png", "image file is truncated",
                                                    "/data/a.png: image file is truncated")


# --- file handles ------------------------------------------------------------------------------------

def test_file_is_closed_after_success_and_failure(tmp_path, monkeypatch):
    good = noise_file(tmp_path / "good.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(good.read_bytes()[:3000])
    opened = []
    real_open = builtins.open

    def recording_open(*args, **kwargs):
        handle = real_open(*args, **kwargs)
        opened.append(handle)
        return handle

    monkeypatch.setattr(builtins, "open", recording_open)
    image = load_image(good, "RGB")
    with pytest.raises(UnreadableImage):
        load_image(bad, "RGB")
    monkeypatch.undo()
    assert len(opened) == 2 and all(handle.closed for handle in opened)
    good.unlink()  # the pixels were read fully, so the image outlives its file
    assert image.resize((8, 8)).size == (8, 8)
