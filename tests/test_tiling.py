"""Tiled inference (test.py --tile): tile placement, blending weights, exactness against whole-image
inference, shared normalisation statistics, the flags and their mistakes, every model test.py runs."""
import re

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_script, side_by_side, write_images
from data.base_dataset import to_signed_tensor
from data.image_io import load_image
from models import create_model
from models.generators import define_G
from models.size_padding import attach_size_padding
from models.tiling import TiledForward, attach_tiling, axis_weights, tile_starts
from options.test_options import TestOptions
from util.errors import UserError
from util.util import tensor2im

# How far a pixel of resnet_6blocks' output sees into its input: 12 3x3 convs at a quarter of the
# resolution (48 px), the two 7x7 convs, the stride-2 and transposed convs (58 px, measured), rounded up.
RESNET_6BLOCKS_REACH = 60


def generator(norm, dtype=torch.float64):
    """A small resnet_6blocks generator as build_network makes it (size padding attached), in float64 for
    exact comparisons; kaiming weights keep a network without normalisation from fading to zero."""
    torch.manual_seed(0)
    net = define_G(3, 3, 4, "resnet_6blocks", norm, False, "kaiming", 0.02).to(dtype)
    attach_size_padding(net, net.size_multiple)
    return net


def tiled_and_whole(net, image, tile, overlap, statistics="tile"):
    with torch.inference_mode():
        whole = net(image)
        attach_tiling(net, tile, overlap, statistics)
        return net(image), whole


def away_from_seams(length, tile, overlap, reach):
    """Pixels of a side whose every covering tile sees the whole receptive field around them: at least
    `reach` px from each tile edge that is not an image border."""
    size = min(tile, length)
    mask = torch.ones(length, dtype=torch.bool)
    for start in tile_starts(length, tile, overlap):
        covered = torch.zeros(length, dtype=torch.bool)
        covered[start:start + size] = True
        near = torch.zeros(length, dtype=torch.bool)
        if start > 0:
            near[start:start + reach] = True
        if start + size < length:
            near[max(0, start + size - reach):start + size] = True
        mask &= ~(covered & near)
    return mask


@pytest.mark.parametrize("length, tile, overlap, starts", [
    (100, 128, 32, [0]), (128, 128, 32, [0]), (129, 128, 32, [0, 1]), (256, 128, 32, [0, 96, 128]),
    (320, 128, 32, [0, 96, 192]), (4096, 512, 64, [0, 448, 896, 1344, 1792, 2240, 2688, 3136, 3584]),
])
def test_tiles_start_every_tile_minus_overlap_and_the_last_is_flush(length, tile, overlap, starts):
    assert tile_starts(length, tile, overlap) == starts


@pytest.mark.parametrize("length, tile, overlap", [
    (300, 128, 32), (320, 128, 32), (129, 128, 32), (1000, 256, 128), (100, 128, 32), (500, 64, 4), (260, 96, 48),
])
def test_blend_weights_sum_to_one_and_have_no_step(length, tile, overlap):
    total = torch.zeros(length, dtype=torch.float64)
    for start, weights in axis_weights(length, tile, overlap):
        total[start:start + len(weights)] += weights
        # The weight over the whole side (0 outside the tile) moves by at most two ramp steps per pixel
        # (1/overlap each): one where neighbours overlap by --tile_overlap, less than two where the flush
        # last tile's ramp falls inside a regular pair's (measured over all tiles up to 296 px).
        whole_side = torch.zeros(length + 2, dtype=torch.float64)
        whole_side[start + 1:start + 1 + len(weights)] = weights
        if start > 0:
            assert weights[0] <= 0.5 / overlap + 1e-12  # fades in from nothing
        if start + len(weights) < length:
            assert weights[-1] <= 0.5 / overlap + 1e-12  # and out to nothing
        assert whole_side[1:-1].diff().abs().max() < 2 / overlap
        assert (weights >= 0).all()
    assert torch.allclose(total, torch.ones(length, dtype=torch.float64), rtol=0, atol=1e-12)


def test_neighbours_at_the_regular_overlap_blend_without_dividing():
    """Two tiles overlapping by exactly --tile_overlap px: their ramps are complementary (1/overlap apart
    per pixel), so each is linear across the overlap."""
    (_, first), (_, second) = axis_weights(224, 128, 32)
    assert torch.allclose(first[96:], (torch.arange(32, 0, -1, dtype=torch.float64) - 0.5) / 32)
    assert torch.allclose(second[:32], (torch.arange(32, dtype=torch.float64) + 0.5) / 32)


def test_a_network_without_normalisation_gives_the_whole_image_result_away_from_the_seams():
    net = generator("none")
    image = torch.rand(1, 3, 250, 498, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    tiled, whole = tiled_and_whole(net, image, 192, 32)  # padded to 252 x 500, then tiles at 0/60 and 0/160/308
    mask = away_from_seams(252, 192, 32, RESNET_6BLOCKS_REACH)[:250, None] & \
        away_from_seams(500, 192, 32, RESNET_6BLOCKS_REACH)[None, :498]
    assert mask.float().mean() > 0.3  # most of the picture is compared
    assert tiled.shape == whole.shape and whole.std() > 0.1
    assert torch.allclose(tiled[..., mask], whole[..., mask], rtol=0, atol=1e-12)
    assert not torch.allclose(tiled[..., ~mask], whole[..., ~mask], rtol=0, atol=1e-3)  # tiles do differ near seams


def test_instance_norm_with_the_image_statistics_of_an_image_as_small_as_a_tile_is_exact_away_from_seams():
    """An image whose area is at most a tile's is not scaled down for its statistics: every tile then
    normalises by the whole image's, and gives its result wherever it sees the whole receptive field."""
    net = generator("instance")
    image = torch.rand(1, 3, 160, 300, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    tiled, whole = tiled_and_whole(net, image, 256, 32, "image")  # 48,000 px <= 256 x 256
    mask = away_from_seams(300, 256, 32, RESNET_6BLOCKS_REACH)
    assert 0.5 < mask.float().mean() < 1
    assert torch.allclose(tiled[..., mask], whole[..., mask], rtol=0, atol=1e-12)
    del net.forward
    own, _ = tiled_and_whole(net, image, 256, 32, "tile")  # each tile its own statistics: different
    assert (own[..., mask] - whole[..., mask]).abs().max() > 1e-3


def test_image_statistics_come_from_the_image_scaled_down_to_a_tile():
    net = generator("instance", torch.float32)
    image = torch.rand(1, 3, 400, 640, generator=torch.Generator().manual_seed(3)) * 2 - 1
    attach_tiling(net, 160, 32, "image")
    seen = []
    net.model[1].register_forward_hook(lambda module, args, output: seen.append(tuple(args[0].shape[-2:])))
    with torch.inference_mode():
        out = net(image)
    assert seen[0] == (134, 210)  # 126 x 202 ~ 160 x 160 px (scale 0.316), padded to 128 x 204, + 2 x 3 reflected
    assert set(seen[1:]) == {(166, 166)} and len(seen) == 1 + 3 * 5  # then the tiles: 3 rows of 5
    assert out.shape == image.shape


def test_no_statistics_pass_without_layers_that_need_one():
    net = generator("none", torch.float32)
    attach_tiling(net, 160, 32, "image")
    passes = []
    net.model[1].register_forward_hook(lambda module, args, output: passes.append(1))
    with torch.inference_mode():
        net(torch.zeros(1, 3, 400, 640))
    assert len(passes) == 3 * 5  # the tiles only


def test_batch_norm_in_eval_mode_keeps_its_running_statistics():
    net = generator("batch").eval()
    image = torch.rand(1, 3, 160, 300, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) * 2 - 1
    tiled, whole = tiled_and_whole(net, image, 256, 32, "image")
    mask = away_from_seams(300, 256, 32, RESNET_6BLOCKS_REACH)
    assert torch.allclose(tiled[..., mask], whole[..., mask], rtol=0, atol=1e-12)


@pytest.mark.parametrize("netG, tile, overlap, message", [
    ("resnet_9blocks", 130, 32, r"--tile 130 is not a multiple of 4, the side multiple of this generator \(--netG\); "
                                r"use --tile 128 or 132"),
    ("unet_256", 300, 32, r"--tile 300 is not a multiple of 256, .*; use --tile 256 or 512"),
    ("unet_128", 64, 16, r"--tile 64 is not a multiple of 128, .*; use --tile 128"),
    ("resnet_6blocks", 16, 4, r"--tile 16 is too small; use 0 \(no tiles\) or at least 32 \(e.g. --tile 512\)"),
    ("resnet_6blocks", 128, 30, r"--tile_overlap 30 is not a positive multiple of 4 .*; use --tile_overlap 28 or 32"),
    ("resnet_6blocks", 64, 36, r"--tile 64 is less than twice --tile_overlap 36, so a tile's two blending ramps "
                               r"would cross; use --tile 72 or more, or --tile_overlap 32 or less"),
])
def test_tiles_that_do_not_fit_the_generator_are_refused(netG, tile, overlap, message):
    with pytest.raises(UserError, match=f"^{message}$"):
        attach_tiling(define_G(3, 3, 4, netG, "instance"), tile, overlap)


def parse_test(tmp_path, *flags):
    return TestOptions().parse(["--dataroot", str(tmp_path), "--checkpoints_dir", str(tmp_path / "ck"),
                                "--gpu_ids", "-1", *flags])


def test_tiles_take_images_at_full_size_unless_a_preprocess_is_typed(tmp_path):
    assert parse_test(tmp_path, "--tile", "256").preprocess == "none"
    untiled = parse_test(tmp_path)
    assert (untiled.tile, untiled.preprocess) == (0, "resize_and_crop")
    kept = parse_test(tmp_path, "--tile", "256", "--preprocess", "crop", "--crop_size", "1024")
    assert (kept.preprocess, kept.crop_size) == ("crop", 1024)
    assert parse_test(tmp_path, "--tile", "256", "--preprocess", "scale_width").preprocess == "scale_width"


@pytest.mark.parametrize("preprocess, message", [
    ("resize_and_crop", r"--preprocess resize_and_crop cuts every image to --crop_size 256 px, which fits in one "
                        r"--tile 256 tile, so tiling changes nothing; use --preprocess none \(images at full size\), "
                        r"or a --crop_size larger than --tile"),
    ("crop", r"--preprocess crop cuts every image to --crop_size 256 px, .*"),
    ("scale_width_and_crop", r"--preprocess scale_width_and_crop cuts every image to --crop_size 256 px, .*"),
])
def test_a_preprocess_that_leaves_one_tile_is_refused(tmp_path, preprocess, message):
    with pytest.raises(UserError, match=f"^{message}$"):
        parse_test(tmp_path, "--tile", "256", "--preprocess", preprocess)


@pytest.mark.parametrize("flags, message", [
    (["--tile", "8"], r"--tile 8 is too small; .*"),
    (["--tile", "128", "--tile_overlap", "10"], r"--tile_overlap 10 is not a positive multiple of 4 .*"),
    (["--tile", "64", "--tile_overlap", "40"], r"--tile 64 is less than twice --tile_overlap 40, .*"),
])
def test_bad_tile_flags_are_refused_in_one_line(tmp_path, flags, message):
    with pytest.raises(UserError, match=f"^{message}$"):
        parse_test(tmp_path, *flags)


@pytest.mark.parametrize("model, flags, generators", [
    ("cycle_gan", [], ["G_A", "G_B"]), ("test", ["--tile_statistics", "tile"], ["G"]), ("cut", [], ["G"]),
    ("pix2pix", ["--netG", "unet_128", "--norm", "batch"], ["G"]), ("colorization", ["--netG", "unet_128"], ["G"]),
])
def test_every_generator_of_every_model_test_py_runs_is_tiled(tmp_path, model, flags, generators):
    opt = parse_test(tmp_path, "--model", model, "--ngf", "4", "--tile", "128", "--tile_overlap", "16", *flags)
    model = create_model(opt)
    model.setup()
    model.tile_generators(opt.tile, opt.tile_overlap, opt.tile_statistics)
    assert sorted(model.networks()) == generators
    for net in model.networks().values():
        assert isinstance(net.forward, TiledForward)
        assert (net.forward.tile, net.forward.overlap, net.forward.statistics) == (128, 16, opt.tile_statistics)
    channels = (opt.input_nc, opt.output_nc)
    images = {"A": torch.rand(1, channels[0], 140, 150) * 2 - 1, "B": torch.rand(1, channels[1], 140, 150) * 2 - 1}
    model.set_input({**images, "A_paths": ["a.png"], "B_paths": ["b.png"]})
    model.test()
    for name, picture in model.get_current_visuals().items():
        assert picture.shape[-2:] == (140, 150), name


def test_test_py_translates_in_tiles_end_to_end(tmp_path):
    """test.py --tile on images larger than a tile (and one smaller), with both CycleGAN generators:
    every result at the input's full size; a tile size that does not fit the generator is one line."""
    ck = tmp_path / "ck" / "tiny"
    ck.mkdir(parents=True)
    for name in ("G_A", "G_B"):
        torch.save(define_G(3, 3, 8, "resnet_6blocks", "instance").state_dict(), ck / f"latest_net_{name}.pth")
    write_images(tmp_path / "data" / "testA", 2, size=(150, 100))
    write_images(tmp_path / "data" / "testA", 1, size=(40, 36), prefix="small")
    write_images(tmp_path / "data" / "testB", 1, size=(90, 130))
    common = ["--name", "tiny", "--checkpoints_dir", tmp_path / "ck", "--results_dir", tmp_path / "results",
              "--netG", "resnet_6blocks", "--ngf", "8", "--num_threads", "0", "--gpu_ids", "-1"]
    cycle = side_by_side(run_script, "test.py", "--dataroot", tmp_path / "data", "--model", "cycle_gan", "--tile", "64",
                         "--tile_overlap", "16", *common, cwd=tmp_path)
    refused = run_script("test.py", "--dataroot", tmp_path / "data" / "testA", "--model", "test", "--model_suffix",
                         "_A", "--tile", "66", "--tile_overlap", "16", *common, cwd=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: --tile 66 is not a multiple of 4, the side multiple of this generator (--netG); use --tile 64 or 68")
    result = cycle.result()
    assert result.returncode == 0, result.stderr[-3000:]
    images = tmp_path / "results" / "tiny" / "test_latest" / "images"
    sizes = {path.name: Image.open(path).size for path in images.iterdir()}
    assert sizes["img_000_fake_B.png"] == sizes["img_000_rec_A.png"] == (150, 100)
    assert sizes["small_000_fake_B.png"] == (40, 36)
    assert sizes["img_000_fake_A.png"] == sizes["img_000_rec_B.png"] == (90, 130)
    options = (tmp_path / "ck" / "tiny" / "test_opt.txt").read_text()
    assert re.search(r"tile: 64\s", options) and re.search(r"preprocess: none\s", options)


def test_test_py_tiles_batches_as_it_tiles_each_image_alone(tmp_path):
    """test.py --tile with --batch_size 2: images of one size share a batch and its tiles (another size
    goes in its own batch), and each result is the one its image gets tiled alone."""
    torch.manual_seed(0)
    net = define_G(3, 3, 8, "resnet_6blocks", "instance", False, "normal", 0.02).eval()
    (tmp_path / "ck" / "tiny").mkdir(parents=True)
    torch.save(net.state_dict(), tmp_path / "ck" / "tiny" / "latest_net_G.pth")
    paths = write_images(tmp_path / "data", 3, size=(72, 56)) + write_images(tmp_path / "data", 1, prefix="small")
    result = run_script("test.py", "--dataroot", tmp_path / "data", "--name", "tiny", "--model", "test", "--no_dropout",
                        "--checkpoints_dir", tmp_path / "ck", "--results_dir", tmp_path / "results", "--netG",
                        "resnet_6blocks", "--ngf", "8", "--num_threads", "0", "--gpu_ids", "-1", "--batch_size", "2",
                        "--tile", "32", "--tile_overlap", "8", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    attach_size_padding(net, net.size_multiple)
    attach_tiling(net, 32, 8, "image")
    for path in paths:
        image = to_signed_tensor(load_image(path))
        with torch.inference_mode():
            alone = tensor2im(net(image[None]))
        batched = np.asarray(Image.open(tmp_path / "results" / "tiny" / "test_latest" / "images" / f"{path.stem}_fake.png"))
        # Batched convolutions may round a float's last bit differently: a picture level may differ by one.
        assert batched.shape == alone.shape and np.abs(batched.astype(int) - alone).max() <= 1, path.name


def test_the_tile_benchmark_prints_memory_and_psnr(tmp_path):
    """scripts/tile_benchmark.py at a tiny size (a smoke test: the numbers are printed, not judged)."""
    tiny = ["--size", "96", "--tile", "64", "--tile_overlap", "16", "--netG", "resnet_6blocks", "--ngf", "4"]
    memory = side_by_side(run_script, "scripts/tile_benchmark.py", "memory", *tiny, cwd=tmp_path)
    compared = run_script("scripts/tile_benchmark.py", "compare", *tiny, "--out", tmp_path / "pictures", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr[-3000:]
    for statistics in ("tile", "image"):
        assert re.search(rf"96x96 tiles 64 px, overlap 16, {statistics} statistics: PSNR against whole-image inference "
                         r"\d+\.\d\d dB, largest difference \d\.\d{3}\n", compared.stdout)
        assert Image.open(tmp_path / "pictures" / f"difference_{statistics}.png").size == (96, 96)
    result = memory.result()
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.match(r"96x96 resnet_6blocks ngf 4 instance, tiles 64 px, overlap 16, image statistics: \d+ s, peak "
                    r"memory \d+\.\d\d GiB \(.+, \d+ thread\(s\)\)\n$", result.stdout)
