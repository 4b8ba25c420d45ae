"""The metric registry and the metrics: FID and KID on Inception features, PSNR, SSIM and L1 on image
pairs, their numbers computed by torchmetrics.

A metric is one function registered by name with `@register_metric(kind, protocol)`:
- kind "distribution" (FID, KID) compares two sets of Inception features, real vs generated;
- kind "paired" (PSNR, SSIM, L1) scores each generated image against its ground truth, (N, C, H, W)
  float tensors in [0, 1], one value per image; the reported number is the mean over images.
engine.metric_collector feeds them batch by batch and metrics.report turns the result into a report.
torchmetrics is imported inside the metric functions: its import takes seconds (it loads torchvision's
models), which only the runs that compute metrics should pay.
"""
import contextlib
from collections import namedtuple

import numpy as np
import torch

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

class GivenFeatures(torch.nn.Module):
    """The feature extractor handed to torchmetrics: the identity, because the rows it receives already
    are Inception features (computed once per distinct image by the collector, real ones cached).
    num_features: the width of the rows."""

    def __init__(self, num_features):
        super().__init__()
        self.num_features = num_features

    def forward(self, features):
        return features


def span_coordinates(x, y):
    """The rows of x (n1, D) and y (n2, D), taken relative to x's mean, in an orthonormal basis of n1 + n2
    vectors that spans all of them. Distances, means and covariances keep their geometry in these
    coordinates, so the Frechet distance is unchanged, while the matrix root torchmetrics takes is
    (n1 + n2) wide instead of D (2048: about a minute on a CPU)."""
    import scipy.linalg  # here, not at the top: its import costs every test.py and train.py start 0.15 s
    origin = x.mean(axis=0)
    basis = scipy.linalg.qr(np.concatenate([x, y]).T - origin[:, None], mode="economic")[0]
    return (x - origin) @ basis, (y - origin) @ basis


def kid_subset_size(real_count, fake_count):
    """The subset size of KID: min(1000, both set sizes)."""
    return min(KID_MAX_SUBSET, real_count, fake_count)


@register_metric("distribution", "Frechet distance of Gaussians fitted to the two feature sets (torchmetrics "
                                 "FrechetInceptionDistance on the features, float64; when both sets together have "
                                 "at most 2048 images, on their coordinates in the subspace they span, which "
                                 "leaves the distance unchanged)")
def fid(real_features, fake_features):
    """FID between two (N, 2048) feature arrays; returns {'value'}."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    if len(real_features) + len(fake_features) <= real_features.shape[1]:
        real_features, fake_features = span_coordinates(real_features, fake_features)
    # The features of every process are already merged (and each image counted once): no syncing here.
    metric = FrechetInceptionDistance(feature=GivenFeatures(real_features.shape[1]), sync_on_compute=False)
    metric.update(torch.from_numpy(real_features), real=True)
    metric.update(torch.from_numpy(fake_features), real=False)
    return {"value": float(metric.compute())}


@register_metric("distribution", f"unbiased MMD^2 of the kernel (x.y/2048 + 1)^3 (torchmetrics poly_mmd), mean and "
                                 f"std over {KID_SUBSETS} random subsets of min(1000, n) images per set "
                                 f"(seed {KID_SEED})")
def kid(real_features, fake_features):
    """KID between two (N, 2048) feature arrays; returns {'value', 'std', 'subsets', 'subset_size'}."""
    from torchmetrics.image.kid import poly_mmd

    size = kid_subset_size(len(real_features), len(fake_features))
    real, fake = torch.from_numpy(real_features), torch.from_numpy(fake_features)
    # The subsets are drawn here, from a seeded generator of their own, so that the numbers are repeatable
    # (torchmetrics' KernelInceptionDistance draws them from torch's global generator).
    rng = np.random.default_rng(KID_SEED)
    values = torch.stack([poly_mmd(real[rng.choice(len(real), size, replace=False)],
                                   fake[rng.choice(len(fake), size, replace=False)], degree=3, coef=1.0)  # gamma 1/dim
                          for _ in range(KID_SUBSETS)])
    return {"value": float(values.mean()), "std": float(values.std(correction=0)), "subsets": KID_SUBSETS,
            "subset_size": size}


# ---- paired metrics on [0, 1] images -------------------------------------------------------------------

@contextlib.contextmanager
def float64_by_default():
    """torch's default dtype is float64 in the body: torchmetrics' PSNR makes its constant ln(10) a tensor of
    the default dtype, and float32 would move every value by about 5e-8 relative."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@register_metric("paired", f"10 log10(1 / MSE) per image on [0, 1] pixels (torchmetrics peak_signal_noise_ratio), "
                           f"capped at {PSNR_MAX_DB:g} dB, mean over images", higher_is_better=True)
def psnr(real, fake):
    """Per-image PSNR in dB of (N, C, H, W) float64 tensors in [0, 1]."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    with float64_by_default():
        values = peak_signal_noise_ratio(fake, real, data_range=1.0, reduction="none", dim=(1, 2, 3))
    return values.clamp_max(PSNR_MAX_DB).tolist()  # identical images give infinity, which JSON cannot hold


@register_metric("paired", f"SSIM with a {SSIM_WINDOW}x{SSIM_WINDOW} Gaussian window (sigma {SSIM_SIGMA}), "
                           f"K1 {SSIM_K1}, K2 {SSIM_K2}, data range 1 (torchmetrics "
                           "structural_similarity_index_measure), valid window positions, mean over positions and "
                           "channels per image, then over images", higher_is_better=True)
def ssim(real, fake):
    """Per-image SSIM of (N, C, H, W) tensors in [0, 1] (each side at least 11 pixels)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    if min(real.shape[-2:]) < SSIM_WINDOW:
        height, width = real.shape[-2:]
        raise UserError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels (its window), these are "
                        f"{height}x{width}; leave ssim out of --metrics or use larger images")
    # torchmetrics sizes the Gaussian window from sigma (1.5 gives 11) and pads the images by reflection;
    # the protocol keeps only the windows that lie inside the image.
    _, ssim_map = structural_similarity_index_measure(fake.double(), real.double(), sigma=SSIM_SIGMA, data_range=1.0,
                                                      k1=SSIM_K1, k2=SSIM_K2, reduction="none",
                                                      return_full_image=True)
    border = SSIM_WINDOW // 2
    return ssim_map[..., border:-border, border:-border].flatten(1).mean(dim=1).tolist()


@register_metric("paired", "mean |fake - real| over pixels and channels on [0, 1] pixels (torchmetrics "
                           "mean_absolute_error), mean over images")
def l1(real, fake):
    """Per-image mean absolute difference of (N, C, H, W) tensors in [0, 1]."""
    from torchmetrics.functional import mean_absolute_error

    return [float(mean_absolute_error(one_fake, one_real)) for one_real, one_fake in zip(real, fake)]
