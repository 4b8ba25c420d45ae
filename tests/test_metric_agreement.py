"""The metric numbers stay what they were: FID, KID, PSNR, SSIM and L1 on fixed seeded features and
pictures against the values the hand-written implementation gave before the metrics moved to torchmetrics
(recorded at commit ba449b0)."""
import numpy as np
import pytest
import torch

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
    (features(16, 1010, 4), features(17, 1020, 4, 1.1), (0.17328955671033597, 0.008021318342788412, 1000)),
])
def test_kid_agrees_with_the_recorded_values(real, fake, expected):
    value, std, subset_size = expected
    result = kid(real, fake)
    assert (result["subsets"], result["subset_size"]) == (100, subset_size)
    assert result["value"] == pytest.approx(value, rel=1e-9)
    assert result["std"] == pytest.approx(std, rel=1e-7)


def test_paired_metrics_agree_with_the_recorded_values():
    real, fake = picture_pairs(18)
    assert psnr(real, fake) == pytest.approx([100.0, 16.752080577412652, 16.929437126301792, 17.109087822460346],
                                             rel=1e-12)
    assert ssim(real, fake) == pytest.approx([1.0, 0.8756730203804729, 0.8761431004717846, 0.8862502384006099],
                                             rel=1e-9)
    assert l1(real, fake) == pytest.approx([0.0, 0.11351556826434278, 0.11181576797385623, 0.10933415032679739],
                                           rel=1e-12, abs=1e-15)
