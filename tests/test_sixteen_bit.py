"""16-bit images end to end: read at full depth through every dataset's preprocessing, written as 16-bit
PNGs by test.py --output_bits 16 (read back unchanged), and scored by the metrics as 8-bit images are."""
import json
import math

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from test_data import make_opt
from test_image_io import png_bytes

from conftest import run_script
from data.aligned_dataset import AlignedDataset
from data.colorization_dataset import ColorizationDataset
from data.image_io import load_image
from data.single_dataset import SingleDataset
from data.unaligned_dataset import UnalignedDataset
from engine.html import write_result_images
from models.generators import define_G

WIDTH, HEIGHT = 40, 36
EIGHT_BIT_STEP = 257  # 16-bit values a, a + 1, ..., a + 256 share at most two 8-bit values


def ramp(channels, start=20000, seed=0):
    """A uint16 HEIGHTxWIDTH(xchannels) picture of neighbouring 16-bit values (start + 0..WIDTH*HEIGHT-1,
    shuffled): 8 bits would merge them into a handful of levels."""
    values = start + np.random.default_rng(seed).permutation(WIDTH * HEIGHT).reshape(HEIGHT, WIDTH)
    values = values if channels == 1 else np.stack([values, values + 3000, values + 6000], axis=-1)
    return values.astype(np.uint16)


def write_sixteen_bit(path, pixels):
    """Write a uint16 HxW (grey) or HxWx3 (RGB) array as a 16-bit PNG or TIFF (by the path's extension),
    with writers other than the reader's (Pillow for grey PNG and TIFF, by hand for RGB PNG, tifffile for
    RGB TIFF); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if pixels.ndim == 2:
        Image.fromarray(pixels).save(path)
    elif path.suffix == ".png":
        height, width = pixels.shape[:2]
        path.write_bytes(png_bytes(width, height, color_type=2, bit_depth=16, pixels=pixels.astype(">u2")))
    else:
        tifffile.imwrite(path, pixels, photometric="rgb")
    return path


def signed(pixels):
    """A uint16 HxW(x3) picture as the CxHxW tensor in [-1, 1] that the networks see."""
    unit = torch.from_numpy(np.atleast_3d(pixels).astype(np.float64) / 65535).permute(2, 0, 1)
    return (unit * 2 - 1).float()


@pytest.mark.parametrize("channels", [1, 3], ids=["grey", "rgb"])
@pytest.mark.parametrize("extension", ["png", "tif"])
def test_test_images_reach_the_network_at_full_depth(tmp_path, extension, channels):
    pixels = ramp(channels)
    write_sixteen_bit(tmp_path / "single" / f"deep.{extension}", pixels)
    opt = make_opt(tmp_path / "single", preprocess="none", isTrain=False, no_flip=True, input_nc=channels)
    tensor = SingleDataset(opt)[0]["A"]
    assert tensor.shape == (channels, HEIGHT, WIDTH)
    assert torch.allclose(tensor, signed(pixels), atol=1e-6)
    assert len(torch.unique(tensor)) == len(np.unique(pixels))  # 8 bits would leave about 3 * 6 levels


@pytest.mark.parametrize("preprocess", ["resize_and_crop", "scale_width_and_crop"])
def test_training_transforms_keep_the_depth_and_match_the_8_bit_geometry(tmp_path, preprocess):
    """Resize, crop and flip act on a 16-bit picture as on its 8-bit version (same item seed: same crop
    and flip), and the result keeps the in-between values that the 8-bit version cannot hold."""
    coarse = np.random.default_rng(3).integers(0, 256, (5, 5, 3), dtype=np.uint8)
    eight_bit = np.asarray(Image.fromarray(coarse).resize((WIDTH, HEIGHT), Image.BICUBIC))  # smooth: no clipping
    low_bits = np.random.default_rng(4).integers(-100, 101, eight_bit.shape)  # what 8 bits do not hold
    deep = np.clip(eight_bit.astype(np.int64) * EIGHT_BIT_STEP + low_bits, 0, 65535).astype(np.uint16)
    for domain in "AB":
        write_sixteen_bit(tmp_path / "deep" / f"train{domain}" / "x.png", deep)
        (tmp_path / "shallow" / f"train{domain}").mkdir(parents=True)
        Image.fromarray(eight_bit).save(tmp_path / "shallow" / f"train{domain}" / "x.png")
    options = dict(preprocess=preprocess, load_size=44, crop_size=32)
    deep_set = UnalignedDataset(make_opt(tmp_path / "deep", **options))
    shallow_set = UnalignedDataset(make_opt(tmp_path / "shallow", **options))
    for seed in range(4):
        deep_item, shallow_item = deep_set[(0, seed)], shallow_set[(0, seed)]
        assert deep_item["A_params"] == shallow_item["A_params"]
        assert deep_item["A"].shape == shallow_item["A"].shape == (3, 32, 32)
        assert (deep_item["A"] - shallow_item["A"]).abs().max() < 3 / 255  # the low bits, and 8-bit rounding
        in_between = (deep_item["A"] + 1) / 2 * 255
        assert (in_between - in_between.round()).abs().max() > 0.1  # not multiples of 1/255


def test_aligned_and_colorization_data_read_full_depth(tmp_path):
    pair = np.concatenate([ramp(3, seed=1), ramp(3, start=40000, seed=2)], axis=1)
    write_sixteen_bit(tmp_path / "test" / "pair.tif", pair)
    item = AlignedDataset(make_opt(tmp_path, phase="test", preprocess="none", isTrain=False, no_flip=True))[0]
    assert torch.allclose(item["A"], signed(pair[:, :WIDTH]), atol=1e-6)
    assert torch.allclose(item["B"], signed(pair[:, WIDTH:]), atol=1e-6)

    colour = ColorizationDataset(make_opt(tmp_path, phase="test", preprocess="none", isTrain=False, no_flip=True,
                                          input_nc=1, output_nc=2, dataset_mode="colorization"))[0]
    assert len(torch.unique(colour["A"])) > 256  # lightness from the 16-bit colours, not from 8-bit ones


@pytest.mark.parametrize("channels", [1, 3])
def test_result_images_round_trip_at_16_bits(tmp_path, channels):
    tensor = torch.rand(channels, 20, 24, generator=torch.Generator().manual_seed(0)) * 2 - 1
    (tmp_path / "images").mkdir()  # the page is in tmp_path, its pictures in images/
    name, rel_paths, labels = write_result_images(tmp_path / "images", {"fake": tensor}, "in/x.png", bits=16)
    path = tmp_path / rel_paths[0]
    assert (name, path.name, labels) == ("x", "x_fake.png", ["fake"])
    with Image.open(path) as image:
        assert image.format == "PNG" and (image.mode.startswith("I;16") if channels == 1 else image.mode == "RGB")
    back = np.atleast_3d(np.asarray(load_image(path, "L" if channels == 1 else "RGB")))
    assert np.abs(back * 2 - 1 - tensor.permute(1, 2, 0).numpy()).max() <= 1 / 65535 + 1e-6  # one rounding

    _, stretched, _ = write_result_images(tmp_path / "images", {"wide": tensor}, "x.png", aspect_ratio=2.0, bits=16)
    wide = np.asarray(load_image(tmp_path / stretched[0], "RGB"))
    assert wide.shape[:2] == (20, 48) and len(np.unique(wide)) > 256


def test_test_py_writes_16_bit_results_and_scores_16_bit_inputs(tmp_path):
    """A tiny generator over 16-bit PNG and TIFF inputs: the real_* results hold the inputs' 16-bit values
    unchanged, the outputs use all 16 bits, the page shows them, and the do-nothing baseline of the
    metrics is what the 8-bit arithmetic gives (truths = inputs + 5 * 257)."""
    inputs = {"a.png": ramp(3, seed=5), "b.tif": ramp(3, seed=6)}
    for file_name, pixels in inputs.items():
        write_sixteen_bit(tmp_path / "in" / file_name, pixels)
        write_sixteen_bit(tmp_path / "truth" / file_name, pixels + 5 * EIGHT_BIT_STEP)
    (tmp_path / "ck" / "tiny").mkdir(parents=True)
    torch.save(define_G(3, 3, 8, "resnet_6blocks", norm="instance").state_dict(),
               tmp_path / "ck" / "tiny" / "latest_net_G.pth")
    result = run_script("test.py", "--dataroot", tmp_path / "in", "--name", "tiny", "--model", "test",
                        "--netG", "resnet_6blocks", "--ngf", "8", "--no_dropout", "--preprocess", "none",
                        "--checkpoints_dir", tmp_path / "ck", "--results_dir", tmp_path / "results",
                        "--num_threads", "0", "--gpu_ids", "-1", "--output_bits", "16",
                        "--metrics", "psnr,l1", "--metrics_reference", tmp_path / "truth", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "results" / "tiny" / "test_latest"
    for stem, pixels in (("a", inputs["a.png"]), ("b", inputs["b.tif"])):
        real = np.rint(np.asarray(load_image(out / "images" / f"{stem}_real.png", "RGB"), np.float64) * 65535)
        assert (real == pixels).all()
        fake = np.rint(np.asarray(load_image(out / "images" / f"{stem}_fake.png", "RGB"), np.float64) * 65535)
        assert fake.shape == pixels.shape and len(np.unique(fake % EIGHT_BIT_STEP)) > 100
    page = (out / "index.html").read_text()
    assert 'src="images/a_fake.png"' in page and 'src="images/b_real.png"' in page
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics["l1"]["fake vs reference"]["input_unchanged"] == pytest.approx(5 / 255, abs=1e-6)
    assert metrics["psnr"]["fake vs reference"]["input_unchanged"] == pytest.approx(20 * math.log10(255 / 5), abs=1e-3)
