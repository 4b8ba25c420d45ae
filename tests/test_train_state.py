"""Training-state files: pruning, disk use, full disks and failing saves, picking the state to resume from and
putting its weights files back in order."""
import os
import re
import shutil
import time
from collections import namedtuple

import pytest
import torch

from conftest import run_script
from engine import train_state
from util.errors import UserError

TINY = ["--ngf", "4", "--ndf", "4", "--netG", "resnet_6blocks", "--gpu_ids", "-1", "--display_id", "0",
        "--num_threads", "0", "--load_size", "36", "--crop_size", "32", "--n_epochs_decay", "0", "--seed", "1"]


def train(tmp_path, root, *flags):
    result = run_script("train.py", "--dataroot", root, "--name", "run", "--checkpoints_dir", tmp_path / "ck",
                        *TINY, *flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def copy_of_finished_run(tmp_path, finished_run, root, *flags):
    """Put in tmp_path/ck a copy of the run `train` makes with `flags`, trained once in this module (the
    tests that change such a run each start from their own copy)."""
    shutil.copytree(finished_run("--dataroot", root, "--name", "run", *TINY, *flags), tmp_path / "ck")


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


def test_continue_finds_the_newest_state_without_epoch_count(tmp_path, finished_run, shared_unaligned_root):
    copy_of_finished_run(tmp_path, finished_run, shared_unaligned_root, "--n_epochs", "2")
    result = train(tmp_path, shared_unaligned_root, "--n_epochs", "3", "--continue_train")
    assert "continuing from" in result.stdout and "epoch 3, 0 images into it" in result.stdout
    assert "epoch 3/3" in result.stderr and "epoch 1/3" not in result.stderr
    state = torch.load(tmp_path / "ck" / "run" / "latest_state.pth", weights_only=True)
    assert state["progress"]["epoch"] == 4 and state["progress"]["total_iters"] == 12


def test_continue_from_weights_only_as_the_original_tool_saved_them(tmp_path, finished_run, shared_unaligned_root):
    copy_of_finished_run(tmp_path, finished_run, shared_unaligned_root, "--n_epochs", "1")
    for path in (tmp_path / "ck" / "run").glob("*_state.pth"):
        path.unlink()
    result = train(tmp_path, shared_unaligned_root, "--n_epochs", "2", "--continue_train", "--epoch_count", "2")
    assert "no training state: optimisers restart" in result.stdout and "epoch 2/2" in result.stderr


def test_a_damaged_newest_state_is_skipped_for_an_older_one(tmp_path):
    older = tmp_path / "1_state.pth"
    torch.save({"progress": {"epoch": 2}}, older)
    time.sleep(0.01)
    (tmp_path / "latest_state.pth").write_bytes(b"damaged")
    path, state = train_state.find_resume_state(str(tmp_path), "latest")
    assert path == str(older) and state["progress"]["epoch"] == 2


def weights_equal_state(folder, prefix, state):
    """Whether every <prefix>_net_<name>.pth holds exactly the networks of `state`."""
    for name, weights in state["model"]["networks"].items():
        saved = torch.load(folder / f"{prefix}_net_{name}.pth", weights_only=True)
        if saved.keys() != weights.keys() or not all(torch.equal(saved[k], weights[k]) for k in weights):
            return False
    return True


def test_resume_puts_back_the_weights_a_killed_final_save_did_not_write(tmp_path, finished_run,
                                                                        shared_unaligned_root):
    # What a kill between the files of the last save used to leave: a state past the last epoch
    # whose weights files are missing, damaged, or from a save that never completed.
    copy_of_finished_run(tmp_path, finished_run, shared_unaligned_root, "--n_epochs", "2")
    folder = tmp_path / "ck" / "run"
    (folder / "2_net_G_A.pth").unlink()
    (folder / "latest_net_D_B.pth").write_bytes(b"half written")
    torch.save([1, 2], folder / "latest_net_G_B.pth")  # loads, but holds no weights
    (folder / "3_net_G_B.pth").write_bytes((folder / "2_net_G_B.pth").read_bytes())
    result = train(tmp_path, shared_unaligned_root, "--n_epochs", "2", "--continue_train")
    rewritten = re.findall(r"rewrote .*/(\S+) from the training state", result.stdout)
    assert sorted(rewritten) == ["2_net_G_A.pth", "latest_net_D_B.pth", "latest_net_G_B.pth"]
    assert re.search(r"removed .*3_net_G_B.pth: the save it belongs to never completed", result.stdout)
    assert "training finished" in result.stdout and not (folder / "3_net_G_B.pth").exists()
    state = torch.load(folder / "latest_state.pth", weights_only=True)
    assert weights_equal_state(folder, "2", state) and weights_equal_state(folder, "latest", state)


def test_numbered_saves_hold_only_the_weights(tmp_path, unaligned_root):
    result = train(tmp_path, unaligned_root, "--n_epochs", "3", "--save_epoch_freq", "1")
    folder = tmp_path / "ck" / "run"
    weights = sum(path.stat().st_size for path in folder.glob("latest_net_*.pth"))
    for epoch in (1, 2, 3):
        assert sum(path.stat().st_size for path in folder.glob(f"{epoch}_*")) == weights
    assert [path.name for path in folder.glob("*_state.pth")] == ["latest_state.pth"]
    assert re.search(r"^disk: 3 numbered save\(s\) of .* MB each \(weights only\), plus latest: .* of weights and "
                     r"about .* of training state; about .* in all, .* free in ", result.stdout, re.M)


def test_the_disk_plan_warns_when_the_space_will_not_last(tmp_path, unaligned_root, monkeypatch):
    from types import SimpleNamespace
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(train_state.shutil, "disk_usage", lambda folder: Usage(10 ** 9, 10 ** 9, 10 ** 5))
    model = SimpleNamespace(optimizers=[], image_pools=lambda: {}, networks=lambda: {"G": torch.nn.Linear(100, 100)},
                            averaged_networks=lambda: {}, average=None)
    opt = SimpleNamespace(checkpoints_dir=str(tmp_path), name="run", n_epochs=10, n_epochs_decay=10,
                          save_epoch_freq=5, save_by_iter=False, save_latest_freq=4, keep_last=0, input_nc=3,
                          output_nc=3, crop_size=32, world_size=1)
    (tmp_path / "run").mkdir()
    records = []
    monkeypatch.setattr(train_state.logger, "warning", records.append)
    train_state.report_disk_plan(model, opt, train_state.Progress(epoch=1), images_per_epoch=8)
    assert len(records) == 1 and "free disk space, or save less with --keep_last" in records[0]
    # 4 epoch saves (5, 10, 15, 20); with --save_by_iter also one per 4 images (84, 88, ..., 160 from image 81).
    assert train_state.numbered_saves_left(opt, train_state.Progress(epoch=1), 8) == (4, 4)
    opt.save_by_iter, opt.keep_last = True, 10
    assert train_state.numbered_saves_left(opt, train_state.Progress(epoch=11, total_iters=81), 8) == (2 + 20, 10)
    opt.save_latest_freq = 0  # no periodic saves at all
    assert train_state.numbered_saves_left(opt, train_state.Progress(epoch=11, total_iters=81), 8) == (2, 2)


def test_a_disk_that_fills_up_fails_periodic_saves_with_a_warning_and_the_final_save_with_exit_2(
        tmp_path, finished_run, shared_unaligned_root):
    copy_of_finished_run(tmp_path, finished_run, shared_unaligned_root, "--n_epochs", "1")
    folder = tmp_path / "ck" / "run"
    before = {path.name: path.read_bytes() for path in folder.glob("*.pth")}
    result = run_script("train.py", "--dataroot", shared_unaligned_root, "--name", "run", "--checkpoints_dir",
                        tmp_path / "ck", *TINY, "--n_epochs", "2", "--continue_train", "--save_latest_freq", "2",
                        cwd=tmp_path, file_size_limit=len(before["latest_state.pth"]) - 1)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    periodic = [line for line in result.stderr.splitlines() if line.startswith("warning: could not write")]
    assert len(periodic) == 2 and all("latest_state.pth (File too large)" in line for line in periodic)
    assert re.fullmatch(r"error: could not write .*latest_state.pth \(File too large\); free disk space, raise the "
                        r"quota or fix the folder's permissions \(the previous checkpoint is intact\)",
                        result.stderr.strip().splitlines()[-1])
    assert {path.name: path.read_bytes() for path in folder.glob("*.pth")} == before  # nothing written, nothing lost
    assert not list(folder.glob(".tmp_*"))
