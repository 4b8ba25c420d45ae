"""Exact resume: interrupted (signal or SIGKILL) and resumed runs end bit-identical to straight runs."""
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO_ROOT, assert_identical, run_script, start_process, wait_for_stall, write_images

BASE = ["--ngf", "4", "--ndf", "4", "--gpu_ids", "-1", "--display_id", "0", "--seed", "3", "--deterministic",
        "--load_size", "36", "--crop_size", "32", "--print_freq", "1", "--save_latest_freq", "1",
        "--num_threads", "1", "--netG", "resnet_6blocks", "--pool_size", "3"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_images(root / "trainA", 4, seed=1)
    write_images(root / "trainB", 3, seed=2)
    return root


def train_args(dataset, name, epochs, *extra):
    return ["--dataroot", str(dataset), "--name", name, "--n_epochs", str(epochs), "--n_epochs_decay", "1", *BASE,
            *extra]


def command(tmp_path, dataset, name, epochs, *extra):
    return [sys.executable, str(REPO_ROOT / "train.py"), *train_args(dataset, name, epochs, *extra),
            "--checkpoints_dir", str(tmp_path / "ck")]


@pytest.fixture
def straight_run(tmp_path, dataset, finished_run):
    """straight_run(epochs, *flags): an uninterrupted run at tmp_path/ck/straight, to compare with: a link
    to the one made once in this module for those flags (tests interrupting the same run share it)."""
    def link(epochs, *flags):
        shared = finished_run(*train_args(dataset, "straight", epochs, *flags)) / "straight"
        (tmp_path / "ck").mkdir(exist_ok=True)
        (tmp_path / "ck" / "straight").symlink_to(shared, target_is_directory=True)
    return link


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


def start(cmd, tmp_path, stall_at=None, **streams):
    process = start_process(cmd, tmp_path, stall_at, **streams)
    STARTED.append(process)
    return process


def wait_for_loss_line(process):
    """Block until the process has printed its first loss line (training is under way)."""
    for line in process.stdout:
        if line.startswith("(epoch:"):
            return line
    raise AssertionError("training printed no loss line:\n" + process.stderr.read())


def run_to_end(cmd, tmp_path):
    """Run `cmd` (python, train.py, flags...) to its end; return the finished process."""
    result = run_script("train.py", *cmd[2:], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def load_state(tmp_path, name):
    return torch.load(tmp_path / "ck" / name / "latest_state.pth", weights_only=True)


def assert_same_run(tmp_path, straight, resumed):
    a, b = load_state(tmp_path, straight), load_state(tmp_path, resumed)
    for part in ("model", "progress", "data", "rng"):
        assert_identical(a[part], b[part], part)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_then_resume_is_bit_identical(tmp_path, dataset, straight_run, signum):
    straight_run(2)
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


def test_resume_from_the_save_at_an_epoch_end_is_bit_identical(tmp_path, dataset, straight_run):
    # The usual case with default flags: the only saves are those at the ends of epochs.
    flags = ["--save_latest_freq", "1000", "--save_epoch_freq", "1"]
    straight_run(1, *flags)
    process = start(command(tmp_path, dataset, "stopped", 1, *flags), tmp_path,
                    stall_at="after:1_net_D_B.pth,after:latest_state.pth")  # the epoch-1 save is complete
    wait_for_stall(process)
    kill(process)
    assert load_state(tmp_path, "stopped")["progress"]["epoch"] == 2
    run_to_end(command(tmp_path, dataset, "stopped", 1, *flags, "--continue_train"), tmp_path)
    assert_same_run(tmp_path, "straight", "stopped")


def test_resume_with_discriminator_regularisers_is_bit_identical(tmp_path, dataset):
    # DiffAugment's draws come from the saved random streams; lazy R1 (every 3 D steps) continues in
    # step with the saved step count: the kill comes after the second save, at 2 steps.
    flags = ["--diffaug", "color,translation,cutout", "--r1_gamma", "1", "--r1_every", "3", "--spectral_norm"]
    run_to_end(command(tmp_path, dataset, "straight", 1, *flags), tmp_path)
    process = start(command(tmp_path, dataset, "stopped", 1, *flags), tmp_path,
                    stall_at="after:latest_state.pth,after:latest_state.pth")
    wait_for_stall(process)
    kill(process)
    assert load_state(tmp_path, "stopped")["model"]["steps_taken"] == [2, 2]
    run_to_end(command(tmp_path, dataset, "stopped", 1, *flags, "--continue_train"), tmp_path)
    assert_same_run(tmp_path, "straight", "stopped")
    assert load_state(tmp_path, "stopped")["model"]["steps_taken"] == [8, 8]


def test_resume_with_ema_is_bit_identical_and_ema_leaves_training_alone(tmp_path, dataset, straight_run):
    # Killed inside its final save, with the averages of G_A and G_B renamed into place as
    # latest_net_G_A/G_B.pth but not the rest: the resumed run rewrites them from the state saved at the
    # end of epoch 1, whose averages and update count it goes on with.
    flags = ["--save_latest_freq", "1000", "--save_epoch_freq", "1"]
    straight_run(1, *flags)  # the same run without EMA
    flags += ["--ema_decay", "0.9"]
    process = start(command(tmp_path, dataset, "stopped", 1, *flags), tmp_path,
                    stall_at="after:latest_state.pth,after:latest_net_G_B.pth")
    run_to_end(command(tmp_path, dataset, "ema", 1, *flags), tmp_path)  # the uninterrupted run, meanwhile
    wait_for_stall(process)
    kill(process)
    result = run_to_end(command(tmp_path, dataset, "stopped", 1, *flags, "--continue_train"), tmp_path)
    assert [line.split("/")[-1] for line in result.stdout.splitlines() if line.startswith("rewrote ")] == \
        ["latest_net_G_A.pth from the training state (a save was interrupted or the file damaged)",
         "latest_net_G_B.pth from the training state (a save was interrupted or the file damaged)"]
    assert_same_run(tmp_path, "ema", "stopped")
    ema, plain = load_state(tmp_path, "ema"), load_state(tmp_path, "straight")
    assert ema["model"].pop("ema")["updates"] == 8  # one per generator step: 2 epochs x 4 images
    for part in ("model", "progress", "rng"):  # the averages change nothing of the training itself
        assert_identical(ema[part], plain[part], part)


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


def kill(process):
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def assert_weights_match_state(folder, prefix, state):
    for name, weights in state["model"]["networks"].items():
        assert_identical(torch.load(folder / f"{prefix}_net_{name}.pth", weights_only=True), weights, prefix + name)


# Kills aimed inside saves: each resumed process stalls at one moment of a save (see start) and is
# killed there. In the process's second save: after every temporary file is written, none renamed;
# with part of the weights renamed; with every weights file renamed but not the state.
AIMED_MID_RUN = ["after:latest_state.pth,before:latest_net_G_A.pth", "after:latest_state.pth,after:latest_net_G_B.pth",
                 "after:latest_state.pth,before:latest_state.pth",
                 "after:5_net_D_A.pth"]  # inside the epoch-5 save, between its numbered weights files


def aimed_at_final_save(last):
    """Moments inside the final save (the only one with <last epoch>_net_* files)."""
    numbered_done = f"after:{last}_net_D_B.pth"
    return [f"before:{last}_net_G_A.pth", f"after:{last}_net_G_B.pth", numbered_done,
            f"{numbered_done},after:latest_net_G_A.pth", f"{numbered_done},before:latest_state.pth",
            f"{numbered_done},after:latest_state.pth"]  # committed, killed before it could say so


def test_sigkill_in_saves_and_at_random_moments_always_resumes_to_the_same_run(tmp_path, dataset, straight_run):
    # 21 epochs x 4 images = 84 iterations, each followed by a save; epochs 5, 10, 15, 20 and 21 numbered.
    # Enough that even a fast machine, going a few iterations further at each random kill, still
    # has the final save ahead when the kills aimed at it come.
    epochs = 20
    last = epochs + 1
    straight_run(epochs)
    folder = tmp_path / "ck" / "killed"
    resumed = command(tmp_path, dataset, "killed", epochs, "--continue_train")
    rng = random.Random(0)
    # None: a kill at a random moment, within 10 ms of a loss line (inside that iteration's save or
    # the next iterations).
    plan = AIMED_MID_RUN + [None] * 10 + aimed_at_final_save(last)
    kills = 0
    process = start(command(tmp_path, dataset, "killed", epochs), tmp_path, stall_at=AIMED_MID_RUN[0])
    for index, stall_at in enumerate(plan):
        if stall_at:
            wait_for_stall(process)
        else:
            wait_for_loss_line(process)
            time.sleep(rng.uniform(0.0, 0.01))
        kill(process)
        kills += 1
        state = load_state(tmp_path, "killed")  # loadable after every kill, whatever it interrupted
        assert state["progress"]["total_iters"] > 0
        process = start(resumed, tmp_path, stall_at=plan[index + 1] if index + 1 < len(plan) else None)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    assert kills == len(plan) >= 20 and "training finished" in out
    assert_same_run(tmp_path, "straight", "killed")
    state = load_state(tmp_path, "killed")
    assert_weights_match_state(folder, "latest", state)  # the finished run's weights are its final state's
    assert_weights_match_state(folder, str(last), state)
    for prefix in ("5", "10", "15", "20", str(last)):  # each numbered save complete, equal to the straight run's
        for name in state["model"]["networks"]:
            assert_identical(torch.load(folder / f"{prefix}_net_{name}.pth", weights_only=True),
                             torch.load(tmp_path / "ck" / "straight" / f"{prefix}_net_{name}.pth", weights_only=True))
    assert not list(folder.glob(".tmp_*"))
    assert [path.name for path in folder.glob("*_state.pth")] == ["latest_state.pth"]
