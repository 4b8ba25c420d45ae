"""The metric registry and the metric arithmetic: FID and KID on Inception features, PSNR, SSIM and L1
on image pairs.

A metric is one function registered by name with `@register_metric(kind, protocol)`:
- kind "distribution" (FID, KID) compares two sets of Inception features, real vs generated;
- kind "paired" (PSNR, SSIM, L1) scores each generated image against its ground truth, (N, C, H, W)
  float tensors in [0, 1], one value per image; the reported number is the mean over images.
engine.metric_collector feeds them batch by batch and metrics.report turns the result into a report.
"""
import warnings
from collections import namedtuple

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

from util.errors import UserError

Metric = namedtuple("Metric", "function kind protocol higher_is_better")
METRICS = {}

FID_UNBIASED_COUNT = 2048  # FID is biased upward below about this many images per set
KID_SUBSETS = 100
KID_MAX_SUBSET = 1000
KID_SEED = 0
SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03
PSNR_MAX_DB = 100.0  # identical images would give infinity, which JSON cannot hold


def register_metric(kind, protocol, higher_is_better=False):
    """Decorator adding a metric under its function's name.
    kind: "distribution" or "paired"; protocol: how the number is computed, in words;
    higher_is_better: the direction in which the metric improves (for the best checkpoint)."""
    def register(function):
        METRICS[function.__name__] = Metric(function, kind, protocol, higher_is_better)
        return function
    return register


def parse_metric_names(text):
    """The metric names of a --metrics value ('fid,kid'); UserError naming the valid ones for any other."""
    names = [name.strip().lower() for name in (text or "").split(",") if name.strip()]
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise UserError(f"--metrics: unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)} "
                        "(comma-separated, e.g. --metrics fid,kid)")
    return list(dict.fromkeys(names))


# ---- distribution metrics on Inception features ------------------------------------------------------

def feature_statistics(features):
    """Mean vector and covariance matrix (N - 1 normalised) of an (N, D) feature array."""
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """Frechet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2):
    |mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))."""
    with warnings.catch_warnings():  # a singular product is expected with few images; handled below
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            ridge = np.eye(len(mu1)) * 1e-6  # makes the root defined when the product is singular
            covmean = scipy.linalg.sqrtm((sigma1 + ridge) @ (sigma2 + ridge))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean.real))


def frechet_distance_of_features(x, y):
    """Frechet distance of Gaussians fitted to the rows of x (n1, D) and y (n2, D).

    With n1 + n2 <= D the covariances have low rank: writing sigma1 = A'A and sigma2 = B'B (A, B the
    centred rows over sqrt(n - 1)), tr((sigma1 sigma2)^(1/2)) is exactly the sum of the singular
    values of the small n1 x n2 matrix A B', which avoids a D x D matrix root (seconds on a CPU).
    """
    if len(x) + len(y) > x.shape[1]:
        return frechet_distance(*feature_statistics(x), *feature_statistics(y))
    a = (x - x.mean(axis=0)) / np.sqrt(len(x) - 1)
    b = (y - y.mean(axis=0)) / np.sqrt(len(y) - 1)
    diff = x.mean(axis=0) - y.mean(axis=0)
    root_trace = np.linalg.svd(a @ b.T, compute_uv=False).sum()
    return float(diff @ diff + (a * a).sum() + (b * b).sum() - 2.0 * root_trace)


def polynomial_kernel(x, y):
    """KID's kernel (x.y / dim + 1)^3 between the rows of x and y."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def unbiased_mmd2(x, y):
    """Unbiased squared MMD of the polynomial kernel between the samples x (m, D) and y (m, D)."""
    m = len(x)
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return within - 2.0 * k_xy.mean()


def kid_subset_size(real_count, fake_count):
    """The subset size of KID: min(1000, both set sizes)."""
    return min(KID_MAX_SUBSET, real_count, fake_count)


@register_metric("distribution", "Frechet distance of Gaussians fitted to the two feature sets (float64; matrix "
                                 "root by scipy.linalg.sqrtm, or exactly from the centred features' singular "
                                 "values when both sets together have at most 2048 images)")
def fid(real_features, fake_features):
    """FID between two (N, 2048) feature arrays; returns {'value'}."""
    return {"value": frechet_distance_of_features(real_features, fake_features)}


@register_metric("distribution", f"unbiased MMD^2 of the kernel (x.y/2048 + 1)^3, mean and std over "
                                 f"{KID_SUBSETS} random subsets of min(1000, n) images per set (seed {KID_SEED})")
def kid(real_features, fake_features):
    """KID between two (N, 2048) feature arrays; returns {'value', 'std', 'subsets', 'subset_size'}."""
    size = kid_subset_size(len(real_features), len(fake_features))
    rng = np.random.default_rng(KID_SEED)
    values = [unbiased_mmd2(real_features[rng.choice(len(real_features), size, replace=False)],
                            fake_features[rng.choice(len(fake_features), size, replace=False)])
              for _ in range(KID_SUBSETS)]
    return {"value": float(np.mean(values)), "std": float(np.std(values)), "subsets": KID_SUBSETS,
            "subset_size": size}


# ---- paired metrics on [0, 1] images -------------------------------------------------------------------

@register_metric("paired", f"10 log10(1 / MSE) per image on [0, 1] pixels, capped at {PSNR_MAX_DB:g} dB, "
                           "mean over images", higher_is_better=True)
def psnr(real, fake):
    """Per-image PSNR in dB of (N, C, H, W) tensors in [0, 1]."""
    mse = ((real - fake) ** 2).flatten(1).mean(dim=1)
    return (10.0 * torch.log10(1.0 / mse.clamp_min(10 ** (-PSNR_MAX_DB / 10)))).tolist()


def gaussian_window(size=SSIM_WINDOW, sigma=SSIM_SIGMA):
    """A normalised 2-D Gaussian window as a (1, 1, size, size) tensor."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    line = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    line = line / line.sum()
    return (line[:, None] * line[None, :])[None, None]


@register_metric("paired", f"SSIM with a {SSIM_WINDOW}x{SSIM_WINDOW} Gaussian window (sigma {SSIM_SIGMA}), "
                           f"K1 {SSIM_K1}, K2 {SSIM_K2}, data range 1, valid window positions, mean over "
                           "positions and channels per image, then over images", higher_is_better=True)
def ssim(real, fake):
    """Per-image SSIM of (N, C, H, W) tensors in [0, 1] (each side at least 11 pixels)."""
    real, fake = real.double(), fake.double()
    channels = real.shape[1]
    window = gaussian_window().to(real.device).expand(channels, 1, -1, -1)

    def local_mean(x):
        return F.conv2d(x, window, groups=channels)

    mu_r, mu_f = local_mean(real), local_mean(fake)
    var_r = local_mean(real * real) - mu_r ** 2
    var_f = local_mean(fake * fake) - mu_f ** 2
    cov = local_mean(real * fake) - mu_r * mu_f
    c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2
    ssim_map = ((2 * mu_r * mu_f + c1) * (2 * cov + c2)) / ((mu_r ** 2 + mu_f ** 2 + c1) * (var_r + var_f + c2))
    return ssim_map.flatten(1).mean(dim=1).tolist()


@register_metric("paired", "mean |fake - real| over pixels and channels on [0, 1] pixels, mean over images")
def l1(real, fake):
    """Per-image mean absolute difference of (N, C, H, W) tensors in [0, 1]."""
    return (real - fake).abs().flatten(1).mean(dim=1).tolist()
