"""Ground truth found by file name goes through exactly the preprocessing of its input (crop position,
flip, resize), whatever --preprocess and dataset mode: an output identical to its input, scored against
a truth file identical to the input file, must get the PSNR cap and L1 0 (and so must the do-nothing
baseline), also when the input was cropped at a random position."""
import argparse
import random
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import write_images
from data import create_dataset
from data.base_dataset import get_params, item_params, transform_like
from engine.evaluation import evaluation_options
from engine.metric_collector import MetricsCollector
from metrics.report import compute_metrics
from options.test_options import TestOptions
from util.util import tensor2im

NAMES = ["psnr", "l1"]
TEST_FLAGS = ["--gpu_ids", "-1", "--num_threads", "0", "--batch_size", "2"]


def parse_test_options(tmp_path, *args):
    """Parsed test.py options for `args` (no checkpoints are read)."""
    argv = [*args, "--name", "truth", "--checkpoints_dir", tmp_path / "ck", *TEST_FLAGS]
    return TestOptions().parse(list(map(str, argv)))


def identity_report(opt, labels, visuals_of):
    """The psnr/l1 report of a model whose outputs are its inputs: visuals_of(batch) -> the visuals."""
    collector = MetricsCollector(NAMES, opt, labels)
    for batch in create_dataset(opt):
        collector.add(visuals_of(batch), batch)
    return compute_metrics(NAMES, collector.finish())


def assert_perfect(report, title, pairs):
    """The outputs and the inputs of comparison `title` both score the PSNR cap and L1 0 on `pairs` images."""
    for name, perfect in (("psnr", 100.0), ("l1", 0.0)):
        entry = report["metrics"][name][title]
        assert entry["images"] == {"pairs": pairs}
        assert entry["value"] == entry["input_unchanged"] == perfect, (name, entry)


# (preprocess flags, whether the input is cropped at a random position; the cropped ones failed before the fix)
PREPROCESS_CASES = {
    "resize_and_crop": (["--load_size", 40, "--crop_size", 32], True),
    "crop": (["--preprocess", "crop", "--crop_size", 32], True),
    "scale_width_and_crop": (["--preprocess", "scale_width_and_crop", "--load_size", 36, "--crop_size", 24], True),
    "resize_and_crop_whole": (["--load_size", 32, "--crop_size", 32], False),
    "scale_width": (["--preprocess", "scale_width", "--load_size", 32, "--crop_size", 24], False),
    "none": (["--preprocess", "none"], False),
}


@pytest.mark.parametrize("case", PREPROCESS_CASES)
def test_reference_truth_is_cropped_where_its_input_was(tmp_path, case):
    flags, random_crop = PREPROCESS_CASES[case]
    write_images(tmp_path / "in", 3, size=(40, 36), seed=3)
    shutil.copytree(tmp_path / "in", tmp_path / "truth")
    opt = parse_test_options(tmp_path, "--dataroot", tmp_path / "in", "--metrics_reference", tmp_path / "truth", *flags)
    report = identity_report(opt, ["real", "fake"], lambda batch: {"real": batch["A"], "fake": batch["A"]})
    assert_perfect(report, "fake vs reference", 3)
    if random_crop:  # the inputs really were cropped at different places (what the truth has to follow)
        positions = {item_params(batch["A_params"], i)["crop_pos"]
                     for batch in create_dataset(opt) for i in range(len(batch["A_paths"]))}
        assert len(positions) > 1


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_unaligned_truth_follows_each_inputs_crop_in_the_training_evaluation(tmp_path, direction):
    """--eval_freq's evaluation (load size = crop size) with --preprocess crop still crops at random:
    the same-named file of the other domain is cropped where the output's input was, both ways."""
    write_images(tmp_path / "testA", 3, size=(40, 36), seed=3)
    shutil.copytree(tmp_path / "testA", tmp_path / "testB")
    opt = parse_test_options(tmp_path, "--dataroot", tmp_path, "--dataset_mode", "unaligned", "--model", "cycle_gan",
                       "--direction", direction, "--preprocess", "crop", "--crop_size", 32)
    eval_opt = evaluation_options(argparse.Namespace(**vars(opt), eval_dataroot=None, eval_phase="test"))
    first, second = ("A", "B") if direction == "AtoB" else ("B", "A")

    def visuals(batch):  # a CycleGAN that returns its inputs: fake_B is real_A, fake_A is real_B
        return {"real_A": batch[first], "fake_B": batch[first], "real_B": batch[second], "fake_A": batch[second]}
    report = identity_report(eval_opt, ["real_A", "fake_B", "real_B", "fake_A"], visuals)
    assert_perfect(report, "fake_B vs real_B", 3)
    assert_perfect(report, "fake_A vs real_A", 3)


@pytest.mark.parametrize("preprocess, scored", [("crop", 2), ("resize_and_crop", 3)])
def test_truth_of_another_size_is_left_out_where_a_crop_position_means_another_place(tmp_path, preprocess, scored):
    """A truth file larger than its input: with --preprocess crop the input's crop position would cover
    another part of it (left out, in the note); resize_and_crop brings both to --load_size first."""
    paths = write_images(tmp_path / "in", 3, size=(40, 36), seed=3)
    shutil.copytree(tmp_path / "in", tmp_path / "truth")
    Image.open(paths[1]).resize((48, 40), Image.BICUBIC).save(tmp_path / "truth" / paths[1].name)
    opt = parse_test_options(tmp_path, "--dataroot", tmp_path / "in", "--metrics_reference", tmp_path / "truth",
                       "--preprocess", preprocess, "--load_size", 40, "--crop_size", 32)
    report = identity_report(opt, ["real", "fake"], lambda batch: {"real": batch["A"], "fake": batch["A"]})
    assert report["metrics"]["psnr"]["fake vs reference"]["images"] == {"pairs": scored}
    if scored == 2:
        assert any(note.endswith("0 without one, 1 of another size") for note in report["notes"])


def test_transform_like_repeats_crop_and_flip(tmp_path):
    """A flipped random crop is repeated exactly on another picture of the same size, and refused
    (None) on a picture whose size before the crop differs."""
    opt = argparse.Namespace(preprocess="crop", load_size=32, crop_size=16, no_flip=False, isTrain=True)
    image, other = (Image.open(path) for path in write_images(tmp_path, 2, size=(40, 36)))
    rng = random.Random(4)
    params = next(p for p in (get_params(opt, image.size, rng) for _ in range(20)) if p["flip"] and p["crop_pos"][0])
    x, y = params["crop_pos"]
    expected = other.crop((x, y, x + 16, y + 16)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    assert np.array_equal(tensor2im(transform_like(opt, other, params)), np.asarray(expected))
    assert transform_like(opt, other.resize((48, 36)), params) is None
