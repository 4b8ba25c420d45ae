"""Draw the training curves as PNG pictures: the losses, and the evaluation metrics of --eval_freq.

Records come from `loss_log.jsonl`; a long run has thousands of loss records, so each curve is
averaged down to a few hundred points before drawing. matplotlib is imported only when a picture
is drawn, through its Agg canvas, so no window system and no global pyplot state are involved.
"""
import numpy as np

MAX_POINTS_PER_CURVE = 400


def plot_loss_curves(records, out_path):
    """Write a PNG with one line per loss; return out_path, or None when there is nothing to draw.

    records: list of dicts like {'epoch': 1, 'iters': 100, 'progress': 1.25, 'losses': {...}};
        a record without 'progress' is placed by its epoch and iters (see estimate_progress);
        records without 'losses' (evaluations) are left out.
    out_path: path of the PNG file to write.
    """
    curves = collect_curves([record for record in records if "losses" in record])
    if not curves:
        return None
    return draw_panels([("loss", curves)], out_path, height_per_panel=4)


def plot_metric_curves(records, out_path):
    """Write a PNG with one panel per metric (its own scale), one line per comparison; return out_path,
    or None when no record holds metrics.

    records: list of dicts; those with 'metrics' ({name: {comparison: value}}) and 'progress' are drawn.
    out_path: path of the PNG file to write.
    """
    panels = {}
    for record in records:
        for name, by_title in record.get("metrics", {}).items():
            for title, value in by_title.items():
                panels.setdefault(name, {}).setdefault(title, []).append((record["progress"], float(value)))
    if not panels:
        return None
    curves = [(name.upper(), {title: tuple(np.asarray(column, dtype=float) for column in zip(*sorted(points)))
                              for title, points in by_title.items()})
              for name, by_title in panels.items()]
    return draw_panels(curves, out_path, height_per_panel=2.5, markers=True)


def draw_panels(panels, out_path, height_per_panel, markers=False):
    """Draw stacked panels sharing the epoch axis and save them as a PNG; return out_path.

    panels: list of (y label, {curve label: (x array, y array)}).
    height_per_panel: inches per panel; markers: mark every point (few points, as with metrics).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, max(3.0, height_per_panel * len(panels))), dpi=100)
    FigureCanvasAgg(figure)
    axes_list = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for axes, (ylabel, curves) in zip(axes_list, panels):
        for label, (xs, ys) in curves.items():
            axes.plot(*average_down(xs, ys, MAX_POINTS_PER_CURVE), label=label, linewidth=1,
                      marker="o" if markers else None, markersize=3)
        axes.set_ylabel(ylabel)
        axes.grid(alpha=0.3)
        axes.legend(loc="upper right", fontsize="small", ncol=2)
    axes_list[-1].set_xlabel("epoch")
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
