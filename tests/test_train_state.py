"""Training-state files: pruning, free-space and failing saves, picking the state to resume from."""
import os
import time
from collections import namedtuple

import pytest
import torch

from conftest import run_script
from util import train_state
from util.errors import UserError

TINY = ["--ngf", "4", "--ndf", "4", "--netG", "resnet_6blocks", "--gpu_ids", "-1", "--display_id", "0",
        "--num_threads", "0", "--load_size", "36", "--crop_size", "32", "--n_epochs_decay", "0", "--seed", "1"]


def train(tmp_path, root, *flags):
    result = run_script("train.py", "--dataroot", root, "--name", "run", "--checkpoints_dir", tmp_path / "ck",
                        *TINY, *flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def touch(folder, names):
    for name in names:
        (folder / name).write_bytes(b"x")
        time.sleep(0.01)  # distinct modification times


def test_prune_keeps_the_newest_saves_latest_and_the_newest_state(tmp_path):
    touch(tmp_path, [f"{epoch}_net_G.pth" for epoch in range(1, 6)] + [f"iter_{n}_net_G.pth" for n in (10, 20, 30)])
    touch(tmp_path, [f"{epoch}_state.pth" for epoch in (5, 2, 3, 4)] + ["latest_net_G.pth", "latest_state.pth"])
    touch(tmp_path, ["1_state.pth"])  # the newest state file: its save is never pruned
    train_state.prune_checkpoints(str(tmp_path), keep_last=2)
    assert sorted(os.listdir(tmp_path)) == sorted([
        "1_net_G.pth", "1_state.pth", "4_net_G.pth", "4_state.pth", "5_net_G.pth", "5_state.pth", "iter_20_net_G.pth",
        "iter_30_net_G.pth", "latest_net_G.pth", "latest_state.pth"])


def test_keep_last_in_a_run(tmp_path, unaligned_root):
    train(tmp_path, unaligned_root, "--n_epochs", "4", "--save_epoch_freq", "1", "--keep_last", "2")
    names = sorted(os.listdir(tmp_path / "ck" / "run"))
    assert [n for n in names if n[0].isdigit()] == [f"{e}_net_{net}.pth" for e in (3, 4)
                                                    for net in ("D_A", "D_B", "G_A", "G_B")]
    assert "latest_state.pth" in names


def test_a_save_without_free_space_is_refused_and_keeps_the_previous_one(tmp_path, monkeypatch):
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(train_state.shutil, "disk_usage", lambda folder: Usage(10 ** 9, 10 ** 9, 1024))
    with pytest.raises(UserError, match=r"only 0 MiB free .* free disk space \(the previous checkpoint is intact\)"):
        train_state.check_free_space(str(tmp_path), 10 ** 6)


def test_a_failing_periodic_save_costs_one_line_and_training_goes_on(tmp_path, unaligned_root):
    (tmp_path / "ck" / "run" / "iter_2_net_D_A.pth").mkdir(parents=True)  # something in the way of that save
    result = train(tmp_path, unaligned_root, "--n_epochs", "1", "--save_by_iter", "--save_latest_freq", "2")
    failures = [line for line in result.stderr.splitlines() if "iter_2_net_D_A.pth" in line]
    assert len(failures) == 1 and failures[0].startswith("warning: could not write")
    assert "Traceback" not in result.stderr
    folder = tmp_path / "ck" / "run"
    assert not (folder / "iter_2_net_G_A.pth").exists()  # nothing of the failed save is in place
    assert (folder / "iter_4_net_G_A.pth").is_file() and (folder / "latest_state.pth").is_file()
    assert not list(folder.glob(".tmp_*")) and not list(folder.glob("iter_*_state.pth"))


def test_continue_finds_the_newest_state_without_epoch_count(tmp_path, unaligned_root):
    train(tmp_path, unaligned_root, "--n_epochs", "2")
    result = train(tmp_path, unaligned_root, "--n_epochs", "3", "--continue_train")
    assert "continuing from" in result.stdout and "epoch 3, 0 images into it" in result.stdout
    assert "epoch 3/3" in result.stderr and "epoch 1/3" not in result.stderr
    state = torch.load(tmp_path / "ck" / "run" / "latest_state.pth", weights_only=True)
    assert state["progress"]["epoch"] == 4 and state["progress"]["total_iters"] == 12


def test_continue_from_weights_only_as_the_original_tool_saved_them(tmp_path, unaligned_root):
    train(tmp_path, unaligned_root, "--n_epochs", "1")
    for path in (tmp_path / "ck" / "run").glob("*_state.pth"):
        path.unlink()
    result = train(tmp_path, unaligned_root, "--n_epochs", "2", "--continue_train", "--epoch_count", "2")
    assert "no training state: optimisers restart" in result.stdout and "epoch 2/2" in result.stderr


def test_a_damaged_newest_state_is_skipped_for_an_older_one(tmp_path):
    older = tmp_path / "1_state.pth"
    torch.save({"progress": {"epoch": 2}}, older)
    time.sleep(0.01)
    (tmp_path / "latest_state.pth").write_bytes(b"damaged")
    path, state = train_state.find_resume_state(str(tmp_path), "latest")
    assert path == str(older) and state["progress"]["epoch"] == 2
