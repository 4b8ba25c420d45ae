"""Tests of the dataset and script tools: download scripts, combine/align helpers, the demo dataset."""
import functools
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT, run_script, write_images

DATASET_SCRIPTS = {"cyclegan": "datasets/download_cyclegan_dataset.sh",
                   "pix2pix": "datasets/download_pix2pix_dataset.sh"}
MODEL_SCRIPTS = {"cyclegan": "scripts/download_cyclegan_model.sh",
                 "pix2pix": "scripts/download_pix2pix_model.sh"}
# (script, a valid name, the path that name is served from, what the script writes)
DOWNLOADS = [
    (DATASET_SCRIPTS["cyclegan"], "mini", "cyclegan/datasets/mini.zip", "datasets/mini"),
    (DATASET_SCRIPTS["pix2pix"], "facades", "pix2pix/datasets/facades.tar.gz", "datasets/facades"),
    (MODEL_SCRIPTS["cyclegan"], "horse2zebra", "cyclegan/pretrained_models/horse2zebra.pth",
     "checkpoints/horse2zebra_pretrained/latest_net_G.pth"),
    (MODEL_SCRIPTS["pix2pix"], "day2night", "pix2pix/models-pytorch/day2night.pth",
     "checkpoints/day2night_pretrained/latest_net_G.pth"),
]
EXAMPLE_SCRIPTS = ["scripts/train_cyclegan.sh", "scripts/test_cyclegan.sh", "scripts/train_pix2pix.sh",
                   "scripts/test_pix2pix.sh", "scripts/test_single.sh", "scripts/train_colorization.sh",
                   "scripts/test_colorization.sh"]
PTH_BYTES = b"not really a state_dict, just bytes to compare"


# ---------------------------------------------------------------- a local download host

class QuietHandler(SimpleHTTPRequestHandler):
    """Serves files without logging every request to the test output."""

    def log_message(self, *args):
        pass


@pytest.fixture
def host(tmp_path):
    """A local HTTP server on a free loopback port; yields (base URL, the folder it serves)."""
    served = tmp_path / "served"
    served.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()
    server.server_close()


def closed_port_url():
    """The URL of a loopback port nobody listens on (a download host that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def archive_bytes(fmt, top, files):
    """A zip or tar.gz holding `files` ({relative path: bytes}) under the folder `top`."""
    buffer = io.BytesIO()
    if fmt == "zip":
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in files.items():
                archive.writestr(f"{top}/{name}", data)
    else:
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for name, data in files.items():
                info = tarfile.TarInfo(f"{top}/{name}")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def png_bytes(seed):
    """A small PNG picture as bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def serve(served, served_path, name):
    """Put what a download of `name` should fetch at served/served_path; return the expected files."""
    target = served / served_path
    target.parent.mkdir(parents=True, exist_ok=True)
    if served_path.endswith(".pth"):
        target.write_bytes(PTH_BYTES)
        return {"": PTH_BYTES}
    files = {"trainA/a.png": png_bytes(1), "testB/b.png": png_bytes(2)}
    target.write_bytes(archive_bytes("zip" if served_path.endswith(".zip") else "tar.gz", name, files))
    return files


def download_env(base_url, path=None):
    """The environment for a download script: our host, no proxy, optionally another PATH."""
    env = {key: value for key, value in os.environ.items() if not key.lower().endswith("_proxy")}
    env.update(CYCLEGAN_DOWNLOAD_BASE=base_url, NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    if path is not None:
        env["PATH"] = path
    return env


def run_download(script, *args, cwd, base_url, path=None):
    """Run a download script the way the README says (bash ./script NAME) from cwd."""
    return subprocess.run(["bash", str(REPO_ROOT / script), *args], cwd=cwd, env=download_env(base_url, path),
                          capture_output=True, text=True, timeout=60)


def all_paths(folder):
    """Every file and folder below folder, relative, sorted (hidden temporaries included)."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.fixture
def workdir(tmp_path):
    """An empty folder standing in for the repository root the user runs the scripts from."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


# ---------------------------------------------------------------- download scripts

@pytest.mark.parametrize("script, name, served_path, written", DOWNLOADS)
def test_download_puts_the_files_in_place_and_nothing_else(host, workdir, script, name, served_path, written):
    base_url, served = host
    expected = serve(served, served_path, name)
    result = run_download(script, name, cwd=workdir, base_url=base_url)
    assert result.returncode == 0, result.stderr
    for relative, data in expected.items():
        assert (workdir / written / relative).read_bytes() == data
    # exactly the files and their folders: no temporary archive, unpack folder or partial file
    files = [(workdir / written / relative).relative_to(workdir) for relative in expected]
    assert all_paths(workdir) == sorted({str(path) for file in files for path in [file, *file.parents][:-1]})


def test_model_download_replaces_an_older_copy(host, workdir):
    base_url, served = host
    script, name, served_path, written = DOWNLOADS[2]
    serve(served, served_path, name)
    (workdir / written).parent.mkdir(parents=True)
    (workdir / written).write_bytes(b"old")
    result = run_download(script, name, cwd=workdir, base_url=base_url)
    assert result.returncode == 0, result.stderr
    assert (workdir / written).read_bytes() == PTH_BYTES
    assert all_paths(workdir / "checkpoints") == ["horse2zebra_pretrained",
                                                  "horse2zebra_pretrained/latest_net_G.pth"]


@pytest.mark.parametrize("script, kind", [(s, "dataset") for s in DATASET_SCRIPTS.values()]
                         + [(s, "model") for s in MODEL_SCRIPTS.values()])
def test_unknown_name_is_refused_before_anything_happens(workdir, script, kind):
    result = run_download(script, "horse2nothing", cwd=workdir, base_url=closed_port_url())
    assert result.returncode == 2
    assert f"error: unknown {kind} 'horse2nothing'; choose one of:" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert all_paths(workdir) == []


@pytest.mark.parametrize("script", list(DATASET_SCRIPTS.values()) + list(MODEL_SCRIPTS.values()))
def test_missing_name_prints_usage(workdir, script):
    result = run_download(script, cwd=workdir, base_url=closed_port_url())
    assert result.returncode == 2
    assert result.stderr.startswith("usage: bash ") and "NAME" in result.stderr
    assert all_paths(workdir) == []


@pytest.mark.parametrize("script, name, served_path, written", DOWNLOADS)
def test_missing_file_on_the_server_leaves_nothing_behind(host, workdir, script, name, served_path, written):
    base_url, _ = host  # serves nothing: every request answers 404
    result = run_download(script, name, cwd=workdir, base_url=base_url)
    assert result.returncode != 0
    assert result.stderr.strip() == (f"error: could not download {base_url}/{served_path} "
                                      "(the server answered with an error such as 404); nothing was written")
    assert all_paths(workdir) == []


@pytest.mark.parametrize("script, name, served_path, written", DOWNLOADS)
def test_host_down_leaves_nothing_behind(workdir, script, name, served_path, written):
    base_url = closed_port_url()
    result = run_download(script, name, cwd=workdir, base_url=base_url)
    assert result.returncode != 0
    assert result.stderr.startswith(f"error: could not download {base_url}/{served_path} (")
    assert "offline?" in result.stderr and "nothing was written" in result.stderr
    assert all_paths(workdir) == []


def test_failed_download_keeps_existing_folders_and_files(workdir):
    (workdir / "datasets" / "horse2zebra").mkdir(parents=True)
    (workdir / "datasets" / "notes.txt").write_text("mine")
    result = run_download(DATASET_SCRIPTS["cyclegan"], "maps", cwd=workdir, base_url=closed_port_url())
    assert result.returncode != 0
    assert all_paths(workdir) == ["datasets", "datasets/horse2zebra", "datasets/notes.txt"]


@pytest.mark.parametrize("fmt, script, name, served_path", [
    ("zip", DATASET_SCRIPTS["cyclegan"], "mini", "cyclegan/datasets/mini.zip"),
    ("tar.gz", DATASET_SCRIPTS["pix2pix"], "facades", "pix2pix/datasets/facades.tar.gz")])
def test_damaged_or_misshapen_archive_leaves_nothing_behind(host, workdir, fmt, script, name, served_path):
    base_url, served = host
    (served / served_path).parent.mkdir(parents=True)
    (served / served_path).write_bytes(b"this is an HTML error page, not an archive")
    result = run_download(script, name, cwd=workdir, base_url=base_url)
    assert result.returncode == 2
    assert f"is not a valid {fmt} archive; nothing was written" in result.stderr
    assert all_paths(workdir) == []
    (served / served_path).write_bytes(archive_bytes(fmt, "wrong_top", {"x.png": png_bytes(0)}))
    result = run_download(script, name, cwd=workdir, base_url=base_url)
    assert result.returncode == 2
    assert f"has no top folder '{name}/'" in result.stderr
    assert all_paths(workdir) == []


def test_existing_dataset_is_not_overwritten(host, workdir):
    base_url, served = host
    serve(served, "cyclegan/datasets/mini.zip", "mini")
    (workdir / "datasets" / "mini").mkdir(parents=True)
    result = run_download(DATASET_SCRIPTS["cyclegan"], "mini", cwd=workdir, base_url=base_url)
    assert result.returncode == 2
    assert "already exists; delete it to download it again" in result.stderr
    assert all_paths(workdir) == ["datasets", "datasets/mini"]


def test_cityscapes_is_refused_with_where_to_get_it(workdir):
    result = run_download(DATASET_SCRIPTS["cyclegan"], "cityscapes", cwd=workdir, base_url=closed_port_url())
    assert result.returncode == 2
    assert "cityscapes-dataset.com" in result.stderr and "licence" in result.stderr
    assert all_paths(workdir) == []


def test_wget_is_used_when_curl_is_missing(host, workdir, tmp_path):
    if shutil.which("wget") is None:
        pytest.skip("wget is not installed")
    tools = ["bash", "dirname", "basename", "mkdir", "mktemp", "mv", "rm", "rmdir", "wget", "tar", "gzip"]
    bin_dir = tmp_path / "bin_without_curl"
    bin_dir.mkdir()
    for tool in tools:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    base_url, served = host
    expected = serve(served, "pix2pix/datasets/facades.tar.gz", "facades")
    result = run_download(DATASET_SCRIPTS["pix2pix"], "facades", cwd=workdir, base_url=base_url, path=str(bin_dir))
    assert result.returncode == 0, result.stderr
    assert (workdir / "datasets/facades/trainA/a.png").read_bytes() == expected["trainA/a.png"]
    result = run_download(MODEL_SCRIPTS["cyclegan"], "zebra2horse", cwd=workdir, base_url=base_url,
                          path=str(bin_dir))
    assert "error: could not download" in result.stderr and "such as 404" in result.stderr
    assert not (workdir / "checkpoints").exists()


@pytest.mark.parametrize("script", EXAMPLE_SCRIPTS + list(DATASET_SCRIPTS.values())
                         + list(MODEL_SCRIPTS.values()) + ["scripts/_download.sh"])
def test_shell_scripts_parse(script):
    assert subprocess.run(["bash", "-n", str(REPO_ROOT / script)]).returncode == 0


@pytest.mark.parametrize("script, entry, model", [
    ("scripts/train_cyclegan.sh", "train.py", "cycle_gan"), ("scripts/test_cyclegan.sh", "test.py", "cycle_gan"),
    ("scripts/train_pix2pix.sh", "train.py", "pix2pix"), ("scripts/test_pix2pix.sh", "test.py", "pix2pix"),
    ("scripts/test_single.sh", "test.py", "test"), ("scripts/train_colorization.sh", "train.py", "colorization"),
    ("scripts/test_colorization.sh", "test.py", "colorization")])
def test_example_scripts_call_our_entry_points(tmp_path, script, entry, model):
    # a fake python records the command line instead of training
    fake = tmp_path / "fake_python"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    result = subprocess.run(["bash", str(REPO_ROOT / script), "--gpu_ids", "-1"], cwd=tmp_path,
                            env=dict(os.environ, PYTHON=str(fake)), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    argv = result.stdout.splitlines()
    assert os.path.realpath(argv[0]) == str(REPO_ROOT / entry)
    assert argv[argv.index("--model") + 1] == model
    assert argv[-2:] == ["--gpu_ids", "-1"]  # extra flags are passed on last, so they win


# ---------------------------------------------------------------- combine_A_and_B.py

def pixels(path):
    """A picture file as an int array."""
    return np.asarray(Image.open(path).convert("RGB"), dtype=int)


@pytest.mark.parametrize("extra", [[], ["--no_multiprocessing"]])
def test_combine_puts_a_left_of_b_for_every_split(tmp_path, extra):
    fold_a, fold_b, fold_ab = tmp_path / "A", tmp_path / "B", tmp_path / "AB"
    for split, count in (("train", 3), ("test", 2)):
        write_images(fold_a / split, count, size=(40, 36), seed=1)
        write_images(fold_b / split, count, size=(40, 36), seed=2)
    result = run_script("datasets/combine_A_and_B.py", "--fold_A", fold_a, "--fold_B", fold_b,
                        "--fold_AB", fold_ab, *extra, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (fold_ab / "train").iterdir()) == ["img_000.png", "img_001.png", "img_002.png"]
    assert len(list((fold_ab / "test").iterdir())) == 2
    combined = pixels(fold_ab / "train" / "img_001.png")
    assert combined.shape == (36, 80, 3)
    assert np.array_equal(combined[:, :40], pixels(fold_a / "train" / "img_001.png"))
    assert np.array_equal(combined[:, 40:], pixels(fold_b / "train" / "img_001.png"))


def test_combine_resizes_b_skips_unpaired_and_honours_num_imgs(tmp_path):
    fold_a, fold_b, fold_ab = tmp_path / "A", tmp_path / "B", tmp_path / "AB"
    write_images(fold_a / "train", 3, size=(40, 36))
    write_images(fold_b / "train", 2, size=(20, 50))  # img_002 has no partner, B is another size
    write_images(fold_a / "val", 3, size=(32, 32))
    write_images(fold_b / "val", 3, size=(32, 32))
    result = run_script("datasets/combine_A_and_B.py", "--fold_A", fold_a, "--fold_B", fold_b,
                        "--fold_AB", fold_ab, "--no_multiprocessing", "--num_imgs", 3, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (fold_ab / "train").iterdir()) == ["img_000.png", "img_001.png"]
    assert pixels(fold_ab / "train" / "img_000.png").shape == (36, 80, 3)
    assert "warning: train: 1 A pictures have no partner" in result.stderr and "img_002.png" in result.stderr
    assert "note: train: 2 B pictures" in result.stderr
    result = run_script("datasets/combine_A_and_B.py", "--fold_A", fold_a, "--fold_B", fold_b,
                        "--fold_AB", tmp_path / "AB1", "--num_imgs", 1, cwd=tmp_path)
    assert [len(list((tmp_path / "AB1" / split).iterdir())) for split in ("train", "val")] == [1, 1]


def test_combine_use_ab_pairs_marked_names(tmp_path):
    fold_a, fold_b, fold_ab = tmp_path / "A", tmp_path / "B", tmp_path / "AB"
    write_images(fold_a / "train", 2, prefix="shot", seed=1)
    write_images(fold_b / "train", 2, prefix="shot", seed=2)
    for fold, side in ((fold_a, "A"), (fold_b, "B")):
        for path in (fold / "train").iterdir():
            path.rename(path.with_name(f"{path.stem}_{side}{path.suffix}"))
    result = run_script("datasets/combine_A_and_B.py", "--fold_A", fold_a, "--fold_B", fold_b,
                        "--fold_AB", fold_ab, "--use_AB", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (fold_ab / "train").iterdir()) == ["shot_000.png", "shot_001.png"]
    assert np.array_equal(pixels(fold_ab / "train" / "shot_000.png")[:, 40:],
                          pixels(fold_b / "train" / "shot_000_B.png"))


@pytest.mark.parametrize("missing", ["A", "B", "splits", "partners"])
def test_combine_input_mistakes_give_one_error_line(tmp_path, missing):
    fold_a, fold_b = tmp_path / "A", tmp_path / "B"
    if missing != "A":
        write_images(fold_a / ("train" if missing != "splits" else "."), 2, prefix="a")
    if missing != "B":
        write_images(fold_b / ("train" if missing != "splits" else "."), 2, prefix="b")
    result = run_script("datasets/combine_A_and_B.py", "--fold_A", fold_a, "--fold_B", fold_b,
                        "--fold_AB", tmp_path / "AB", cwd=tmp_path)
    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "AB").exists()


def test_combine_unreadable_picture_is_a_user_error(tmp_path):
    fold_a, fold_b = tmp_path / "A", tmp_path / "B"
    write_images(fold_a / "train", 1)
    (fold_b / "train").mkdir(parents=True)
    (fold_b / "train" / "img_000.png").write_bytes(b"not a png")
    result = run_script("datasets/combine_A_and_B.py", "--fold_A", fold_a, "--fold_B", fold_b,
                        "--fold_AB", tmp_path / "AB", cwd=tmp_path)
    assert result.returncode == 2
    assert "cannot read the picture" in result.stderr and "Traceback" not in result.stderr


# ---------------------------------------------------------------- make_dataset_aligned.py

def test_make_dataset_aligned_pairs_in_sorted_order(tmp_path):
    root = tmp_path / "data"
    write_images(root / "trainA", 3, size=(40, 36), seed=1, prefix="p")
    write_images(root / "trainB", 3, size=(40, 36), seed=2, prefix="q")
    write_images(root / "testA", 2, size=(40, 36), seed=3, prefix="p")
    write_images(root / "testB", 2, size=(24, 24), seed=4, prefix="q")
    for path in (root / "trainA").iterdir():
        path.rename(path.with_name(f"{path.stem}_A{path.suffix}"))
    result = run_script("datasets/make_dataset_aligned.py", "--dataset-path", root, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (root / "train").iterdir()) == ["p_000.png", "p_001.png", "p_002.png"]
    combined = pixels(root / "train" / "p_002.png")
    assert combined.shape == (36, 80, 3)
    assert np.array_equal(combined[:, :40], pixels(root / "trainA" / "p_002_A.png"))
    assert np.array_equal(combined[:, 40:], pixels(root / "trainB" / "q_002.png"))
    assert pixels(root / "test" / "p_000.png").shape == (36, 80, 3)  # B resized to A's size
    assert not (root / "val").exists()


@pytest.mark.parametrize("layout", ["no folder", "no splits", "uneven counts"])
def test_make_dataset_aligned_mistakes_give_one_error_line(tmp_path, layout):
    root = tmp_path / "data"
    if layout == "no splits":
        write_images(root / "trainA", 2)
    if layout == "uneven counts":
        write_images(root / "trainA", 2)
        write_images(root / "trainB", 3)
    result = run_script("datasets/make_dataset_aligned.py", "--dataset-path", root, cwd=tmp_path)
    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and "Traceback" not in result.stderr
    assert not (root / "train").exists()


# ---------------------------------------------------------------- make_demo_dataset.py

def demo_pictures(folder):
    """The pictures of a demo folder as uint8 arrays, in file-name order."""
    return [np.asarray(Image.open(path)) for path in sorted(folder.iterdir())]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A tiny demo dataset made with seed 3, plus the finished process."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    result = run_script("datasets/make_demo_dataset.py", "--out", out, "--n_train", 5, "--n_test", 2,
                        "--size", 64, "--seed", 3, "--aligned", cwd=out.parent)
    return out, result


def test_demo_dataset_layout_counts_and_sizes(demo):
    out, result = demo
    assert result.returncode == 0, result.stderr
    counts = {"trainA": 5, "trainB": 5, "testA": 2, "testB": 2}
    for name, count in counts.items():
        pictures = demo_pictures(out / name)
        assert len(pictures) == count
        assert all(picture.shape == (64, 64, 3) and picture.dtype == np.uint8 for picture in pictures)
        assert f"wrote {count} pictures to" in result.stdout
    assert [len(demo_pictures(out.parent / "demo_aligned" / split)) for split in ("train", "test")] == [5, 2]
    assert "python train.py --dataroot" in result.stdout


def test_demo_pictures_are_varied_and_b_looks_wintry(demo):
    out, _ = demo
    train_a, train_b = demo_pictures(out / "trainA"), demo_pictures(out / "trainB")
    assert len({picture.tobytes() for picture in train_a + train_b}) == len(train_a) + len(train_b)

    def blueness(pictures):
        stack = np.stack(pictures).astype(float)
        return (stack[..., 2] - stack[..., 0]).mean()

    def saturation(pictures):
        stack = np.stack(pictures).astype(float)
        return (stack.max(axis=-1) - stack.min(axis=-1)).mean()
    assert blueness(train_b) > blueness(train_a) + 5
    assert saturation(train_b) < 0.7 * saturation(train_a)


def test_demo_test_split_is_paired_by_name_and_the_training_split_is_not(demo):
    """testB/x.png is the winter look of testA/x.png pixel for pixel: every test output has its truth."""
    out, _ = demo
    sys.path.insert(0, str(REPO_ROOT / "datasets"))
    from make_demo_dataset import winter_look
    test_a, test_b = sorted((out / "testA").iterdir()), sorted((out / "testB").iterdir())
    assert [path.name for path in test_a] == [path.name for path in test_b] == ["0000.png", "0001.png"]
    for a, b in zip(test_a, test_b):
        assert np.array_equal(np.asarray(winter_look(Image.open(a).convert("RGB"))), np.asarray(Image.open(b)))
    train_a, train_b = demo_pictures(out / "trainA"), demo_pictures(out / "trainB")
    assert not any(np.array_equal(np.asarray(winter_look(Image.fromarray(a))), b) for a, b in zip(train_a, train_b))


def test_demo_aligned_pairs_are_a_crop_and_its_winter_version(demo):
    out, _ = demo
    sys.path.insert(0, str(REPO_ROOT / "datasets"))
    from make_demo_dataset import winter_look
    pair = np.asarray(Image.open(out.parent / "demo_aligned" / "train" / "0000.png"))
    assert pair.shape == (64, 128, 3)
    assert np.array_equal(np.asarray(winter_look(Image.fromarray(pair[:, :64]))), pair[:, 64:])


def test_demo_dataset_is_deterministic_per_seed(demo, tmp_path):
    out, _ = demo
    again, other = tmp_path / "again", tmp_path / "other"
    for folder, seed in ((again, 3), (other, 4)):
        result = run_script("datasets/make_demo_dataset.py", "--out", folder, "--n_train", 5, "--n_test", 2,
                            "--size", 64, "--seed", seed, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    def content(folder):
        return [picture.tobytes() for picture in demo_pictures(folder)]
    for name in ("trainA", "trainB", "testA", "testB"):
        assert content(again / name) == content(out / name)
    assert content(other / "trainA") != content(out / "trainA")


def test_demo_dataset_refuses_to_mix_with_an_earlier_one_unless_overwriting(tmp_path):
    def make(n_train, *extra):
        return run_script("datasets/make_demo_dataset.py", "--out", tmp_path / "demo", "--n_train", n_train,
                          "--n_test", 1, "--size", 32, *extra, cwd=tmp_path)
    assert make(3).returncode == 0
    refused = make(2)
    assert refused.returncode == 2 and "--overwrite" in refused.stderr
    assert len(list((tmp_path / "demo" / "trainA").iterdir())) == 3
    assert make(2, "--overwrite").returncode == 0
    assert len(list((tmp_path / "demo" / "trainA").iterdir())) == 2  # no stale pictures from the first run


def test_demo_dataset_without_photo_sources_fails_clearly(tmp_path):
    # shadow both packages with ones that cannot be imported
    for package in ("skimage", "sklearn"):
        (tmp_path / "blocked" / package).mkdir(parents=True)
        (tmp_path / "blocked" / package / "__init__.py").write_text("raise ImportError('blocked by the test')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "blocked"))
    result = subprocess.run([sys.executable, str(REPO_ROOT / "datasets/make_demo_dataset.py"), "--out",
                             tmp_path / "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("error: no source photos could be loaded") and "Traceback" not in result.stderr
    assert not (tmp_path / "demo").exists()
