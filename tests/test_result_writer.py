"""test.py at speed: result pictures written by background threads (the same files, 8 or 16 bits, errors
in one line, nothing lost on Ctrl-C), batches and loader workers giving the serial path's results, --amp
bf16 and --compile applied at test time."""
import contextlib
import errno
import functools
import io
import os
import re
import subprocess
import sys
import threading
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO_ROOT, entry_point, run_script, side_by_side, write_images
from data.base_dataset import to_signed_tensor
from data.image_io import load_image
from engine import result_writer
from engine.html import result_row, write_result_images
from engine.result_writer import ResultWriter
from models import create_model
from models.base_model import BaseModel
from models.generators import define_G
from options.test_options import TestOptions
from util.errors import exit_on_user_error
from util.util import save_image

LABELS = ("real", "fake")


def visuals(seed):
    """The visuals of one input: label -> (3, 12, 16) tensor in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    return {label: torch.rand(3, 12, 16, generator=generator) * 2 - 1 for label in LABELS}


def pixels(path):
    return np.asarray(Image.open(path))


def png_bit_depth(path):
    """The bits per channel a PNG file declares (its IHDR chunk's bit depth byte)."""
    return path.read_bytes()[24]


@pytest.mark.parametrize("threads", [3, 0], ids=["writer_threads", "callers_thread"])
@pytest.mark.parametrize("bits", [8, 16])
def test_the_writer_writes_the_files_of_the_serial_path_and_returns_their_rows(tmp_path, bits, threads):
    serial, threaded = tmp_path / "serial", tmp_path / "threaded"
    serial.mkdir()
    threaded.mkdir()
    rows = []
    with ResultWriter(threaded, aspect_ratio=2.0, bits=bits, threads=threads, max_pending=2) as writer:
        for index in range(7):
            rows.append(writer.submit(visuals(index), f"img_{index}"))
            assert write_result_images(serial, visuals(index), f"in/img_{index}.png", 2.0, bits=bits) == rows[-1]
    assert rows == [result_row(f"img_{index}", LABELS) for index in range(7)]  # in submission order
    assert sorted(path.name for path in threaded.iterdir()) == sorted(path.name for path in serial.iterdir())
    for path in serial.iterdir():
        assert path.read_bytes() == (threaded / path.name).read_bytes()
    assert pixels(serial / "img_0_fake.png").shape == (12, 32, 3)  # --aspect_ratio 2 applied
    assert png_bit_depth(threaded / "img_0_fake.png") == bits


def fail_at(names, error):
    """A stand-in for write_result_images that raises `error` for the inputs named in `names` and writes
    the others."""
    def write(image_dir, visuals, image_path, aspect_ratio, name, bits):
        if name in names:
            raise error
        return write_result_images(image_dir, visuals, image_path, aspect_ratio, name, bits)
    return write


def test_a_failed_write_is_raised_in_the_caller_and_ends_the_writing(tmp_path, monkeypatch):
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "img_1_real.png"))
    monkeypatch.setattr(result_writer, "write_result_images", fail_at({"img_1"}, full))
    with pytest.raises(OSError) as raised:
        with ResultWriter(tmp_path, threads=1, max_pending=1) as writer:
            for index in range(50):  # raised at a submit once the writer has met the failure, else at the end
                writer.submit(visuals(index), f"img_{index}")
    assert raised.value is full
    assert (tmp_path / "img_0_fake.png").is_file()
    assert not any(thread.is_alive() for thread in writer._threads)
    assert len(list(tmp_path.glob("*.png"))) < 50 * len(LABELS)  # the writing stopped at the failure


def test_a_failed_write_in_the_callers_thread_is_raised_by_its_submit(tmp_path, monkeypatch):
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "img_1_real.png"))
    monkeypatch.setattr(result_writer, "write_result_images", fail_at({"img_1"}, full))
    with ResultWriter(tmp_path, threads=0) as writer:
        writer.submit(visuals(0), "img_0")
        with pytest.raises(OSError) as raised:
            writer.submit(visuals(1), "img_1")
    assert raised.value is full
    assert sorted(path.name for path in tmp_path.iterdir()) == [f"img_0_{label}.png" for label in sorted(LABELS)]


def test_ctrl_c_during_a_write_in_the_callers_thread_leaves_no_picture_cut_short(tmp_path, monkeypatch):
    calls = []

    def interrupted_once(image_dir, visuals, image_path, aspect_ratio, name, bits):
        calls.append(name)
        if len(calls) == 1:  # Ctrl-C after half a file
            (tmp_path / f"{name}_real.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
            raise KeyboardInterrupt
        return write_result_images(image_dir, visuals, image_path, aspect_ratio, name, bits)

    monkeypatch.setattr(result_writer, "write_result_images", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        with ResultWriter(tmp_path, threads=0) as writer:
            writer.submit(visuals(0), "img_0")
    assert calls == ["img_0", "img_0"]  # written again in full before the Ctrl-C goes on
    for label in LABELS:
        assert pixels(tmp_path / f"img_0_{label}.png").shape == (12, 16, 3)


def test_a_read_only_folder_met_by_the_writer_is_one_error_line_and_status_2(tmp_path, monkeypatch, capsys):
    refused = OSError(errno.EROFS, "Read-only file system", str(tmp_path / "img_0_real.png"))
    monkeypatch.setattr(result_writer, "write_result_images", fail_at({"img_0"}, refused))

    @exit_on_user_error
    def test_main():
        with ResultWriter(tmp_path) as writer:
            writer.submit(visuals(0), "img_0")

    with pytest.raises(SystemExit) as exit_info:
        test_main()
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(r"error: could not write .*img_0_real\.png \(Read-only file system\); "
                                            r"free disk space, raise the quota or fix the folder's permissions "
                                            r"\(files written before are kept\)", lines[0]), lines


def test_ctrl_c_in_the_caller_still_writes_everything_handed_over(tmp_path, monkeypatch):
    release = threading.Event()

    def slow_write(*args):
        release.wait()
        return write_result_images(*args)

    monkeypatch.setattr(result_writer, "write_result_images", slow_write)
    with pytest.raises(KeyboardInterrupt):
        with ResultWriter(tmp_path, threads=1, max_pending=4) as writer:
            for index in range(4):
                writer.submit(visuals(index), f"img_{index}")
            threading.Timer(0.2, release.set).start()
            raise KeyboardInterrupt
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        f"img_{index}_{label}.png" for index in range(4) for label in LABELS)
    assert not any(thread.is_alive() for thread in writer._threads)


def test_submit_waits_while_max_pending_inputs_are_queued(tmp_path, monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(result_writer, "write_result_images", lambda *args: release.wait())
    with ResultWriter(tmp_path, threads=1, max_pending=1) as writer:
        writer.submit(visuals(0), "img_0")  # being written (held back)
        writer.submit(visuals(1), "img_1")  # queued
        third = threading.Thread(target=writer.submit, args=(visuals(2), "img_2"))
        third.start()
        third.join(timeout=0.5)
        waiting = third.is_alive()
        release.set()
        third.join()
    assert waiting


TEST_FLAGS = ["--model", "test", "--no_dropout", "--netG", "resnet_6blocks", "--ngf", "8", "--crop_size", "32",
              "--gpu_ids", "-1", "--name", "random"]


@pytest.fixture(scope="module")
def random_generator(tmp_path_factory):
    """A folder of 32 px inputs and a checkpoints folder whose run `random` holds a generator of random
    weights: (inputs, checkpoints, the generator)."""
    top = tmp_path_factory.mktemp("random")
    inputs = top / "inputs"
    write_images(inputs, 5, size=(32, 32), seed=7)
    torch.manual_seed(0)
    net = define_G(3, 3, 8, "resnet_6blocks", "instance", False, "normal", 0.02).eval()
    (top / "ck" / "random").mkdir(parents=True)
    torch.save(net.state_dict(), top / "ck" / "random" / "latest_net_G.pth")
    return inputs, top / "ck", net


def test_batches_loader_workers_and_writer_threads_give_the_serial_results(tmp_path, random_generator):
    inputs, checkpoints, net = random_generator
    result = run_script("test.py", "--dataroot", inputs, "--checkpoints_dir", checkpoints, "--results_dir",
                        tmp_path, *TEST_FLAGS, "--batch_size", "3", "--num_threads", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "random" / "test_latest"
    stems = [f"img_{index:03d}" for index in range(5)]
    assert sorted(path.name for path in (out / "images").iterdir()) == sorted(
        f"{stem}_{label}.png" for stem in stems for label in LABELS)
    assert re.findall(r"<h3>([^<]*)</h3>", (out / "index.html").read_text()) == stems  # file order
    for stem in stems:  # the serial path: one image at a time, written in this thread
        image = to_signed_tensor(load_image(inputs / f"{stem}.png"))
        with torch.inference_mode():
            fake = net(image[None])[0]
        write_result_images(tmp_path, {"real": image, "fake": fake}, f"{stem}.png")
        assert np.array_equal(pixels(out / "images" / f"{stem}_real.png"), pixels(tmp_path / f"{stem}_real.png"))
        # Batched convolutions may round the last bit of a float differently than single ones: a picture
        # level may then differ by one.
        difference = pixels(out / "images" / f"{stem}_fake.png").astype(int) - pixels(tmp_path / f"{stem}_fake.png")
        assert np.abs(difference).max() <= 1 and np.mean(difference != 0) < 0.01


def sixteen_bit_pixels(path):
    """The 16-bit values of a 16-bit PNG (Pillow alone would keep the high bytes of RGB ones)."""
    return np.rint(np.asarray(load_image(path, "RGB"), np.float64) * 65535).astype(np.int64)


def test_16_bit_results_come_through_batches_and_writer_threads(tmp_path, random_generator):
    inputs, checkpoints, net = random_generator
    result = run_script("test.py", "--dataroot", inputs, "--checkpoints_dir", checkpoints, "--results_dir",
                        tmp_path, *TEST_FLAGS, "--batch_size", "2", "--num_threads", "0", "--output_bits", "16",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    images = tmp_path / "random" / "test_latest" / "images"
    assert len(list(images.iterdir())) == 5 * len(LABELS)
    for index in range(5):  # the serial path: one image at a time, written in this thread
        stem = f"img_{index:03d}"
        image = to_signed_tensor(load_image(inputs / f"{stem}.png"))
        with torch.inference_mode():
            fake = net(image[None])[0]
        write_result_images(tmp_path, {"real": image, "fake": fake}, f"{stem}.png", bits=16)
        assert png_bit_depth(images / f"{stem}_real.png") == png_bit_depth(images / f"{stem}_fake.png") == 16
        assert np.array_equal(sixteen_bit_pixels(images / f"{stem}_real.png"), sixteen_bit_pixels(tmp_path / f"{stem}_real.png"))
        # Batched convolutions may round the last bit of a float differently than single ones (see above):
        # at 16 bits a level of 65535 may then differ by one or two (one was measured).
        difference = sixteen_bit_pixels(images / f"{stem}_fake.png") - sixteen_bit_pixels(tmp_path / f"{stem}_fake.png")
        assert np.abs(difference).max() <= 2 and np.mean(difference != 0) < 0.05


def built_test_model(tmp_path, checkpoints, *flags):
    with contextlib.redirect_stdout(io.StringIO()):
        opt = TestOptions().parse(["--dataroot", str(tmp_path), "--checkpoints_dir", str(checkpoints),
                                   "--results_dir", str(tmp_path), *TEST_FLAGS, *flags])
    model = create_model(opt)
    model.eval()
    return model


def fake_of(model, net, images):
    model.netG.load_state_dict(net.state_dict())
    model.set_input({"A": images, "A_paths": ["a", "b"]})
    model.test()
    return model.fake.float()


def test_bf16_and_compile_apply_at_test_time(tmp_path, random_generator, monkeypatch):
    _, checkpoints, net = random_generator
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    fp32 = fake_of(built_test_model(tmp_path, checkpoints), net, images)
    bf16 = fake_of(built_test_model(tmp_path, checkpoints, "--amp", "bf16"), net, images)
    difference = (bf16 - fp32).abs()
    # bfloat16 keeps 8 bits of mantissa: the outputs move by bf16's rounding noise, not more.
    assert 0 < difference.mean() < 0.02 and difference.max() < 0.15
    # The compiler's own backend takes minutes on a CPU; aot_eager traces the same graph in seconds.
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    compiled = built_test_model(tmp_path, checkpoints, "--compile")
    assert "forward" in vars(compiled.netG)  # the compiled forward replaced the module's own
    assert torch.allclose(fake_of(compiled, net, images), fp32, atol=1e-5)


@pytest.mark.parametrize("flags", [
    ["--model", "test", "--netG", "resnet_6blocks", "--upsample", "resize", "--affine_output"],
    ["--model", "test", "--netG", "unet_128", "--norm", "batch", "--crop_size", "128"],
    ["--model", "cycle_gan", "--channels_last"],
    ["--model", "cut", "--CUT_mode", "FastCUT"],  # anti-aliased resampling layers
], ids=["resnet_resize_affine", "unet_batch_norm", "cycle_gan_channels_last", "fastcut"])
def test_weights_stored_in_bf16_for_inference_give_the_same_outputs_bit_for_bit(tmp_path, flags):
    with contextlib.redirect_stdout(io.StringIO()):
        opt = TestOptions().parse(["--dataroot", str(tmp_path), "--results_dir", str(tmp_path), "--gpu_ids", "-1",
                                   "--ngf", "8", "--crop_size", "32", "--no_dropout", "--amp", "bf16", *flags])
    torch.manual_seed(0)
    model = create_model(opt)
    model.eval()
    size = opt.crop_size
    images = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1
    batch = {"A": images, "B": images.flip(-1), "A_paths": ["a", "b"], "B_paths": ["c", "d"]}

    def outputs():
        model.set_input(batch)
        model.test()
        return {label: image.clone() for label, image in model.get_current_visuals().items()}

    autocast_casts_every_call = outputs()
    model.store_weights_in_amp_dtype()
    stored_in_bf16 = outputs()
    assert autocast_casts_every_call.keys() == stored_in_bf16.keys()
    for label, image in autocast_casts_every_call.items():
        assert torch.equal(image, stored_in_bf16[label]), label
    layers = [layer for net in model.networks().values() for layer in net.modules()]
    convs = [layer for layer in layers if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert convs and all(param.dtype == torch.bfloat16 for layer in convs for param in layer.parameters())
    norms = [layer for layer in layers if isinstance(layer, torch.nn.modules.batchnorm._NormBase)]
    kept = [tensor for layer in norms for tensor in [*layer.parameters(), *layer.buffers()] if tensor.is_floating_point()]
    assert all(tensor.dtype == torch.float32 for tensor in kept)
    assert kept or "--norm" not in flags
    if "--channels_last" in flags:
        assert convs[1].weight.is_contiguous(memory_format=torch.channels_last)


def test_result_pngs_are_written_at_zlibs_fastest_level_with_run_length_matching(tmp_path):
    # A smooth picture with noise: compressible, and its encodings differ with the zlib settings.
    ramp = np.linspace(0, 200, 40)[None, :, None] + np.arange(24)[:, None, None] + np.arange(3) * 20
    picture = (ramp + np.random.default_rng(0).integers(0, 4, (24, 40, 3))).astype(np.uint8)
    path = tmp_path / "picture.png"
    save_image(picture, path)
    assert np.array_equal(pixels(path), picture)
    data = path.read_bytes()
    idat = data.index(b"IDAT") + 4  # the zlib stream starts after the chunk type
    # The second byte of a zlib header holds the compression level class in its top two bits: 0 = fastest.
    assert data[idat + 1] >> 6 == 0

    def encoded(**options):
        buffer = io.BytesIO()
        Image.fromarray(picture).save(buffer, "PNG", **options)
        return buffer.getvalue()
    assert data == encoded(compress_level=1, compress_type=zlib.Z_RLE) != encoded(compress_level=1)


def test_where_the_network_computes_on_every_core_test_py_reads_and_writes_in_its_lanes(tmp_path, random_generator):
    inputs, checkpoints, _ = random_generator
    flags = ["--dataroot", inputs, "--checkpoints_dir", checkpoints, *TEST_FLAGS, "--batch_size", "2"]
    # Fresh interpreters: torch takes its threads from OMP_NUM_THREADS and MKL_NUM_THREADS when imported,
    # which the tests' prewarmed processes did with one.
    cores = str(len(os.sched_getaffinity(0)))

    def on_every_core(folder, *extra):
        return side_by_side(subprocess.run, [sys.executable, str(REPO_ROOT / "test.py"), *map(str, flags), *extra,
                                             "--results_dir", str(tmp_path / folder)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, OMP_NUM_THREADS=cores, MKL_NUM_THREADS=cores))

    runs = {"inline": on_every_core("inline"), "workers_asked_for": on_every_core("workers_asked_for", "--num_threads", "1"),
            "background": side_by_side(run_script, "test.py", *flags, "--results_dir", tmp_path / "background", cwd=tmp_path)}
    notes, lanes = {}, {}
    for folder, run in runs.items():
        finished = run.result()
        assert finished.returncode == 0, finished.stderr
        notes[folder] = "note: images are read and written in this process" in finished.stdout + finished.stderr
        lanes[folder] = "note: 2 batches are translated at a time" in finished.stdout + finished.stderr
    assert notes == {"inline": True, "workers_asked_for": False, "background": False}
    # Two lanes (engine/image_lanes.py) where the network would compute on every core of several; the same
    # page, in input order, and the same pictures as one batch at a time in the background run.
    several = int(cores) >= 2
    assert lanes == {"inline": several, "workers_asked_for": several, "background": False}
    pages = [tmp_path / folder / "random" / "test_latest" for folder in runs]
    names = sorted(path.name for path in (pages[0] / "images").iterdir())
    assert len(names) == 10
    for page in pages[1:]:
        assert page.joinpath("index.html").read_text() == pages[0].joinpath("index.html").read_text()
        assert sorted(path.name for path in (page / "images").iterdir()) == names
        for name in names:  # more threads may round a float's last bit differently: a level may move by one
            difference = pixels(page / "images" / name).astype(int) - pixels(pages[0] / "images" / name)
            assert np.abs(difference).max() <= 1


def test_ctrl_c_in_test_py_writes_the_page_of_the_images_finished_and_exits_130(tmp_path, random_generator,
                                                                               monkeypatch, capsys):
    inputs, checkpoints, _ = random_generator
    real_test, calls = BaseModel.test, []

    def interrupted_at_the_third(model, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_test(model, *args, **kwargs)
    monkeypatch.setattr(BaseModel, "test", interrupted_at_the_third)
    with pytest.raises(SystemExit) as stopped:
        entry_point("test.py").main(["--dataroot", str(inputs), "--checkpoints_dir", str(checkpoints), "--results_dir",
                                     str(tmp_path), *TEST_FLAGS, "--num_threads", "0"])
    assert stopped.value.code == 130
    page = tmp_path / "random" / "test_latest" / "index.html"
    assert re.findall(r"<h3>([^<]*)</h3>", page.read_text()) == ["img_000", "img_001"]
    assert sorted(path.name for path in page.parent.joinpath("images").iterdir()) == sorted(
        f"img_00{index}_{label}.png" for index in range(2) for label in LABELS)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == f"error: stopped by Ctrl-C after 2 of 5 images; their results: {page}"
