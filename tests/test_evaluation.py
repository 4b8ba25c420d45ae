"""Evaluation during training (--eval_freq): what is logged, the best checkpoint, the cache of real
features, resuming with a best score, bad flags, and that evaluating leaves training untouched."""
import json
import re

import numpy as np
import pytest
import torch
from test_end_to_end import NETS, run_test, train

from conftest import run_script, write_images


def evaluations(run_dir):
    """The evaluation records of a run's loss_log.jsonl."""
    records = [json.loads(line) for line in (run_dir / "loss_log.jsonl").read_text().splitlines()]
    return [record for record in records if record.get("kind") == "evaluation"]


def weights(path):
    return torch.load(path, weights_only=True)


def same_weights(path_a, path_b):
    a, b = weights(path_a), weights(path_b)
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def test_every_epoch_logs_metrics_and_keeps_the_best_weights(tmp_path, unaligned_root):
    result = train(tmp_path, unaligned_root, "ev", "--n_epochs", "2", "--n_epochs_decay", "1", "--eval_freq", "1",
                   "--save_epoch_freq", "1")
    run = tmp_path / "ck" / "ev"
    records = evaluations(run)
    assert [record["epoch"] for record in records] == [1, 2, 3]
    assert [record["total_iters"] for record in records] == [4, 8, 12]
    for record in records:  # the default metrics of unaligned data, both directions
        assert set(record["metrics"]) == {"fid", "kid"}
        assert set(record["metrics"]["fid"]) == {"fake_B vs real_B", "fake_A vs real_A"}
    # The score is FID averaged over both directions; a record is "improved" when it beats all earlier ones.
    scores = [np.mean(list(record["metrics"]["fid"].values())) for record in records]
    assert [record["score"] for record in records] == pytest.approx(scores)
    assert [record["improved"] for record in records] == [score < min(scores[:i], default=np.inf)
                                                          for i, score in enumerate(scores)]
    best_epoch = records[int(np.argmin(scores))]["epoch"]
    best = json.loads((run / "best_score.json").read_text())
    assert (best["metric"], best["epoch"], best["higher_is_better"]) == ("fid", best_epoch, False)
    assert best["score"] == pytest.approx(min(scores))
    for net in NETS:
        assert same_weights(run / f"best_net_{net}.pth", run / f"{best_epoch}_net_{net}.pth")
    # Real features are computed once (3 testA + 2 testB); later evaluations cost only the 5 generated images.
    assert [record["feature_images"] for record in records] == [10, 5, 5]
    log_lines = [line for line in (run / "loss_log.txt").read_text().splitlines() if "evaluation:" in line]
    assert len(log_lines) == 3 and log_lines[0].startswith("(epoch: 1, iters: 4, evaluation: ")
    assert re.search(r"fid fake_B vs real_B: [0-9.]+ fid fake_A vs real_A: [0-9.]+ kid", log_lines[0])
    assert result.stdout.count("fewer than ~2048") == 2  # each note once, not at every evaluation
    page = (run / "web" / "index.html").read_text()
    assert "metric_curves.png" in page and f"best fid: {best['score']:.4f} at epoch {best_epoch}" in page
    assert (run / "web" / "metric_curves.png").stat().st_size > 1000

    # test.py on best_net_*.pth measures what the evaluation that chose them measured.
    run_test(tmp_path, unaligned_root, "ev", "--model", "cycle_gan", "--epoch", "best", "--metrics", "fid,kid",
             "--crop_size", "32")
    out = tmp_path / "results" / "ev" / "test_best"
    assert len(list((out / "images").glob("*_fake_B.png"))) == 3
    tested = json.loads((out / "metrics.json").read_text())
    for name, by_title in best["metrics"].items():
        for title, value in by_title.items():
            assert tested["metrics"][name][title]["value"] == pytest.approx(value, rel=1e-5, abs=1e-7)


def test_iteration_frequency_other_folder_and_chosen_metric(tmp_path, unaligned_root):
    other = tmp_path / "held_out"
    write_images(other / "valA", 2, seed=7)
    write_images(other / "valB", 2, seed=8)
    train(tmp_path, unaligned_root, "it", "--n_epochs", "2", "--n_epochs_decay", "0", "--eval_freq", "6",
          "--eval_unit", "iters", "--eval_dataroot", other, "--eval_phase", "val", "--metrics", "fid,kid",
          "--best_metric", "kid")
    run = tmp_path / "ck" / "it"
    records = evaluations(run)
    assert [(record["epoch"], record["total_iters"]) for record in records] == [(2, 6)]  # 6 of 8 images
    assert records[0]["feature_images"] == 8  # 2 + 2 real, 2 + 2 generated: the held-out folder was read
    best = json.loads((run / "best_score.json").read_text())
    assert best["metric"] == "kid"
    assert best["score"] == pytest.approx(np.mean(list(records[0]["metrics"]["kid"].values())))


def test_evaluation_leaves_training_untouched(tmp_path, aligned_root):
    """pix2pix has batch norm and dropout: evaluating must neither move the running statistics nor
    draw from the training's random generators, so the weights match a run without evaluation."""
    common = ["--model", "pix2pix", "--dataset_mode", "aligned", "--n_epochs", "2", "--n_epochs_decay", "0",
              "--netG", "unet_128"]
    train(tmp_path, aligned_root, "plain", *common)
    train(tmp_path, aligned_root, "evaluated", *common, "--eval_freq", "1", "--metrics", "psnr,ssim,l1")
    for net in ("G", "D"):
        assert same_weights(tmp_path / "ck" / "plain" / f"latest_net_{net}.pth",
                            tmp_path / "ck" / "evaluated" / f"latest_net_{net}.pth")
    records = evaluations(tmp_path / "ck" / "evaluated")
    assert len(records) == 2
    assert set(records[0]["metrics"]) == {"psnr", "ssim", "l1"}
    assert set(records[0]["metrics"]["psnr"]) == {"fake_B vs real_B"}  # paired: each output with its own B
    log = (tmp_path / "ck" / "evaluated" / "loss_log.txt").read_text()  # with the do-nothing baseline (real_A)
    assert re.search(r"evaluation: .* psnr fake_B vs real_B: [\d.]+ \(input unchanged: [\d.]+\) ssim", log)
    best = json.loads((tmp_path / "ck" / "evaluated" / "best_score.json").read_text())
    psnrs = [record["metrics"]["psnr"]["fake_B vs real_B"] for record in records]
    assert best["higher_is_better"] and best["score"] == pytest.approx(max(psnrs))


def test_continued_run_keeps_the_best_score(tmp_path, unaligned_root):
    train(tmp_path, unaligned_root, "cont", "--n_epochs", "1", "--n_epochs_decay", "0", "--eval_freq", "1")
    run = tmp_path / "ck" / "cont"
    best = json.loads((run / "best_score.json").read_text())
    best["score"] = 0.0  # unbeatable: no later evaluation may replace these weights
    (run / "best_score.json").write_text(json.dumps(best))
    kept = {net: (run / f"best_net_{net}.pth").read_bytes() for net in NETS}
    train(tmp_path, unaligned_root, "cont", "--n_epochs", "2", "--n_epochs_decay", "0", "--eval_freq", "1",
          "--continue_train")
    records = evaluations(run)
    assert [(record["epoch"], record["improved"]) for record in records] == [(1, True), (2, False)]
    assert all((run / f"best_net_{net}.pth").read_bytes() == kept[net] for net in NETS)
    assert json.loads((run / "best_score.json").read_text())["score"] == 0.0
    assert "best fid: 0.0000 at epoch 1" in (run / "web" / "index.html").read_text()


@pytest.mark.parametrize("flags, message", [
    (["--eval_freq", "1", "--eval_phase", "nowhere"],
     r"--eval_freq: image folder '.*nowhereA' does not exist; pass --eval_dataroot \(a dataset folder laid out "
     r"like --dataroot\) or --eval_phase \(its subfolder: testA/testB, or test/ for aligned data\)"),
    (["--eval_freq", "-1"], r"--eval_freq -1 is out of range; it must be an integer >= 0"),
    (["--eval_freq", "1", "--metrics", "psnr", "--best_metric", "fid"],
     r"--best_metric 'fid' is not among --metrics psnr; choose one of them or add it to --metrics"),
    (["--eval_freq", "1", "--metrics", "fid,sharpness"], r"--metrics: unknown metric 'sharpness'; choose from .*"),
    (["--eval_freq", "1", "--metrics", "psnr,ssim", "--load_size", "10", "--crop_size", "10"],
     r"--metrics ssim needs images of at least 11 pixels per side \(its window\), --crop_size is 10; leave ssim out "
     r"of --metrics or raise --crop_size"),
])
def test_bad_evaluation_flags_fail_early(tmp_path, unaligned_root, flags, message):
    result = run_script("train.py", "--dataroot", unaligned_root, "--name", "bad", "--checkpoints_dir",
                        tmp_path / "ck", "--gpu_ids", "-1", "--display_id", "0", *flags, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert re.fullmatch("error: " + message, result.stderr.strip().splitlines()[-1])
    assert not list((tmp_path / "ck").glob("bad/*.pth"))
