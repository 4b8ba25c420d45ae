"""Draw the training losses as a PNG picture (one line per loss against the fractional epoch).

Records come from `loss_log.jsonl`; a long run has thousands of them, so each curve is averaged
down to a few hundred points before drawing. matplotlib is imported only when a picture is drawn,
through its Agg canvas, so no window system and no global pyplot state are involved.
"""
import numpy as np

MAX_POINTS_PER_CURVE = 400


def plot_loss_curves(records, out_path):
    """Write a PNG with one line per loss; return out_path, or None when there is nothing to draw.

    records: list of dicts like {'epoch': 1, 'iters': 100, 'progress': 1.25, 'losses': {...}};
        a record without 'progress' is placed by its epoch and iters (see estimate_progress).
    out_path: path of the PNG file to write.
    """
    curves = collect_curves(records)
    if not curves:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    for name, (xs, ys) in curves.items():
        axes.plot(*average_down(xs, ys, MAX_POINTS_PER_CURVE), label=name, linewidth=1)
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right", fontsize="small", ncol=2)
    figure.tight_layout()
    figure.savefig(out_path, format="png")
    return out_path


def collect_curves(records):
    """Group records into {loss name: (x array, y array)} sorted by fractional epoch."""
    points = {}
    for record, progress in zip(records, estimate_progress(records)):
        for name, value in record.get("losses", {}).items():
            points.setdefault(name, []).append((progress, float(value)))
    curves = {}
    for name, pairs in points.items():
        pairs.sort(key=lambda pair: pair[0])
        xs, ys = zip(*pairs)
        curves[name] = (np.asarray(xs, dtype=float), np.asarray(ys, dtype=float))
    return curves


def estimate_progress(records):
    """Fractional epoch of each record: its 'progress', else epoch + iters / (largest iters seen).

    The largest `iters` in the log approximates the epoch length, which older logs do not record.
    """
    epoch_length = max((record.get("iters", 0) for record in records), default=0) or 1
    return [record["progress"] if record.get("progress") is not None
            else record.get("epoch", 0) + record.get("iters", 0) / epoch_length
            for record in records]


def average_down(xs, ys, max_points):
    """Average consecutive points into at most `max_points` buckets; short curves stay as is."""
    count = len(xs)
    if count <= max_points:
        return xs, ys
    bucket = np.arange(count) * max_points // count
    sizes = np.bincount(bucket, minlength=max_points)
    return (np.bincount(bucket, weights=xs) / sizes, np.bincount(bucket, weights=ys) / sizes)
