"""Shared test fixtures: generated image folders and a helper that runs the CLI like a user."""
import contextlib
import functools
import importlib.util
import io
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# One compute thread per process, for the tests and every process they start (which inherit the
# environment): the tests' networks are tiny, where a second thread saves nothing, and the processes
# run side by side, so more threads than cores wait on each other (several times the CPU time on a
# busy machine). Set before torch is imported, which reads it once.
os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from prewarmed import run_prewarmed  # noqa: E402
from torch import nn  # noqa: E402

torch.set_num_threads(1)  # in case a plugin imported torch before this file set the environment

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))



@functools.cache
def entry_point(path):
    """The repository's script `path` (test.py, scripts/export.py) as a module, to call its functions."""
    spec = importlib.util.spec_from_file_location("entry_" + re.sub(r"\W", "_", path), REPO_ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def training_model(tmp_path, *flags):
    """A training model built and set up in this process as train.py builds it, from `flags` (with
    --dataroot and --checkpoints_dir in tmp_path); the printed options are silenced."""
    from models import create_model
    from options.train_options import TrainOptions

    with contextlib.redirect_stdout(io.StringIO()):
        opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--checkpoints_dir", str(tmp_path / "ck"),
                                    "--name", "m", *map(str, flags)])
    model = create_model(opt)
    model.setup()
    return model


def unchanged_after_a_step(model):
    """Train the CUT-family `model` one step on two random 32 px pairs; return the names of the parameters it did not
    change."""
    before = {f"{name}.{key}": p.detach().clone() for name, net in model.networks().items()
              for key, p in net.named_parameters()}
    generator = torch.Generator().manual_seed(0)
    model.set_input({"A": torch.rand(2, 3, 32, 32, generator=generator), "B": torch.rand(2, 3, 32, 32,
                     generator=generator), "A_paths": ["a0", "a1"]})
    model.optimize_parameters()
    after = {f"{name}.{key}": p for name, net in model.networks().items() for key, p in net.named_parameters()}
    return [key for key, value in before.items() if torch.equal(value, after[key])]


class LinearCritic(nn.Module):
    """D(x) = sum(w * x): its input gradient is w everywhere, so a gradient penalty (WGAN-GP, R1) is known exactly."""

    def __init__(self, weight):
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x):
        return (x * self.weight).flatten(1).sum(1)


def write_images(folder, count, size=(40, 36), mode="RGB", ext="png", seed=0, prefix="img"):
    """Write `count` smooth random pictures of `size` (w, h) into `folder`; return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    width, height = size
    for index in range(count):
        coarse = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        picture = Image.fromarray(coarse).resize((width, height), Image.BICUBIC).convert(mode)
        path = folder / f"{prefix}_{index:03d}.{ext}"
        picture.save(path)
        paths.append(path)
    return paths


def write_unaligned(root):
    """Write a tiny CycleGAN dataset into `root`: trainA/trainB/testA/testB with a few 40x36 pictures
    each; return `root`."""
    write_images(root / "trainA", 4, seed=1)
    write_images(root / "trainB", 3, seed=2)
    write_images(root / "testA", 3, seed=3)
    write_images(root / "testB", 2, seed=4)
    return root


@pytest.fixture
def unaligned_root(tmp_path):
    """A tiny CycleGAN dataset (see write_unaligned)."""
    return write_unaligned(tmp_path / "unaligned")


@pytest.fixture(scope="module")
def shared_unaligned_root(tmp_path_factory):
    """The dataset of unaligned_root, written once for a module's tests, which only read it."""
    return write_unaligned(tmp_path_factory.mktemp("unaligned"))


@pytest.fixture
def aligned_root(tmp_path):
    """A tiny pix2pix dataset: train/ and test/ with A|B pictures side by side (80x36)."""
    root = tmp_path / "aligned"
    write_images(root / "train", 3, size=(80, 36), seed=5)
    write_images(root / "test", 2, size=(80, 36), seed=6)
    return root


def run_script(script, *args, cwd, timeout=600, file_size_limit=None):
    """Run one of the repository's Python entry points as a user would; return the finished process. It
    starts with torch already imported (see prewarmed.py).

    file_size_limit: bytes no file of the process may grow beyond, as if the disk filled up there.
    """
    return run_prewarmed(REPO_ROOT / script, args, cwd, dict(os.environ, PYTHONUNBUFFERED="1"), timeout,
                         file_size_limit)


SIDE_BY_SIDE = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1))


def side_by_side(function, *args, **kwargs):
    """Start function(*args, **kwargs), typically run_script, in the background, beside the test and the
    other calls started so (as many at once as the machine has cores, up to 4); return its Future. A
    process the tests start spends seconds importing torch on one core, so independent ones started
    side by side use the cores the other left idle."""
    return SIDE_BY_SIDE.submit(function, *args, **kwargs)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """finished_run(*args): the --checkpoints_dir of a completed `train.py *args` run, trained once in
    the module, so that tests needing the same run share it. They only read it; a test that changes
    it works on a copy (shutil.copytree)."""
    folders = {}

    def checkpoints_dir(*args):
        key = tuple(map(str, args))
        if key not in folders:
            top = tmp_path_factory.mktemp("finished")
            result = run_script("train.py", *args, "--checkpoints_dir", top / "ck", cwd=top)
            assert result.returncode == 0, result.stderr[-3000:]
            folders[key] = top / "ck"
        return folders[key]
    return checkpoints_dir


STALL_HELPER = REPO_ROOT / "tests" / "helpers" / "stall"


def start_process(command, cwd, stall_at=None, **streams):
    """Start `command` in its own process group (so that os.killpg reaches its children), with text
    pipes unless `streams` says otherwise; stall_at: the moment of a save where it stalls until killed
    (see tests/helpers/stall/sitecustomize.py and wait_for_stall)."""
    streams = streams or dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if stall_at:
        env.update(STALL_AT=stall_at, PYTHONPATH=os.pathsep.join([str(STALL_HELPER), env.get("PYTHONPATH", "")]))
    return subprocess.Popen(list(map(str, command)), cwd=cwd, text=True, start_new_session=True, env=env, **streams)


def wait_for_stall(process):
    """Block until a process started with stall_at has stalled there."""
    for line in process.stderr:
        if line.startswith("stalled at "):
            return
    raise AssertionError("the process ended without reaching its stall point:\n" + process.stdout.read()[-3000:])


def assert_identical(a, b, path="state"):
    """Exact equality of nested states (tensors bit for bit)."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            assert_identical(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for index, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{path}[{index}]")
    else:
        assert a == b, path
