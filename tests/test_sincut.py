"""`--model sincut` as a user runs it: one picture per domain trained with train.py (the official
defaults, the R1 and identity losses), both whole pictures translated by test.py, a killed run resumed
bit-identically, --amp bf16 and --compile, an official weights file tested and exported, and the
zoom-and-patch augmentation of its dataset."""
import contextlib
import functools
import io
import os
import random
import re
import signal
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from test_stylegan2_networks import OFFICIAL_SINCUT_G

from conftest import (
    REPO_ROOT,
    assert_identical,
    run_script,
    start_process,
    training_model,
    unchanged_after_a_step,
    wait_for_stall,
    write_images,
)
from data.base_dataset import zoom_and_patch
from data.singleimage_dataset import SingleImageDataset
from models.stylegan2_networks import define_stylegan2_G
from options.test_options import TestOptions
from options.train_options import TrainOptions

TINY = ["--model", "sincut", "--ngf", "2", "--ndf", "2", "--netF_nc", "8", "--crop_size", "16", "--batch_size", "4",
        "--max_dataset_size", "8", "--gpu_ids", "-1", "--display_id", "0", "--num_threads", "0", "--print_freq", "4",
        "--seed", "3"]
# 2 epochs of 2 batches of 4 patches, a save after every batch.
RUN = [*TINY, "--n_epochs", "1", "--n_epochs_decay", "1", "--deterministic", "--save_latest_freq", "4"]
PICTURE_SIZES = {"A": (60, 44), "B": (50, 70)}


def train_args(top, name):
    return ["--dataroot", top / "data", "--name", name, "--checkpoints_dir", top / "ck", *RUN]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One picture per domain, and the finished run `sincut`."""
    top = tmp_path_factory.mktemp("sincut")
    for seed, (domain, size) in enumerate(PICTURE_SIZES.items()):
        write_images(top / "data" / f"train{domain}", 1, size=size, seed=seed, prefix=domain.lower())
    result = run_script("train.py", *train_args(top, "sincut"), cwd=top)
    assert result.returncode == 0, result.stderr[-3000:]
    return top, result.stdout


def test_the_official_defaults():
    with contextlib.redirect_stdout(io.StringIO()):
        train = TrainOptions().parse(["--dataroot", ".", "--model", "sincut"])
        test = TestOptions().parse(["--dataroot", ".", "--model", "sincut"])
    expected = dict(dataset_mode="singleimage", netG="stylegan2", netD="stylegan2", stylegan2_G_num_downsampling=1,
                    ngf=10, ndf=8, load_size=1024, crop_size=64, gan_mode="nonsaturating", num_patches=1,
                    nce_layers="0,2,4", lambda_NCE=4.0, nce_includes_all_negatives_from_minibatch=True, nce_idt=True,
                    lambda_R1=1.0, lambda_identity=1.0, lr=0.002, beta1=0.0, beta2=0.99, preprocess="zoom_and_patch",
                    batch_size=16, save_epoch_freq=1, save_latest_freq=20000, n_epochs=8, n_epochs_decay=8,
                    random_scale_max=3.0, pool_size=0)
    assert {key: getattr(train, key) for key in expected} == expected
    assert (test.preprocess, test.batch_size, test.num_test, test.netG, test.crop_size) == ("none", 1, 1, "stylegan2",
                                                                                           64)
    with contextlib.redirect_stdout(io.StringIO()):  # sincut's own values give way to the mode's only where it has none
        fast = TrainOptions().parse(["--dataroot", ".", "--model", "sincut", "--CUT_mode", "FastCUT"])
    assert (fast.lambda_NCE, fast.n_epochs, fast.nce_idt, fast.flip_equivariance) == (4.0, 8, False, True)


def test_sincut_trains_on_patches_and_translates_the_whole_pictures(finished):
    top, out = finished
    assert re.search(r"\[Network D\] .*receptive field 16x16 pixels", out)
    assert re.search(r"^\(epoch: 1, iters: 4, .*\) G_GAN: \S+ D_real: \S+ D_fake: \S+ G: \S+ NCE: \S+ NCE_Y: \S+ "
                     r"D_R1: \S+ idt: \S+$", out, re.MULTILINE)
    translated = []
    for run in ("first", "again"):
        result = run_script("test.py", "--model", "sincut", "--dataroot", top / "data", "--name", "sincut",
                            "--checkpoints_dir", top / "ck", "--results_dir", top / run, "--seed", "5", cwd=top)
        assert result.returncode == 0, result.stderr[-3000:]
        # The generator's widths come from the training's --crop_size 16, not the test's default 64.
        assert "--load_size 1024 --crop_size 16 (for the generator's widths)" in result.stderr + result.stdout
        images = top / run / "sincut" / "test_latest" / "images"
        assert sorted(os.listdir(images)) == ["a_000_fake_B.png", "a_000_real_A.png", "a_000_real_B.png"]
        translated.append(Image.open(images / "a_000_fake_B.png"))
        assert Image.open(images / "a_000_real_B.png").size == PICTURE_SIZES["B"]
    assert translated[0].size == PICTURE_SIZES["A"]
    # The noise injection draws from torch's generator, in a fixed order with one lane: --seed fixes it.
    assert np.array_equal(np.asarray(translated[0]), np.asarray(translated[1]))


def test_a_killed_sincut_run_resumes_bit_identically(finished, tmp_path):
    # Killed once its fourth save is complete (the first batch of epoch 2; the end of epoch 1 saves
    # twice), then resumed: the same
    # weights, optimiser moments, noise and patch draws, and position as the run that never stopped.
    top, _ = finished
    process = start_process([sys.executable, REPO_ROOT / "train.py", *train_args(top, "killed")], tmp_path,
                            stall_at=",".join(["after:latest_state.pth"] * 4))
    wait_for_stall(process)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    assert torch.load(top / "ck" / "killed" / "latest_state.pth", weights_only=True)["progress"]["total_iters"] == 12
    resumed = run_script("train.py", *train_args(top, "killed"), "--continue_train", cwd=top)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    straight, killed = (torch.load(top / "ck" / name / "latest_state.pth", weights_only=True)
                        for name in ("sincut", "killed"))
    for part in ("model", "progress", "data", "rng"):
        assert_identical(straight[part], killed[part], part)


@pytest.mark.parametrize("flags", [["--amp", "bf16", "--channels_last"], ["--compile"]], ids=["bf16", "compile"])
def test_bf16_and_compile_train_every_weight(tmp_path, monkeypatch, flags):
    # aot_eager traces the graphs as inductor would, without minutes of C++ compilation (see test_cut.py).
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    model = training_model(tmp_path, "--model", "sincut", "--ngf", "2", "--ndf", "2", "--netF_nc", "8",
                           "--crop_size", "32", "--gpu_ids", "-1", *flags)
    assert unchanged_after_a_step(model) == []
    assert bool(model.losses_finite()) and model.loss_D_R1 > 0 and model.loss_idt > 0


def coordinates_picture(width, height):
    """R = x and G = y of each pixel: a patch tells where it was cut and how it was scaled."""
    y, x = np.mgrid[0:height, 0:width]
    return Image.fromarray(np.stack([x, y, np.zeros_like(x)], -1).astype(np.uint8))


def patch_coordinates(tensor):
    """The (x, y) planes of a patch of coordinates_picture, as numbers."""
    return ((tensor[:2] + 1) / 2 * 255).round().numpy()


def options(**values):
    defaults = dict(crop_size=16, random_scale_max=1.0, no_flip=True)
    return type("Options", (), {**defaults, **values})()


def test_zoom_and_patch_cuts_a_grid_cell_of_the_zoomed_picture():
    picture = coordinates_picture(100, 70)
    corners = set()
    for seed in range(60):
        x, y = patch_coordinates(zoom_and_patch(picture, options(), random.Random(seed)))
        # No zoom: an exact 16 px crop, its corner on a grid of 16 px cells shifted by at most the
        # leftover pixels (100 - 6 * 16 = 4 across, 70 - 4 * 16 = 6 down).
        left, top = x[0, 0], y[0, 0]
        assert np.array_equal(x, left + np.arange(16)[None, :].repeat(16, 0)) and np.array_equal(y.T, x - left + top)
        assert left % 16 <= 4 and top % 16 <= 6 and left + 16 <= 100 and top + 16 <= 70
        corners.add((left // 16, top // 16))
    assert len(corners) > 12  # many of the 24 cells
    assert torch.equal(zoom_and_patch(picture, options(), random.Random(7)),
                       zoom_and_patch(picture, options(), random.Random(7)))
    spans, mirrored = [], 0
    for seed in range(60):
        x, _ = patch_coordinates(zoom_and_patch(picture, options(random_scale_max=3.0, no_flip=False), random.Random(seed)))
        span = x[8, -1] - x[8, 0]  # 15 px of the zoomed picture: 15 / zoom px of the original
        mirrored += span < 0
        spans.append(abs(span))
    assert 0 < mirrored < 60 and min(spans) >= 15 - 1 and max(spans) <= 45 + 1 and max(spans) - min(spans) > 10
    # A picture smaller than a patch is enlarged to one.
    assert zoom_and_patch(coordinates_picture(10, 40), options(), random.Random(0)).shape == (3, 16, 16)


def test_the_dataset_is_patches_of_the_one_picture_per_domain(tmp_path):
    for domain, size in PICTURE_SIZES.items():
        write_images(tmp_path / f"train{domain}", 1, size=size)
    with contextlib.redirect_stdout(io.StringIO()):
        train = TrainOptions().parse(["--dataroot", str(tmp_path), "--model", "sincut", "--crop_size", "16"])
        test = TestOptions().parse(["--dataroot", str(tmp_path), "--model", "sincut"])
    dataset = SingleImageDataset(train)
    assert len(dataset) == 100_000 and len(SingleImageDataset(test)) == 1
    train.max_dataset_size = 8
    assert len(dataset) == 8
    item = dataset[(5, 11)]
    assert item["A"].shape == item["B"].shape == (3, 16, 16) and item["A_paths"].endswith("img_000.png")
    assert torch.equal(dataset[(5, 11)]["B"], item["B"])  # an item is a function of its key
    whole = SingleImageDataset(test)[0]
    assert whole["A"].shape == (3, 44, 60) and whole["B"].shape == (3, 70, 50)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_an_official_weights_file_alone_tests_and_exports_with_the_sincut_defaults(finished):
    # The official code's files hold no train_opt.txt of ours: --model sincut's defaults (ngf 10, 64 px
    # widths, one halving) must build its generator. The file has the official names and shapes (random
    # weights; the blur kernels are constants of the layers, not learnt).
    pytest.importorskip("onnxruntime")
    top, _ = finished
    folder = top / "ck" / "official"
    folder.mkdir()
    kernels = define_stylegan2_G(3, 3, 10, "stylegan2", 64, 1).state_dict()
    official = {key: kernels[key] if key.endswith(".kernel") else torch.randn(shape) * 0.1
                for key, shape in OFFICIAL_SINCUT_G}
    torch.save(official, folder / "latest_net_G.pth")
    result = run_script("test.py", "--model", "sincut", "--dataroot", top / "data", "--name", "official",
                        "--checkpoints_dir", top / "ck", "--results_dir", top / "official", cwd=top)
    assert result.returncode == 0, result.stderr[-3000:]
    exported = run_script("scripts/export.py", "--model", "sincut", "--name", "official", "--checkpoints_dir",
                          top / "ck", "--out", top / "exported", cwd=top)
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert re.search(r"torchscript: wrote .*official_G\.pt; max abs difference from PyTorch 0 ", exported.stdout)
    assert re.search(r"onnx: wrote .*official_G\.onnx; .* \(checked with the noise off: onnxruntime draws its own\)",
                     exported.stdout)
    import onnx
    assert "RandomNormalLike" in {node.op_type for node in onnx.load(top / "exported" / "official_G.onnx").graph.node}
