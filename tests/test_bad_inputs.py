"""Every input mistake a user can make ends early with one clear line and exit status 2, no traceback,
and leaves existing checkpoints untouched; inputs that can be handled are handled and said so."""
import hashlib
import os
import pickle
import re
import shutil
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_script, side_by_side, write_images
from engine.html import result_names
from models import checkpoint
from util.errors import UserError

TINY = ["--ngf", "8", "--ndf", "8", "--netG", "resnet_6blocks", "--gpu_ids", "-1", "--display_id", "0",
        "--num_threads", "0", "--load_size", "36", "--crop_size", "32", "--n_epochs", "1", "--n_epochs_decay", "0"]
TEST_TINY = ["--gpu_ids", "-1", "--num_threads", "0", "--crop_size", "32"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A good dataset and a checkpoints folder holding one finished run named `existing`."""
    top = tmp_path_factory.mktemp("world")
    root = top / "data"
    write_images(root / "trainA", 4, seed=1)
    write_images(root / "trainB", 3, seed=2)
    ck = top / "ck"
    result = run_script("train.py", "--dataroot", root, "--name", "existing", "--checkpoints_dir", ck, *TINY, cwd=top)
    assert result.returncode == 0, result.stderr
    return {"root": root, "ck": ck}


def snapshot(folder):
    return {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in folder.rglob("*") if path.is_file()}


class Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def unaligned(work, a_files=4, b_files=3):
    write_images(work / "d" / "trainA", a_files, seed=1)
    write_images(work / "d" / "trainB", b_files, seed=2)
    return work / "d"


def setup_only_b(work):
    write_images(work / "d" / "trainB", 2)
    return work / "d"


def setup_empty_b(work):
    write_images(work / "d" / "trainA", 2)
    (work / "d" / "trainB").mkdir(parents=True)
    (work / "d" / "trainB" / "notes.txt").write_text("no pictures here")
    return work / "d"


def setup_unsupported(work):
    root = setup_empty_b(work)
    Image.new("RGB", (40, 36)).save(root / "trainB" / "a.gif")
    Image.new("RGB", (40, 36)).save(root / "trainB" / "b.webp")
    return root


def setup_odd_aligned(work):
    write_images(work / "d" / "train", 2, size=(81, 36))
    return work / "d"


def setup_narrow_aligned(work):
    write_images(work / "d" / "train", 2, size=(1, 36))
    return work / "d"


def setup_file_in_the_way(work):
    (work / "afile").write_text("a file, not a folder")
    return unaligned(work)


def setup_corrupt(count):
    def setup(work):
        root = unaligned(work)
        for index in range(count):
            (root / "trainA" / f"broken{index}.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
        return root
    return setup


def png_claiming(width, height):
    """A tiny PNG file whose header claims width x height pixels: a decompression bomb's signature."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def setup_bomb(folder, width, height):
    def setup(work):
        root = unaligned(work)
        write_images(root / folder, 1, seed=5)  # a readable image beside it
        (root / folder / "bomb.png").write_bytes(png_claiming(width, height))
        return root if folder.startswith("train") else root / folder
    return setup


def setup_all_unreadable(folder):
    def setup(work):
        root = unaligned(work)
        (root / folder).mkdir(exist_ok=True)
        for path in (root / folder).glob("img_*.png"):
            path.unlink()
        for index in range(3):
            (root / folder / f"broken{index}.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
        return root if folder.startswith("train") else root / folder
    return setup


def setup_mixed_shapes(work):
    root = unaligned(work)
    write_images(root / "trainA", 1, size=(48, 40), prefix="wide")
    return root


def setup_tiny(work):
    write_images(work / "d" / "trainA", 2, size=(8, 8))
    write_images(work / "d" / "trainB", 2, size=(8, 8))
    return work / "d"


def setup_a_file(work):
    return write_images(work / "pictures", 1)[0]


def setup_evil(work, ck):
    (ck / "evil").mkdir(exist_ok=True)
    with open(ck / "evil" / "latest_net_G.pth", "wb") as handle:
        pickle.dump({"model.1.weight": Evil()}, handle)
    write_images(work / "d", 1)
    return work / "d"


# (id, script, setup(work) -> dataroot or None for the good dataset, extra args, status, message regex)
CASES = [
    ("no dataroot", "train.py", None, ["--no-dataroot"], 2, r"required: --dataroot"),
    ("dataroot missing", "train.py", lambda w: w / "nowhere", [], 2, r"nowhere.*does not exist.*--dataroot"),
    ("trainA missing", "train.py", setup_only_b, [], 2, r"trainA.*does not exist"),
    ("trainB empty", "train.py", setup_empty_b, [], 2, r"no images in .*trainB"),
    ("no supported images", "train.py", setup_unsupported, [], 2, r"no images in .*trainB.*\.png"),
    ("aligned folder missing", "train.py", unaligned, ["--model", "pix2pix"], 2, r"train'? does not exist"),
    ("aligned odd width", "train.py", setup_odd_aligned, ["--model", "pix2pix"], 0,
     r"2 aligned image\(s\) have an odd width .*split at half its width"),
    ("aligned odd width, preprocess none", "train.py", setup_odd_aligned, ["--model", "pix2pix", "--preprocess", "none"],
     0, r"training finished"),
    ("aligned 1 px wide", "train.py", setup_narrow_aligned, ["--model", "pix2pix"], 2, r"1 pixel wide .*too narrow"),
    ("input_nc impossible", "train.py", unaligned, ["--input_nc", "2"], 2, r"1 or 3"),
    ("batch larger than dataset", "train.py", unaligned, ["--batch_size", "9"], 2, r"--batch_size 9 x 1 process\(es\) is larger .*\(4 images\)"),
    ("checkpoints_dir unwritable", "train.py", setup_file_in_the_way, ["--checkpoints_dir", "afile/ck"], 2,
     r"cannot write to --checkpoints_dir"),
    ("name holds another run", "train.py", None, ["--name", "existing"], 2,
     r"already holds a training run.*--continue_train.*--overwrite"),
    ("resume with other architecture", "train.py", None, ["--name", "existing", "--continue_train", "--ngf", "16"], 2,
     r"trained with --ngf 8, not --ngf 16"),
    ("resume with another residual block", "train.py", None,
     ["--name", "existing", "--continue_train", "--resblock", "gated"], 2,
     r"trained with --resblock original, not --resblock gated"),
    ("residual output between channel counts", "train.py", None,
     ["--input_nc", "1", "--lambda_identity", "0", "--residual_output"], 2,
     r"--residual_output changes .* needs as many input as output channels \(here 1 -> 3\)"),
    ("affine output with a residual output", "train.py", None, ["--affine_output", "--residual_output"], 2,
     r"--residual_output and --affine_output are two ways .*; choose one of them"),
    ("affine smoothing without affine output", "train.py", None, ["--affine_smooth", "8"], 2,
     r"--affine_smooth 8 smooths the colour transform of --affine_output; add --affine_output or leave out"),
    ("affine smoothing below a pixel", "train.py", None, ["--affine_output", "--affine_smooth", "0"], 2,
     r"--affine_smooth 0 is out of range; it must be an integer from 1 to 16384"),
    ("residual blocks in a U-Net", "train.py", None, ["--netG", "unet_128", "--resblock", "basic"], 2,
     r"--resblock basic applies to the ResNet generators only, not --netG unet_128"),
    ("resume with spectral norm added", "train.py", None, ["--name", "existing", "--continue_train", "--spectral_norm"],
     2, r"trained with \(no --spectral_norm\), not --spectral_norm"),
    ("resume with nothing saved", "train.py", None, ["--name", "fresh", "--continue_train"], 2,
     r"no checkpoint .*nothing is saved there yet"),
    ("resume from unknown epoch", "train.py", None, ["--name", "existing", "--continue_train", "--epoch", "99"], 2,
     r"no checkpoint .*99_net_G_A.pth.*saved there: 1, latest"),
    ("test with other architecture", "test.py", None,
     ["--name", "existing", "--model", "test", "--model_suffix", "_A", "--netG", "resnet_9blocks"], 2,
     r"does not fit .*it looks like --netG resnet_6blocks --ngf 8 --norm instance"),
    ("test unknown epoch", "test.py", None, ["--name", "existing", "--model", "cycle_gan", "--epoch", "77", "--phase", "train"], 2,
     r"no checkpoint .*77_net_G_A.pth"),
    ("unknown model", "train.py", None, ["--model", "cyclegan"], 2, r"invalid choice: 'cyclegan'.*cycle_gan"),
    ("test model in training", "train.py", None, ["--model", "test"], 2, r"test model cannot be trained"),
    ("bad suffix", "train.py", None, ["--suffix", "{nope}"], 2, r"--suffix .*not a valid format"),
    ("too many unreadable images", "train.py", setup_corrupt(2), ["--max_bad_images", "1"], 2,
     r"2 image files could not be read .*--max_bad_images 1"),
    ("unreadable image skipped", "train.py", setup_corrupt(1), [], 0, r"warning: skipping unreadable image .*broken0.png"),
    ("images smaller than crop", "train.py", unaligned, ["--preprocess", "crop", "--crop_size", "48"], 0,
     r"7 image\(s\) are smaller than --crop_size 48 .*upscaled"),
    # Flag values: all are checked at parse time (tests/test_options.py tries every range); these show the CLI.
    ("batch size 0", "train.py", None, ["--batch_size", "0"], 2,
     r"--batch_size 0 is out of range; it must be an integer >= 1"),
    ("negative lr", "train.py", None, ["--lr", "-1"], 2, r"--lr -1 is out of range; it must be a number >= 0"),
    ("lr not a number", "train.py", None, ["--lr", "fast"], 2, r"argument --lr: invalid float value: 'fast'"),
    ("ema_decay 1", "train.py", None, ["--ema_decay", "1"], 2,
     r"--ema_decay 1 is out of range; it must be a number >= 0 and < 1"),
    ("ema_decay not a number", "train.py", None, ["--ema_decay", "high"], 2,
     r"argument --ema_decay: invalid float value: 'high'"),
    ("test raw weights of a run without EMA", "test.py", None,
     ["--name", "existing", "--model", "test", "--model_suffix", "_A", "--raw_weights"], 0,
     r"weights: raw weights from latest_net_G_A.pth"),
    ("unknown diffaug policy", "train.py", None, ["--diffaug", "color,blur"], 2,
     r"error: --diffaug: unknown policy 'blur'; choose from color, translation, cutout"),
    ("cut with a U-Net", "train.py", None, ["--model", "cut", "--netG", "unet_128"], 2,
     r"--model cut needs a ResNet or StyleGAN2 generator, not --netG unet_128; use --netG resnet_9blocks, "
     r"resnet_6blocks, stylegan2 or smallstylegan2"),
    ("StyleGAN2 generator outside cut", "train.py", unaligned, ["--netG", "stylegan2"], 2,
     r"--netG stylegan2 is a generator of --model cut only \(the official CUT code's single-image networks\); train "
     r"it with --model cut, or choose --netG resnet_9blocks or resnet_6blocks or unet_256 or unet_128"),
    ("singleimage with many pictures", "train.py", unaligned, ["--model", "sincut"], 2,
     r"--dataset_mode singleimage reads one picture per domain, but \S*trainA holds 4 images; keep one there, or "
     r"train on many with --dataset_mode unaligned"),
    ("zoom_and_patch at test time", "test.py", unaligned, ["--model", "sincut", "--preprocess", "zoom_and_patch"], 2,
     r"--preprocess zoom_and_patch is a training augmentation; test with --preprocess none"),
    ("cut yes/no flag", "train.py", None, ["--model", "cut", "--nce_idt", "maybe"], 2,
     r"--nce_idt 'maybe' is neither yes nor no"),
    ("cut unknown mode", "train.py", None, ["--model", "cut", "--CUT_mode", "SlowCUT"], 2,
     r"argument --CUT_mode: invalid choice: 'SlowCUT' \(choose from '?CUT'?, '?FastCUT'?\)"),
    ("save_epoch_freq 0", "train.py", None, ["--save_epoch_freq", "0"], 2,
     r"--save_epoch_freq 0 is out of range; it must be an integer >= 1"),
    ("load_size 0", "train.py", None, ["--load_size", "0"], 2,
     r"--load_size 0 is out of range; it must be an integer from 1 to 16384"),
    ("no epochs", "train.py", None, ["--n_epochs", "0", "--n_epochs_decay", "0"], 2,
     r"--n_epochs 0 --n_epochs_decay 0 leave nothing to train; together they must be at least 1 epoch"),
    ("test num_test 0", "test.py", None, ["--name", "existing", "--model", "cycle_gan", "--num_test", "0"], 2,
     r"--num_test 0 is out of range; it must be an integer >= 1"),
    ("test negative load_iter", "test.py", None, ["--name", "existing", "--model", "cycle_gan", "--load_iter", "-1"],
     2, r"--load_iter -1 is out of range; it must be an integer >= 0"),
    # Images and folders.
    ("bomb skipped in training", "train.py", setup_bomb("trainB", 10_000, 10_000), [], 0,
     r"warning: skipping unreadable image .*bomb.png \(Image size \(100000000 pixels\) exceeds limit"),
    ("bomb skipped in testing", "test.py", setup_bomb("testA", 100_000, 100_000),
     ["--name", "existing", "--model", "test", "--model_suffix", "_A"], 0,
     r"warning: skipping unreadable image .*bomb.png \(Image size \(10000000000 pixels\) exceeds limit"),
    ("no image readable in training", "train.py", setup_all_unreadable("trainB"), [], 2,
     r"none of the 3 image files in '.*trainB' can be read; replace them, or fix --dataroot"),
    ("no image readable in testing", "test.py", setup_all_unreadable("testA"),
     ["--name", "existing", "--model", "test", "--model_suffix", "_A"], 2,
     r"none of the 3 image files in '.*testA' can be read"),
    ("batch of mixed shapes", "train.py", setup_mixed_shapes, ["--preprocess", "none", "--batch_size", "2"], 2,
     r"--preprocess none keeps the images' shapes, and they differ .*cannot stack them"),
    ("images smaller than the networks", "train.py", setup_tiny, ["--preprocess", "none"], 2,
     r"--preprocess none keeps the images' shapes, and .* becomes 8x8, smaller than --netD basic takes \(24 px"),
    ("test dataroot is a file", "test.py", setup_a_file, ["--name", "existing", "--model", "test"], 2,
     r"img_000.png' is a file, not a folder of images"),
    ("test phase folder missing", "test.py", None, ["--name", "existing", "--model", "cycle_gan", "--phase", "val"],
     2, r"valA' does not exist; fix --dataroot \(or --phase"),
    ("test best without best weights", "test.py", None,
     ["--name", "existing", "--model", "cycle_gan", "--phase", "train", "--epoch", "best"], 2,
     r"no checkpoint .*best_net_G_A.pth; pick an existing --epoch"),
    ("test.py without --model after CycleGAN training", "test.py", None, ["--name", "existing"], 2,
     r"no checkpoint .*latest_net_G.pth: save latest holds D_A, D_B, G_A, G_B, not G, the networks of --model "
     r"cycle_gan; test with --model cycle_gan, or one direction with --model test --model_suffix _A \(or _B\)"),
    ("results_dir unwritable", "test.py", setup_file_in_the_way,
     ["--name", "existing", "--model", "test", "--model_suffix", "_A", "--results_dir", "afile/results"], 2,
     r"cannot write to --results_dir 'afile/results' \(Not a directory: afile/results/existing/test_latest\)"),
]
if not torch.cuda.is_available():
    CASES.append(("gpu without CUDA", "train.py", None, ["--gpu_ids", "0"], 2, r"CUDA is not available.*--gpu_ids -1"))


def run_case(case, world, work):
    """Run one CASES row as a user would, in the folder `work` and against a copy of the world's
    checkpoints of its own; return (the finished process, snapshots of that copy before and after)."""
    name, script, setup, extra, status, message = case
    root = setup(work) if setup else world["root"]
    checkpoints = work / "ck"
    shutil.copytree(world["ck"], checkpoints)
    before = snapshot(checkpoints)
    args = [] if "--no-dataroot" in extra else ["--dataroot", root]
    args += ["--name", "case_" + re.sub(r"\W", "_", name), "--checkpoints_dir", checkpoints]
    args += ["--results_dir", work / "results", *TEST_TINY] if script == "test.py" else TINY
    args += [arg for arg in extra if arg != "--no-dataroot"]
    result = run_script(script, *args, cwd=work)
    return result, before, snapshot(checkpoints)


@pytest.fixture(scope="module")
def case_runs(request, world, tmp_path_factory):
    """{row name: Future of run_case} for the CASES rows this session selects, all started side by side
    at the first of their tests (most rows are a process that imports torch and stops at a check)."""
    rows = [item.callspec.params["case"] for item in request.session.items
            if item.module is request.module and item.originalname == "test_bad_input"]
    runs = {case[0]: side_by_side(run_case, case, world, tmp_path_factory.mktemp(re.sub(r"\W", "_", case[0])))
            for case in rows}
    yield runs
    for run in runs.values():
        run.cancel()  # those not started yet, after a failure with -x


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_bad_input(case, case_runs):
    name, script, setup, extra, status, message = case
    result, before, after = case_runs[name].result()
    output = result.stdout + result.stderr
    assert result.returncode == status, output[-3000:]
    assert re.search(message, output), output[-3000:]
    assert "Traceback" not in output
    if status == 2:
        last = result.stderr.strip().splitlines()[-1]
        assert re.search(message, last) or "required" in last or "invalid choice" in last, last
    assert {path: digest for path, digest in after.items() if path in before} == before


def test_a_pickle_that_would_run_code_is_refused(world, tmp_path):
    root = setup_evil(tmp_path, world["ck"])
    result = run_script("test.py", "--dataroot", root, "--name", "evil", "--model", "test", "--checkpoints_dir",
                        world["ck"], "--results_dir", tmp_path / "results", "--gpu_ids", "-1", cwd=tmp_path)
    assert result.returncode == 2 and "not a plain weights file" in result.stderr
    assert not (tmp_path / "pwned").exists() and "Traceback" not in result.stderr


def test_overwrite_moves_the_old_run_aside(world, tmp_path):
    ck = tmp_path / "ck"
    common = ["--dataroot", world["root"], "--name", "run", "--checkpoints_dir", ck, *TINY]
    assert run_script("train.py", *common, cwd=tmp_path).returncode == 0
    old = (ck / "run" / "latest_net_G_A.pth").read_bytes()
    result = run_script("train.py", *common, "--overwrite", "--seed", "9", cwd=tmp_path)
    assert result.returncode == 0 and "moved to" in result.stderr
    archived = list((ck / "run").glob("replaced-*/latest_net_G_A.pth"))
    assert len(archived) == 1 and archived[0].read_bytes() == old


def test_file_names_with_spaces_unicode_and_html_characters(tmp_path, world):
    folder = tmp_path / "odd names"
    for name in ("a b.png", "ünïcødé.png", "<b>&amp;#x.png"):
        write_images(folder, 1, prefix="tmp")
        (folder / "tmp_000.png").rename(folder / name)
    result = run_script("test.py", "--dataroot", folder, "--name", "existing", "--model", "test", "--model_suffix",
                        "_A", "--checkpoints_dir", world["ck"], "--results_dir", tmp_path / "results", "--gpu_ids",
                        "-1", "--crop_size", "32", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    page_dir = tmp_path / "results" / "existing" / "test_latest"
    page = (page_dir / "index.html").read_text(encoding="utf-8")
    assert "<b>&amp;#x" not in page and "&lt;b&gt;" in page
    from urllib.parse import unquote
    sources = re.findall(r'<img[^>]*src="([^"]+)"', page)
    assert len(sources) == 6 and all((page_dir / unquote(src)).is_file() for src in sources)


@pytest.mark.parametrize("saved", [[1, 2], torch.zeros(3), {"model.1.weight": "text"}, {}, {1: torch.zeros(1)},
                                   {"state_dict": {"model.1.weight": torch.zeros(1)}}],
                         ids=["list", "tensor", "dict of text", "empty dict", "numbered keys", "nested"])
def test_a_weights_file_holding_no_state_dict_is_refused(tmp_path, saved):
    path = tmp_path / "latest_net_G.pth"
    torch.save(saved, path)
    with pytest.raises(UserError, match=r"latest_net_G.pth holds .*, not network weights \(a state_dict of tensors "
                                        r"by name\); use a weights file written by this tool"):
        checkpoint.load_network(torch.nn.Conv2d(1, 1, 1), str(path))


@pytest.mark.parametrize("content, reason", [(b"", "EOFError"), (b"PK\x03\x04cut", "PytorchStreamReader failed")],
                         ids=["empty", "cut zip"])
def test_a_damaged_weights_file_is_refused(tmp_path, content, reason):
    path = tmp_path / "latest_net_G.pth"
    path.write_bytes(content)
    with pytest.raises(UserError, match=rf"cannot read .*latest_net_G.pth \({reason}.*\); the file is damaged"):
        checkpoint.load_network(torch.nn.Conv2d(1, 1, 1), str(path))


def test_a_weights_file_holding_a_list_ends_in_one_line(world, tmp_path):
    (world["ck"] / "listed").mkdir(exist_ok=True)
    torch.save([torch.zeros(1)], world["ck"] / "listed" / "latest_net_G.pth")
    result = run_script("test.py", "--dataroot", world["root"] / "trainA", "--name", "listed", "--model", "test",
                        "--checkpoints_dir", world["ck"], "--results_dir", tmp_path / "results", *TEST_TINY,
                        cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert re.fullmatch(r"error: .*latest_net_G.pth holds a list, not network weights .*",
                        result.stderr.strip().splitlines()[-1])
    assert not (tmp_path / "results").exists()


def test_result_names_keep_stems_and_tell_colliding_files_apart():
    assert result_names({"d": ["d/a.png", "d/b.jpg"]}) == {"d/a.png": "a", "d/b.jpg": "b"}
    assert result_names({"d": ["d/sub/x.png", "d/x.jpg", "d/x.png"]}) == \
        {"d/sub/x.png": "sub_x", "d/x.jpg": "x_jpg", "d/x.png": "x_png"}
    # A longer name already taken by another file, and names that differ only in case.
    assert result_names({"d": ["d/sub/x.png", "d/sub_x.png", "d/x.png"]}) == \
        {"d/sub/x.png": "sub_x_2", "d/sub_x.png": "sub_x", "d/x.png": "x"}
    assert result_names({"d": ["d/X.png", "d/x.png"]}) == {"d/X.png": "X_png", "d/x.png": "x_png_2"}
    # Folders are named separately: testA/1.png and testB/1.png keep their plain names.
    assert result_names({"A": ["A/1.png"], "B": ["B/1.png"]}) == {"A/1.png": "1", "B/1.png": "1"}


def test_inputs_sharing_a_name_each_get_their_results(world, tmp_path):
    folder = tmp_path / "inputs"
    for name, seed in (("x.png", 1), ("x.jpg", 2), ("sub/x.png", 3), ("y.png", 4)):
        write_images(folder / os.path.dirname(name), 1, seed=seed, prefix="tmp")
        (folder / os.path.dirname(name) / "tmp_000.png").rename(folder / name)
    result = run_script("test.py", "--dataroot", folder, "--name", "existing", "--model", "test", "--model_suffix",
                        "_A", "--checkpoints_dir", world["ck"], "--results_dir", tmp_path / "results", *TEST_TINY,
                        "--batch_size", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    page_dir = tmp_path / "results" / "existing" / "test_latest"
    names = sorted(path.name for path in (page_dir / "images").iterdir())
    stems = ("sub_x", "x_jpg", "x_png", "y")
    assert names == sorted(f"{stem}_{label}.png" for stem in stems for label in ("real", "fake"))
    page = (page_dir / "index.html").read_text(encoding="utf-8")
    assert re.findall(r"<h3>([^<]*)</h3>", page) == ["sub_x", "x_jpg", "x_png", "y"]
    reals = {stem: Image.open(page_dir / "images" / f"{stem}_real.png").getpixel((0, 0)) for stem in ("x_png", "x_jpg")}
    assert reals["x_png"] != reals["x_jpg"]  # each row shows its own input


@pytest.mark.parametrize("limit, warned", [(2_000, False), (6_000, True)], ids=["at the options file", "at the page"])
def test_a_full_disk_in_training_ends_in_one_line_naming_the_file(tmp_path, world, limit, warned):
    # 2 kB: train_opt.txt cannot be written; 6 kB: the web page cannot (a warning: training goes on),
    # then the final save cannot (exit 2).
    result = run_script("train.py", "--dataroot", world["root"], "--name", "full", "--checkpoints_dir", tmp_path / "ck",
                        *TINY, "--print_freq", "1", cwd=tmp_path, file_size_limit=limit)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"error: could not write \S+ \(File too large\); free disk space, raise the quota or fix the "
                        r"folder's permissions \(.*\)", last), last
    page_warning = "training goes on without it" in result.stderr
    assert page_warning == warned and not list((tmp_path / "ck" / "full").glob(".tmp_*"))


@pytest.mark.parametrize("count, batch_size", [(1, 1), (5, 2)], ids=["one image", "batches"])
def test_a_full_disk_in_testing_names_the_result_file(tmp_path, world, count, batch_size):
    # The result pictures are written by background threads (engine/result_writer.py): their failure
    # reaches the user as the same one line, however many pictures were queued behind it.
    (tmp_path / "inputs").mkdir()
    for index in range(count):  # about 30 kB each as a PNG; the options file 5 kB
        noise = np.random.default_rng(index).integers(0, 256, size=(100, 100, 3), dtype=np.uint8)
        Image.fromarray(noise).save(tmp_path / "inputs" / f"noise{index}.png")
    result = run_script("test.py", "--dataroot", tmp_path / "inputs", "--name", "existing", "--model", "test",
                        "--model_suffix", "_A", "--checkpoints_dir", world["ck"], "--results_dir", tmp_path / "results",
                        "--gpu_ids", "-1", "--num_threads", "0", "--preprocess", "none", "--batch_size", str(batch_size),
                        cwd=tmp_path, file_size_limit=15_000)  # no loader workers: the limit would hit their shared memory
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert re.fullmatch(r"error: could not write .*images/noise\d_(real|fake)\.png \(File too large\); .*",
                        result.stderr.strip().splitlines()[-1])
