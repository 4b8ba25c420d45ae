"""Every input mistake a user can make ends early with one clear line and exit status 2, no traceback,
and leaves existing checkpoints untouched; inputs that can be handled are handled and said so."""
import hashlib
import os
import pickle
import re

import pytest
import torch
from PIL import Image

from conftest import run_script, write_images

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
]
if not torch.cuda.is_available():
    CASES.append(("gpu without CUDA", "train.py", None, ["--gpu_ids", "0"], 2, r"CUDA is not available.*--gpu_ids -1"))


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_bad_input(case, world, tmp_path):
    name, script, setup, extra, status, message = case
    root = setup(tmp_path) if setup else world["root"]
    before = snapshot(world["ck"])
    args = [] if "--no-dataroot" in extra else ["--dataroot", root]
    args += ["--name", "case_" + re.sub(r"\W", "_", name), "--checkpoints_dir", world["ck"]]
    args += ["--results_dir", tmp_path / "results", *TEST_TINY] if script == "test.py" else TINY
    args += [arg for arg in extra if arg != "--no-dataroot"]
    result = run_script(script, *args, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == status, output[-3000:]
    assert re.search(message, output), output[-3000:]
    assert "Traceback" not in output
    if status == 2:
        last = result.stderr.strip().splitlines()[-1]
        assert re.search(message, last) or "required" in last or "invalid choice" in last, last
    after = snapshot(world["ck"])
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
