"""Collecting what the metrics need during a test or an evaluation pass: the image sets to compare,
ground truth found by file name (preprocessed exactly as the input it belongs to), Inception features
and per-image paired scores (of each output and, as the do-nothing baseline, of its input against the
same truth), batch by batch (only features and scores are kept, never the images), merged over torchrun
processes at the end."""
import contextlib
import hashlib
import os

import numpy as np
import torch

from data import single_folder_options
from data.base_dataset import item_params, transform_like
from data.image_io import load_image
from data.single_dataset import SingleDataset
from metrics.inception import load_inception
from metrics.registry import METRICS
from metrics.report import BATCH_TRUTH, REFERENCE, SOURCE_OF, Collected, Comparison, library_versions
from runtime.runtime import runtime_of
from util.errors import UserError
from util.util import tensor2im


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


def source_domain(opt, batch, label):
    """The batch domain ('A' or 'B', naming its <domain>_paths and <domain>_params) whose images became
    the input visual `label` (real_A, real_B or, from a single folder, real)."""
    if "B_paths" not in batch:
        return "A"
    first, second = ("A", "B") if opt.direction == "AtoB" else ("B", "A")
    return first if label == "real_A" else second


class SameNameTruth:
    """Ground truth found by file name: for an output made from `x.png`, the file `x.*` in `folder`,
    read as the test images are and preprocessed exactly as `x.png` was (its crop position, flip and
    resize, which the dataset reports in the batch), so that both show the same part of the scene.

    opt: test-style options; folder: where the ground truth is; label: the real visual whose domain
    it belongs to (real_B: output channels, real_A: input channels).
    """

    def __init__(self, opt, folder, label):
        self.folder = folder
        self.dataset = None
        with contextlib.suppress(UserError):  # a missing or empty folder pairs nothing (said in a note)
            self.dataset = SingleDataset(single_folder_options(opt, folder, target=label != "real_A"))
        paths = self.dataset.paths if self.dataset else []
        self.index = {file_stem(path): index for index, path in enumerate(paths)}
        self.missing = set()  # inputs without a same-named file
        # Inputs whose same-named file has another size: before the crop (the input's crop position
        # would cover another part of it) or in the end (another shape than the output).
        self.mismatched = set()

    def picture(self, source_path, params, shape):
        """The uint8 ground-truth picture of the output made from `source_path`, preprocessed with that
        input's get_params `params`, or None (noted) when there is none or its size does not match
        (see `mismatched`); shape: the output picture's shape."""
        index = self.index.get(file_stem(source_path))
        if index is None:
            self.missing.add(source_path)
            return None
        image = load_image(self.dataset.paths[index], self.dataset.mode)
        truth = transform_like(self.dataset.opt, image, params)
        picture = None if truth is None else tensor2im(truth)
        if picture is None or picture.shape != shape:
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


def paired_scores(names, truths, pictures):
    """{metric name: one score per picture} of the paired metrics `names`, each uint8 HxWx3 picture
    against its truth (the same size, pair by pair). Every paired number comes from here: the outputs'
    scores, the do-nothing baseline and the quality benchmark's."""
    truth, picture = to_unit_tensor(truths), to_unit_tensor(pictures)
    return {name: METRICS[name].function(truth, picture) for name in names}


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
        # name -> {label: {key: value}}: the scores of a comparison's outputs (its fake label) and, under the
        # label of their inputs (SOURCE_OF), those of the inputs against the same truth (the do-nothing baseline).
        self.paired = {name: {} for name in self.paired_names}
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
            source = SOURCE_OF[comparison.fake]
            # Returning the input unchanged is a possible answer only where it has the output's channels
            # (a grey input shown as RGB is no answer to a colour truth).
            inputs = pictures[source] if visuals[source].shape[1] == visuals[comparison.fake].shape[1] else None
            if comparison.truth == BATCH_TRUTH:
                self._add_paired(comparison, keys[comparison.fake], pictures[comparison.real],
                                 pictures[comparison.fake], inputs)
            elif comparison.truth is not None:
                fakes = pictures[comparison.fake]
                domain = source_domain(self.opt, batch, source)
                paths, params = batch[domain + "_paths"], batch[domain + "_params"]
                truths = [comparison.truth.picture(path, item_params(params, i), fake.shape)
                          for i, (path, fake) in enumerate(zip(paths, fakes))]
                found = [index for index, truth in enumerate(truths) if truth is not None]
                self._add_paired(comparison, [keys[comparison.fake][i] for i in found], [truths[i] for i in found],
                                 [fakes[i] for i in found], None if inputs is None else [inputs[i] for i in found])

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

    def _add_paired(self, comparison, keys, truths, fakes, inputs=None):
        """Per-image paired scores of the pairs not seen before: each output against its truth and, given
        `inputs` (the pictures the outputs were made from), each input against the same truth."""
        first = self.paired[self.paired_names[0]].setdefault(comparison.fake, {})
        fresh = {}  # key -> index of its first occurrence in this batch
        for index, key in enumerate(keys):
            if key not in first:
                fresh.setdefault(key, index)
        if not fresh:
            return
        chosen_truths = [truths[i] for i in fresh.values()]
        scored = {comparison.fake: [fakes[i] for i in fresh.values()]}
        if inputs is not None and all(inputs[i].shape == truths[i].shape for i in fresh.values()):
            scored[SOURCE_OF[comparison.fake]] = [inputs[i] for i in fresh.values()]
        for label, pictures in scored.items():
            for name, values in paired_scores(self.paired_names, chosen_truths, pictures).items():
                self.paired[name].setdefault(label, {}).update(zip(fresh, values))

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
        share = (self.features, self.paired, self.inception_usage(), self.truth_gaps())
        shares = runtime_of(self.opt).gather_to_main([share])
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
