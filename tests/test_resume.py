"""Exact resume: interrupted (signal or SIGKILL) and resumed runs end bit-identical to straight runs."""
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO_ROOT, write_images

BASE = ["--ngf", "4", "--ndf", "4", "--gpu_ids", "-1", "--display_id", "0", "--seed", "3", "--deterministic",
        "--load_size", "36", "--crop_size", "32", "--print_freq", "1", "--save_latest_freq", "1",
        "--num_threads", "1", "--netG", "resnet_6blocks", "--pool_size", "3"]


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "data"
    write_images(root / "trainA", 4, seed=1)
    write_images(root / "trainB", 3, seed=2)
    return root


def command(tmp_path, dataset, name, epochs, *extra):
    return [sys.executable, str(REPO_ROOT / "train.py"), "--dataroot", str(dataset), "--name", name,
            "--checkpoints_dir", str(tmp_path / "ck"), "--n_epochs", str(epochs), "--n_epochs_decay", "1",
            *BASE, *extra]


STARTED = []


@pytest.fixture(autouse=True)
def no_process_left_behind():
    """Kill every training process a test started, whatever the test's outcome."""
    yield
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def start(cmd, tmp_path, **streams):
    streams = streams or dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process = subprocess.Popen(cmd, cwd=tmp_path, text=True, start_new_session=True,
                               env=dict(os.environ, PYTHONUNBUFFERED="1"), **streams)
    STARTED.append(process)
    return process


def wait_for_loss_line(process):
    """Block until the process has printed its first loss line (training is under way)."""
    for line in process.stdout:
        if line.startswith("(epoch:"):
            return line
    raise AssertionError("training printed no loss line:\n" + process.stderr.read())


def run_to_end(cmd, tmp_path):
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def load_state(tmp_path, name):
    return torch.load(tmp_path / "ck" / name / "latest_state.pth", weights_only=True)


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


def assert_same_run(tmp_path, straight, resumed):
    a, b = load_state(tmp_path, straight), load_state(tmp_path, resumed)
    for part in ("model", "progress", "data", "rng"):
        assert_identical(a[part], b[part], part)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_then_resume_is_bit_identical(tmp_path, dataset, signum):
    run_to_end(command(tmp_path, dataset, "straight", 2), tmp_path)
    process = start(command(tmp_path, dataset, "stopped", 2), tmp_path)
    wait_for_loss_line(process)
    sent = time.time()
    os.killpg(process.pid, signum)  # to the whole group, as Ctrl-C in a terminal does (workers included)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-3000:]
    assert time.time() - sent < 10
    assert f"stopped by {signal.Signals(signum).name}" in out and "Traceback" not in err
    resume_line = next(line for line in out.splitlines() if line.startswith("resume with: "))
    assert "--continue_train" in resume_line and "train.py" in resume_line
    state = load_state(tmp_path, "stopped")
    assert state["progress"]["total_iters"] < 12  # it really stopped early (3 epochs x 4 images)
    result = run_to_end(command(tmp_path, dataset, "stopped", 2, "--continue_train"), tmp_path)
    assert "continuing from" in result.stdout
    assert_same_run(tmp_path, "straight", "stopped")


def test_second_ctrl_c_exits_at_once(tmp_path, dataset):
    # Iterations of about a second, so that both signals land in the same one.
    slow = ["--ngf", "32", "--ndf", "32", "--load_size", "128", "--crop_size", "128"]
    process = start(command(tmp_path, dataset, "twice", 50, *slow), tmp_path,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_for_loss_line(process)
    os.killpg(process.pid, signal.SIGINT)
    assert any("SIGINT received" in line for line in process.stdout)  # the first one is acknowledged
    sent = time.time()
    os.killpg(process.pid, signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 130 and time.time() - sent < 5
    assert "stopped at once" in out and "Traceback" not in out


def test_sigkill_at_random_moments_always_leaves_a_loadable_state(tmp_path, dataset):
    epochs = 12  # 13 epochs x 4 images = 52 iterations, each followed by a save
    run_to_end(command(tmp_path, dataset, "straight", epochs), tmp_path)
    rng = random.Random(0)
    kills = 0
    resumed = command(tmp_path, dataset, "killed", epochs, "--continue_train")
    process = start(command(tmp_path, dataset, "killed", epochs), tmp_path)
    while kills < 20:
        try:
            wait_for_loss_line(process)
        except AssertionError:
            break  # finished before we could kill it
        time.sleep(rng.uniform(0.0, 0.25))
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        kills += 1
        state = load_state(tmp_path, "killed")  # loadable after every kill, whatever it interrupted
        assert state["progress"]["total_iters"] > 0
        process = start(resumed, tmp_path)
    process.communicate(timeout=600)
    assert process.returncode == 0
    assert kills == 20
    assert_same_run(tmp_path, "straight", "killed")
