"""The colorization model and dataset mode of the original tool: Lab conversion, items, options, a tiny run."""
import argparse
import re
import subprocess
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO_ROOT, run_script, write_images
from data.colorization_dataset import ColorizationDataset
from models import create_model
from options.test_options import TestOptions
from options.train_options import TrainOptions
from util.errors import UserError
from util.lab_color import lab_tensors_to_rgb, rgb_to_lab_tensors

LABELS = ["real_A", "real_B_rgb", "fake_B_rgb"]  # the original's visual names, in its order
TINY = ["--netG", "resnet_6blocks", "--ngf", "8", "--ndf", "8", "--gpu_ids", "-1", "--num_threads", "0"]


def cube_and_random_colours():
    """An RGB picture holding the 8 corners of the RGB cube and 56 random colours (8x8 pixels)."""
    corners = np.array([[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)], np.uint8)
    rest = np.random.default_rng(0).integers(0, 256, size=(56, 3), dtype=np.uint8)
    return np.concatenate([corners, rest]).reshape(8, 8, 3)


def test_lab_round_trip_and_ranges():
    picture = cube_and_random_colours()
    lightness, ab = rgb_to_lab_tensors(picture)
    assert lightness.shape == (1, 8, 8) and ab.shape == (2, 8, 8) and lightness.dtype == torch.float32
    assert lightness.min() >= -1.0 and lightness.max() <= 1.0 and ab.abs().max() <= 1.0
    assert lightness.min() < -0.99 and lightness.max() > 0.99  # black and white reach both ends
    red = (lightness[0, 0, 4].item(), ab[0, 0, 4].item(), ab[1, 0, 4].item())  # pixel 4 is (255, 0, 0)
    assert red == pytest.approx((53.24 / 50 - 1, 80.09 / 110, 67.20 / 110), abs=1e-3)  # the original's scaling
    rgb = lab_tensors_to_rgb(lightness[None], ab[None])
    assert rgb.shape == (1, 3, 8, 8) and rgb.dtype == torch.float32
    back = ((rgb[0].permute(1, 2, 0) + 1.0) / 2.0 * 255.0).numpy()
    assert np.abs(back - picture).max() < 0.05  # float32 storage, then the exact inverse


def test_grey_has_no_colour_and_generated_colours_outside_srgb_are_clipped_quietly():
    grey = np.repeat(np.arange(0, 256, 4, dtype=np.uint8).reshape(8, 8, 1), 3, axis=2)
    assert rgb_to_lab_tensors(grey)[1].abs().max() < 1e-3
    lightness = torch.linspace(-1, 1, 16).reshape(1, 1, 4, 4)
    ab = torch.stack([torch.ones(4, 4), -torch.ones(4, 4)])[None]  # far outside the sRGB gamut
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb = lab_tensors_to_rgb(lightness, ab)
    assert rgb.min() >= -1.0 and rgb.max() <= 1.0


def dataset_opt(root, **overrides):
    values = dict(dataroot=str(root), phase="train", direction="AtoB", input_nc=1, output_nc=2,
                  preprocess="resize_and_crop", load_size=36, crop_size=32, no_flip=False, isTrain=True,
                  max_dataset_size=float("inf"))
    values.update(overrides)
    return argparse.Namespace(**values)


def test_dataset_items_are_l_and_ab_of_the_transformed_picture(tmp_path):
    paths = write_images(tmp_path / "train", 2, size=(40, 36))
    dataset = ColorizationDataset(dataset_opt(tmp_path))
    item = dataset[(1, 7)]
    assert len(dataset) == 2 and set(item) == {"A", "B", "A_paths", "B_paths"}
    assert item["A"].shape == (1, 32, 32) and item["B"].shape == (2, 32, 32)
    assert item["A_paths"] == item["B_paths"] == str(paths[1])
    assert torch.equal(item["A"], dataset[(1, 7)]["A"])  # the item seed decides crop and flip
    untouched = ColorizationDataset(dataset_opt(tmp_path, preprocess="none", isTrain=False, no_flip=True))[0]
    lightness, ab = rgb_to_lab_tensors(Image.open(paths[0]).convert("RGB"))
    assert torch.equal(untouched["A"], lightness) and torch.equal(untouched["B"], ab)


@pytest.mark.parametrize("overrides", [dict(input_nc=3), dict(output_nc=3), dict(direction="BtoA")])
def test_dataset_refuses_other_channel_layouts(tmp_path, overrides):
    write_images(tmp_path / "train", 1)
    with pytest.raises(UserError, match=r"--dataset_mode colorization .*--input_nc 1 --output_nc 2 --direction AtoB"):
        ColorizationDataset(dataset_opt(tmp_path, **overrides))


def test_options_default_to_the_originals_layout(tmp_path):
    common = ["--dataroot", str(tmp_path), "--checkpoints_dir", str(tmp_path / "ck"), "--model", "colorization"]
    for options in (TrainOptions(), TestOptions()):
        opt = options.parse(common)
        assert (opt.dataset_mode, opt.input_nc, opt.output_nc, opt.direction, opt.netG, opt.norm) == \
            ("colorization", 1, 2, "AtoB", "unet_256", "batch")


def test_model_refuses_data_that_is_not_lab(tmp_path):
    opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--checkpoints_dir", str(tmp_path / "ck"),
                                "--model", "colorization", "--dataset_mode", "aligned", *TINY])
    with pytest.raises(UserError, match=r"--model colorization .*not --input_nc 3 --output_nc 3"):
        create_model(opt)


def test_download_script_knows_mini_colorization():
    result = subprocess.run(["bash", str(REPO_ROOT / "datasets/download_cyclegan_dataset.sh"), "--help"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "mini_colorization" in result.stdout.split()


def page_images(page):
    return re.findall(r'<img[^>]*src="([^"]+)"', page.read_text(encoding="utf-8"))


def test_train_then_test_shows_colour_pictures(tmp_path):
    root = tmp_path / "colour"
    write_images(root / "train", 2, seed=1)
    paths = write_images(root / "test", 2, seed=2)
    common = ["--dataroot", root, "--name", "col", "--model", "colorization", "--checkpoints_dir", tmp_path / "ck"]
    result = run_script("train.py", *common, *TINY, "--load_size", "36", "--crop_size", "32",
                        "--n_epochs", "1", "--n_epochs_decay", "0", "--display_id", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    web = tmp_path / "ck" / "col" / "web"
    assert [src for src in page_images(web / "index.html") if "epoch" in src] == \
        [f"images/epoch001_{label}.png" for label in LABELS]

    # No architecture flags: --netG, --ngf and the channel counts come from train_opt.txt.
    result = run_script("test.py", *common, "--results_dir", tmp_path / "results", "--crop_size", "32",
                        "--gpu_ids", "-1", "--num_threads", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "results" / "col" / "test_latest"
    assert page_images(out / "index.html") == [f"images/img_{i:03d}_{label}.png" for i in range(2) for label in LABELS]
    pictures = {label: np.asarray(Image.open(out / "images" / f"img_000_{label}.png")) for label in LABELS}
    assert all(picture.shape == (32, 32, 3) for picture in pictures.values())
    grey = pictures["real_A"]
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    source = np.asarray(Image.open(paths[0]).convert("RGB").resize((32, 32), Image.BICUBIC), dtype=int)
    assert np.abs(pictures["real_B_rgb"].astype(int) - source).max() <= 1  # the true colours, back in RGB
