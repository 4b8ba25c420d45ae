"""Tests of the data package: preprocessing sizes, datasets, plug-in lookup, folder search and the loader."""
import argparse
import os
import pickle
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import data
from conftest import REPO_ROOT, write_images
from data.aligned_dataset import AlignedDataset
from data.base_dataset import BaseDataset, get_params, get_transform, size_before_crop, to_signed_tensor
from data.image_folder import make_dataset
from data.image_io import load_image
from data.single_dataset import SingleDataset
from data.unaligned_dataset import UnalignedDataset
from options.image_sizes import smallest_image_side
from util.errors import UserError


def make_opt(dataroot, **overrides):
    """Options as the parser would give them, small sizes, CPU, no workers; `overrides` replace fields."""
    values = dict(dataroot=str(dataroot), phase="train", direction="AtoB", input_nc=3, output_nc=3,
                  preprocess="resize_and_crop", load_size=40, crop_size=32, no_flip=False, serial_batches=True,
                  max_dataset_size=float("inf"), batch_size=1, num_threads=0, isTrain=True,
                  dataset_mode="unaligned", gpu_ids=[], seed=None, max_bad_images=10, netG="resnet_6blocks",
                  netD="basic", n_layers_D=3)
    values.update(overrides)
    opt = argparse.Namespace(**values)
    opt.smallest_image_side = smallest_image_side(opt)  # the parser hands the networks' need down to data
    return opt


def picture(width, height, seed=0):
    """A random RGB PIL image of the given size."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def hw(tensor):
    """(height, width) of a CxHxW tensor."""
    return tuple(tensor.shape[1:])


@pytest.mark.parametrize("preprocess, size, crop_size, expected", [
    ("resize_and_crop", (50, 30), 32, (32, 32)),
    ("crop", (50, 38), 32, (32, 32)),
    ("scale_width", (80, 60), 16, (30, 40)),    # width 40, aspect 4:3 kept
    ("scale_width", (80, 20), 32, (32, 40)),    # height never below crop_size
    ("scale_width_and_crop", (80, 60), 32, (32, 32)),
    ("none", (45, 38), 32, (40, 44)),           # training: sides rounded to multiples of 4
])
def test_transform_output_size(preprocess, size, crop_size, expected):
    opt = make_opt(".", preprocess=preprocess, load_size=40, crop_size=crop_size)
    tensor = get_transform(opt)(picture(*size))
    assert tensor.shape[0] == 3 and hw(tensor) == expected
    assert tensor.min() >= -1.0 and tensor.max() <= 1.0 and tensor.min() < -0.5 and tensor.max() > 0.5


def test_none_at_test_time_keeps_size_and_pixels():
    opt = make_opt(".", preprocess="none", isTrain=False, no_flip=True)
    image = picture(45, 38)
    tensor = get_transform(opt)(image)
    expected = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255 * 2 - 1
    assert torch.allclose(tensor, expected, atol=1e-6)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_tensors_are_those_of_torchvision_to_tensor_and_normalize(mode):
    from torchvision import transforms  # what the original tool converts with; no longer imported by the tool
    image = picture(45, 38).convert(mode)
    expected = transforms.Normalize([0.5] * len(mode), [0.5] * len(mode))(transforms.ToTensor()(image))
    tensor = to_signed_tensor(image)
    assert tensor.dtype == torch.float32 and tensor.shape == (len(mode), 38, 45)
    assert torch.allclose(tensor, expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("preprocess", ["crop", "resize_and_crop", "scale_width_and_crop"])
def test_small_image_is_upscaled_before_cropping(preprocess):
    opt = make_opt(".", preprocess=preprocess, load_size=20, crop_size=32)
    for _ in range(5):
        assert hw(get_transform(opt)(picture(20, 24))) == (32, 32)
    assert size_before_crop(make_opt(".", preprocess="crop"), (20, 24)) == (32, 38)  # aspect kept


def test_flip_follows_params_and_no_flip():
    image = picture(36, 28)
    base = dict(preprocess="none", isTrain=False)
    plain = get_transform(make_opt(".", no_flip=True, **base))(image)
    flipped = get_transform(make_opt(".", **base), params={"crop_pos": (0, 0), "flip": True})(image)
    kept = get_transform(make_opt(".", **base), params={"crop_pos": (0, 0), "flip": False})(image)
    assert torch.equal(flipped, plain.flip(-1)) and torch.equal(kept, plain)
    random.seed(0)
    randomly = [torch.equal(get_transform(make_opt(".", **base))(image), plain) for _ in range(40)]
    assert 5 < sum(randomly) < 35


def test_get_params_crop_fits_and_is_shared():
    opt = make_opt(".", preprocess="resize_and_crop", load_size=40, crop_size=32)
    random.seed(1)
    params = [get_params(opt, (70, 50)) for _ in range(50)]
    assert all(0 <= p["crop_pos"][0] <= 8 and 0 <= p["crop_pos"][1] <= 8 for p in params)
    assert {p["flip"] for p in params} == {True, False}
    image = picture(70, 50)
    transform = get_transform(opt, params[0])
    assert torch.equal(transform(image), transform(image))


def test_aligned_splits_left_a_right_b(tmp_path):
    left = np.zeros((36, 40, 3), np.uint8)
    right = np.full((36, 40, 3), 255, np.uint8)
    (tmp_path / "test").mkdir()
    Image.fromarray(np.concatenate([left, right], axis=1)).save(tmp_path / "test" / "pair.png")
    item = AlignedDataset(make_opt(tmp_path, phase="test", preprocess="none", isTrain=False, no_flip=True))[0]
    assert hw(item["A"]) == hw(item["B"]) == (36, 40)
    assert item["A"].max() == -1.0 and item["B"].min() == 1.0
    assert item["A_paths"] == item["B_paths"] == str(tmp_path / "test" / "pair.png")


def test_aligned_halves_get_identical_crop_and_flip(tmp_path):
    half = np.asarray(picture(40, 36, seed=3))
    (tmp_path / "train").mkdir()
    Image.fromarray(np.concatenate([half, half], axis=1)).save(tmp_path / "train" / "twin.png")
    dataset = AlignedDataset(make_opt(tmp_path, preprocess="crop", crop_size=24))
    items = [dataset[(0, seed)] for seed in range(6)]  # the item seed decides crop and flip
    assert all(torch.equal(item["A"], item["B"]) and hw(item["A"]) == (24, 24) for item in items)
    assert any(not torch.equal(items[0]["A"], item["A"]) for item in items[1:])  # crops do vary


@pytest.mark.parametrize("width, is_train", [(81, False), (85, True)])
def test_odd_width_is_split_as_the_original_and_b_keeps_a_size(tmp_path, width, is_train):
    # Under --preprocess none the sizes are kept at test time and rounded to multiples of 4 in training
    # (42 -> 40 but 43 -> 44): both would differ without B's extra column dropped.
    pixels = np.array(picture(width, 36, seed=4))
    (tmp_path / "train").mkdir()
    Image.fromarray(pixels).save(tmp_path / "train" / "odd.png")
    opt = make_opt(tmp_path, preprocess="none", isTrain=is_train, no_flip=True)
    item = AlignedDataset(opt)[0]
    assert hw(item["A"]) == hw(item["B"])
    if not is_train:
        half = width // 2
        expected_b = torch.from_numpy(pixels[:, half:2 * half]).permute(2, 0, 1) / 255.0 * 2 - 1
        assert hw(item["A"]) == (36, half) and torch.allclose(item["B"], expected_b)


def test_channel_counts_follow_direction(unaligned_root, aligned_root):
    gray_a = UnalignedDataset(make_opt(unaligned_root, input_nc=1))[0]
    assert gray_a["A"].shape[0] == 1 and gray_a["B"].shape[0] == 3
    swapped = UnalignedDataset(make_opt(unaligned_root, input_nc=1, direction="BtoA"))[0]
    assert swapped["A"].shape[0] == 3 and swapped["B"].shape[0] == 1
    pair = AlignedDataset(make_opt(aligned_root, output_nc=1))[0]
    assert pair["A"].shape[0] == 3 and pair["B"].shape[0] == 1
    single = SingleDataset(make_opt(unaligned_root / "testA", output_nc=1, direction="BtoA"))[0]
    assert single["A"].shape[0] == 1 and set(single) == {"A", "A_params", "A_paths"}
    with pytest.raises(UserError, match="1 or 3"):
        SingleDataset(make_opt(unaligned_root / "testA", input_nc=2))


def test_unaligned_length_and_pairing(unaligned_root):
    dataset = UnalignedDataset(make_opt(unaligned_root))
    assert len(dataset) == 4  # max(|trainA| = 4, |trainB| = 3)
    item = dataset[3]
    assert item["A_paths"].endswith("trainA/img_003.png") and item["B_paths"].endswith("trainB/img_000.png")
    assert isinstance(item["A_paths"], str)
    shuffled = UnalignedDataset(make_opt(unaligned_root, serial_batches=False))
    b_files = {shuffled[(0, seed)]["B_paths"] for seed in range(30)}
    assert len(b_files) == 3 and all(shuffled[1]["A_paths"].endswith("img_001.png") for _ in range(3))


def test_max_dataset_size_caps_the_loader(unaligned_root):
    loader = data.create_dataset(make_opt(unaligned_root, max_dataset_size=3, batch_size=2, serial_batches=False))
    assert len(loader) == 3
    for _ in range(2):
        seen = [path for batch in loader for path in batch["A_paths"]]
        assert len(seen) == 3 and len(set(seen)) == 3
    batch = next(iter(data.create_dataset(make_opt(unaligned_root, batch_size=2))))
    assert batch["A"].shape == (2, 3, 32, 32) and batch["A_paths"][0].endswith("img_000.png")


class CountingDataset(BaseDataset):
    """Ten items numbered 0-9, ignoring --max_dataset_size, so that only the loader can cap them."""

    def __len__(self):
        return 10

    def load_item(self, index, rng):
        return {"A": torch.tensor(index), "A_paths": f"item{index}"}

    def source_paths(self, index):
        return []


@pytest.mark.parametrize("serial", [True, False])
def test_loader_caps_a_dataset_that_does_not(monkeypatch, serial):
    monkeypatch.setattr(data, "find_dataset_using_name", lambda name: CountingDataset)
    loader = data.create_dataset(make_opt(".", max_dataset_size=5, batch_size=2, serial_batches=serial))
    items = torch.cat([batch["A"] for batch in loader]).tolist()
    assert len(loader) == 5 and len(items) == 5 and len(set(items)) == 5
    assert items == [0, 1, 2, 3, 4] if serial else set(items) <= set(range(10))


def test_loader_worker_settings(unaligned_root):
    loader = data.create_dataset(make_opt(unaligned_root, num_threads=1, gpu_ids=[0])).dataloader
    assert loader.pin_memory and loader.persistent_workers and loader.num_workers == 1 and not loader.drop_last
    loader = data.create_dataset(make_opt(unaligned_root)).dataloader
    assert not loader.pin_memory and not loader.persistent_workers


def test_dataset_pickles_for_spawned_workers(aligned_root, unaligned_root):
    for dataset in (AlignedDataset(make_opt(aligned_root)), UnalignedDataset(make_opt(unaligned_root))):
        copy = pickle.loads(pickle.dumps(dataset))
        assert hw(copy[0]["A"]) == (32, 32)


def test_make_dataset_recursive_case_insensitive(tmp_path):
    write_images(tmp_path / "b", 1, ext="PNG")
    write_images(tmp_path / "a" / "deep", 2, ext="JPG")
    write_images(tmp_path, 1, ext="tiff", prefix="top")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "a" / "fake.png.bak").write_text("not an image")
    (tmp_path / "link").symlink_to(tmp_path / "b")
    (tmp_path / "b" / "loop").symlink_to(tmp_path)  # a cycle must not hang the search
    paths = make_dataset(str(tmp_path))
    names = [p[len(str(tmp_path)) + 1:] for p in paths]
    assert names == sorted(names)
    assert {n.split("/")[-1] for n in names} == {"img_000.PNG", "img_000.JPG", "img_001.JPG", "top_000.tiff"}
    assert len(make_dataset(str(tmp_path), max_dataset_size=2)) == 2


def test_missing_and_empty_folders_raise_user_errors(tmp_path):
    with pytest.raises(UserError, match=r"nowhere.*--dataroot"):
        make_dataset(str(tmp_path / "nowhere"))
    picture_file = write_images(tmp_path / "pictures", 1)[0]
    with pytest.raises(UserError, match=r"img_000.png' is a file, not a folder of images; pass the folder"):
        make_dataset(str(picture_file))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no pictures")
    with pytest.raises(UserError, match=r"empty.*\.png"):
        make_dataset(str(tmp_path / "empty"))
    with pytest.raises(UserError, match="trainA"):
        data.create_dataset(make_opt(tmp_path))


def test_plugin_lookup():
    assert data.available_dataset_modes() == ["aligned", "colorization", "single", "singleimage", "unaligned"]
    assert data.find_dataset_using_name("unaligned") is UnalignedDataset
    with pytest.raises(UserError, match="aligned, colorization, single, singleimage, unaligned"):
        data.find_dataset_using_name("colourful")
    parser = argparse.ArgumentParser()
    assert data.get_option_setter("aligned")(parser, True) is parser


def test_test_time_batches_group_images_by_size(tmp_path):
    for index, size in enumerate([(40, 36), (48, 32), (40, 36), (48, 32), (40, 36)]):
        write_images(tmp_path, 1, size=size, seed=index, prefix=f"p{index}")
    opt = make_opt(tmp_path, dataset_mode="single", preprocess="none", isTrain=False, batch_size=2,
                   serial_batches=True, no_flip=True)
    batches = list(data.create_dataset(opt))
    seen = []
    for batch in batches:
        for tensor, path in zip(batch["A"], batch["A_paths"]):
            with Image.open(path) as image:
                assert hw(tensor) == (image.height, image.width)
            seen.append(path)
    assert sorted(seen) == sorted(make_dataset(str(tmp_path))) and len(batches) == 3
    assert [len(b["A_paths"]) for b in batches] == [2, 2, 1]


@pytest.mark.parametrize("workers", [0, 1])
def test_unreadable_images_are_skipped_with_one_warning_each(tmp_path, capsys, workers):
    write_images(tmp_path, 3)
    (tmp_path / "broken.png").write_bytes(b"not really a png")
    loader = data.create_dataset(make_opt(tmp_path, dataset_mode="single", num_threads=workers, batch_size=2))
    for _ in range(2):  # warned once, though met in every epoch
        paths = [path for batch in loader for path in batch["A_paths"]]
        assert len(paths) == 3 and not any("broken" in path for path in paths)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "broken.png" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: skipping unreadable image")


def test_a_batch_of_only_unreadable_images_is_skipped(tmp_path):
    write_images(tmp_path, 1, prefix="z")
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(b"")
    loader = data.create_dataset(make_opt(tmp_path, dataset_mode="single", batch_size=2))
    assert [batch["A_paths"] for batch in loader] == [[str(tmp_path / "z_000.png")]]


def test_too_many_unreadable_images_stop_the_run(tmp_path):
    write_images(tmp_path, 1)
    for index in range(3):
        (tmp_path / f"zbad{index}.jpg").write_bytes(b"\xff\xd8 truncated")  # after a good file: met while loading
    loader = data.create_dataset(make_opt(tmp_path, dataset_mode="single", max_bad_images=2, num_threads=1))
    with pytest.raises(UserError, match=r"3 image files could not be read .*--max_bad_images 2"):
        list(loader)


def write_broken(folder, *names):
    """Files named like images that no decoder can read."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"\x89PNG\r\n\x1a\n truncated")


def test_a_folder_without_one_readable_image_is_refused_before_loading(tmp_path, capsys):
    write_images(tmp_path / "trainA", 2)
    write_broken(tmp_path / "trainB", "a.png", "b.png", "c.png")
    with pytest.raises(UserError, match=r"^none of the 3 image files in '.*trainB' can be read; replace them, or "
                                        r"fix --dataroot$"):
        data.create_dataset(make_opt(tmp_path))
    assert capsys.readouterr().err.count("skipping unreadable image") == 3
    write_broken(tmp_path / "single", "x.jpg")
    with pytest.raises(UserError, match=r"none of the 1 image files in '.*single'"):
        data.create_dataset(make_opt(tmp_path / "single", dataset_mode="single", isTrain=False))


def test_the_readability_probe_decodes_one_image_per_healthy_folder(unaligned_root, monkeypatch):
    decoded = []
    real_load = load_image
    monkeypatch.setattr("data.image_io.load_image", lambda path, *args: decoded.append(path) or real_load(path, *args))
    data.create_dataset(make_opt(unaligned_root))
    assert [os.path.basename(os.path.dirname(path)) for path in decoded] == ["trainA", "trainB"]


def test_broken_files_met_by_the_probe_count_against_max_bad_images(tmp_path):
    write_broken(tmp_path, "a0.png", "a1.png")
    write_images(tmp_path, 2)
    with pytest.raises(UserError, match=r"2 image files could not be read \(more than --max_bad_images 1\)"):
        data.create_dataset(make_opt(tmp_path, dataset_mode="single", max_bad_images=1))
    loader = data.create_dataset(make_opt(tmp_path, dataset_mode="single", max_bad_images=2))
    assert len([path for batch in loader for path in batch["A_paths"]]) == 2


@pytest.mark.parametrize("preprocess, batch_size, refused", [
    ("none", 2, True), ("scale_width", 2, True), ("none", 1, False), ("resize_and_crop", 2, False),
    ("scale_width_and_crop", 2, False)])
def test_training_batches_that_would_stack_different_shapes_are_refused(tmp_path, preprocess, batch_size, refused):
    write_images(tmp_path / "trainA", 2, size=(40, 36))
    write_images(tmp_path / "trainA", 1, size=(48, 40), prefix="wide")
    write_images(tmp_path / "trainB", 2, size=(48, 40))  # one shape: fine on its own
    opt = make_opt(tmp_path, preprocess=preprocess, batch_size=batch_size, load_size=40)
    if refused:
        with pytest.raises(UserError, match=rf"--preprocess {preprocess} keeps the images' shapes, and they differ "
                                            rf"\(.*img_000.png becomes .*, .*wide_000.png .*\), so --batch_size 2 "
                                            "cannot stack them; use --batch_size 1 or a cropping --preprocess"):
            data.create_dataset(opt)
    else:
        assert len(next(iter(data.create_dataset(opt)))["A_paths"]) == batch_size


@pytest.mark.parametrize("net_d, refused", [("basic", True), ("pixel", False)])
def test_training_images_kept_smaller_than_the_networks_take_are_refused(tmp_path, net_d, refused):
    write_images(tmp_path / "trainA", 2, size=(40, 36))
    write_images(tmp_path / "trainB", 1, size=(40, 36))
    write_images(tmp_path / "trainB", 1, size=(16, 12), prefix="tiny")
    opt = make_opt(tmp_path, preprocess="none", netD=net_d)
    if refused:
        with pytest.raises(UserError, match=r"--preprocess none keeps the images' shapes, and .*tiny_000.png becomes "
                                            r"16x12, smaller than --netD basic takes \(24 px a side\); use a cropping"):
            data.create_dataset(opt)
    else:
        assert len(data.create_dataset(opt)) == 2


def test_aligned_training_batches_of_one_shape_are_fine(tmp_path):
    write_images(tmp_path / "train", 2, size=(80, 36))
    opt = make_opt(tmp_path, dataset_mode="aligned", preprocess="none", batch_size=2)
    assert next(iter(data.create_dataset(opt)))["A"].shape == (2, 3, 36, 40)
    write_images(tmp_path / "train", 1, size=(96, 40), prefix="wide")
    with pytest.raises(UserError, match="cannot stack them"):
        data.create_dataset(opt)


def test_test_time_scale_width_batches_group_images_by_size_and_skip_unreadable_ones(tmp_path, capsys):
    for index, size in enumerate([(40, 36), (48, 32), (40, 36)]):
        write_images(tmp_path, 1, size=size, seed=index, prefix=f"p{index}")
    write_broken(tmp_path, "p1_broken.png")
    opt = make_opt(tmp_path, dataset_mode="single", preprocess="scale_width", isTrain=False, batch_size=2,
                   load_size=20, no_flip=True)
    batches = [batch["A_paths"] for batch in data.create_dataset(opt)]
    assert sorted(map(len, batches)) == [1, 2] and sum(map(len, batches)) == 3
    assert "skipping unreadable image" in capsys.readouterr().err


def test_epoch_order_and_items_replay_exactly(unaligned_root):
    opt = make_opt(unaligned_root, serial_batches=False, batch_size=2, seed=5)
    loader = data.create_dataset(opt)
    loader.set_epoch(3)
    first = [batch for batch in loader]
    order = list(loader.sampler.order)
    again = data.create_dataset(make_opt(unaligned_root, serial_batches=False, batch_size=2, num_threads=1), seed=5)
    again.set_epoch(3, order=order, start=2)  # resume after the first two images
    resumed = [batch for batch in again]
    assert [b["A_paths"] for b in resumed] == [b["A_paths"] for b in first[1:]]
    assert all(torch.equal(x["B"], y["B"]) for x, y in zip(resumed, first[1:]))
    loader.set_epoch(4)
    assert loader.sampler.order != order or [b["B_paths"] for b in loader] != [b["B_paths"] for b in first]


def test_ranks_share_each_epoch_without_overlap():
    samplers = [data.EpochSampler(10, 10, shuffle=True, seed=3, rank=rank, world_size=3, batch_size=2)
                for rank in range(3)]
    for sampler in samplers:
        sampler.set_epoch(2, start=1)  # resuming after the first image
    shares = [list(sampler) for sampler in samplers]
    assert len({len(share) for share in shares}) == 1  # the same number of items on every rank
    taken = [index for share in shares for index, _ in share]
    order = samplers[0].order
    assert set(taken) == set(order[1:]) and len(taken) == 9  # 9 remaining, a multiple of 3: no padding
    single = data.EpochSampler(10, 10, shuffle=True, seed=3)
    single.set_epoch(2, start=1)
    seeds = dict(single)
    assert all(seeds[index] == seed for share in shares for index, seed in share)  # same augmentation


EXIT_WITH_LIVE_WORKERS = """
import gc, sys
sys.path[:0] = [{repo!r}, {tests!r}]
from options.train_options import TrainOptions
from data import create_dataset
opt = TrainOptions().parse(["--dataroot", {root!r}, "--num_threads", "1", "--gpu_ids", "-1",
                            "--checkpoints_dir", {ck!r}, "--display_id", "0"])
loader = create_dataset(opt)
loader.set_epoch(1)
next(iter(loader))  # starts the persistent worker
gc.disable()
cycle = [loader]
cycle.append(cycle)  # only the cyclic collector could free the loader, so it is alive at exit
del loader
"""


def test_exit_does_not_wait_forever_for_persistent_workers(tmp_path, unaligned_root):
    """Workers ignore SIGTERM (stop signals are the main process's business), which is how Python's
    exit ends them: a loader still alive at exit must shut its workers down itself."""
    program = EXIT_WITH_LIVE_WORKERS.format(repo=str(REPO_ROOT), tests=str(REPO_ROOT / "tests"),
                                            root=str(unaligned_root), ck=str(tmp_path / "ck"))
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
