"""The training web page: `web/index.html` shows the loss and metric curves, the best evaluation and
the newest EPOCHS_PER_PAGE epochs' pictures (newest first); older epochs move to index_2.html,
index_3.html, ... so that the page stays light after hundreds of epochs, and every epoch's pictures
are kept. The pages are redrawn from loss_log.jsonl and the pictures in web/images; engine.visualizer
decides when."""
import contextlib
import json
import os
import re

from engine.curve_plot import plot_loss_curves, plot_metric_curves
from engine.html import HTML, IMAGE_FOLDER

LOSS_CURVE_FILE = "loss_curves.png"
METRIC_CURVE_FILE = "metric_curves.png"
EPOCHS_PER_PAGE = 20
EPOCH_IMAGE_NAME = re.compile(r"^epoch(\d+)_(.+)\.png$")


def write_training_pages(web_dir, name, jsonl_path, label_order, best_text, picture_width):
    """Rewrite the training pages: index.html with the curves, the best evaluation and the newest
    EPOCHS_PER_PAGE epochs' pictures; index_2.html, ... with older epochs (newest first).

    web_dir: the pages' folder (pictures in its IMAGE_FOLDER); name: the experiment's name;
    jsonl_path: loss_log.jsonl, whose records draw the curves; label_order: the model's visual labels,
    which order each epoch's pictures; best_text: the best evaluation in words, or None;
    picture_width: the pictures' width on the page, in pixels.
    """
    records = read_loss_records(jsonl_path)
    epochs = saved_epochs(os.path.join(web_dir, IMAGE_FOLDER), label_order)
    pages = [epochs[start:start + EPOCHS_PER_PAGE] for start in range(0, len(epochs), EPOCHS_PER_PAGE)] or [[]]
    for number, page_epochs in enumerate(pages, start=1):
        page = HTML(web_dir, f"Experiment name = {name}" + (f" (page {number})" if number > 1 else ""))
        if number == 1:
            add_curves(page, web_dir, records, best_text)
        page.add_links([(page_file_name(other), epoch_range_text(pages[other - 1]))
                        for other in range(1, len(pages) + 1)], current=page_file_name(number))
        for epoch, files in page_epochs:
            page.add_header(f"epoch [{epoch}]")
            paths = [f"{IMAGE_FOLDER}/{file_name}" for _, file_name in files]
            page.add_images(paths, [label for label, _ in files], paths, width=picture_width)
        page.save(page_file_name(number))


def add_curves(page, web_dir, records, best_text):
    """Add the loss-curve and metric-curve pictures (redrawn from `records` into web_dir) and the best
    evaluation in words (best_text, or None)."""
    if plot_loss_curves(records, os.path.join(web_dir, LOSS_CURVE_FILE)):
        page.add_image(LOSS_CURVE_FILE, caption="training losses")
    if plot_metric_curves(records, os.path.join(web_dir, METRIC_CURVE_FILE)):
        page.add_image(METRIC_CURVE_FILE, caption="evaluation metrics (--eval_freq)")
    if best_text:
        page.add_text(best_text)


def read_loss_records(jsonl_path):
    """Read loss_log.jsonl; lines that do not parse (a run killed mid-write) are skipped."""
    if not os.path.exists(jsonl_path):
        return []
    records = []
    with open(jsonl_path, encoding="utf-8") as jsonl:
        for line in jsonl:
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
    return records


def page_file_name(number):
    """index.html for the first training page, index_<number>.html for the others."""
    return "index.html" if number == 1 else f"index_{number}.html"


def epoch_range_text(page_epochs):
    """'epochs 40-21' (newest first) for the link to a page holding `page_epochs`."""
    if not page_epochs:
        return "no pictures yet"
    newest, oldest = page_epochs[0][0], page_epochs[-1][0]
    return f"epoch {newest}" if newest == oldest else f"epochs {newest}-{oldest}"


def saved_epochs(image_dir, label_order):
    """List the epochs with pictures in image_dir, newest first, as (epoch, [(label, file name)]).

    label_order: labels in the order the model lists them; other labels follow alphabetically.
    """
    rank = {label: index for index, label in enumerate(label_order)}
    epochs = {}
    for file_name in os.listdir(image_dir):
        match = EPOCH_IMAGE_NAME.match(file_name)
        if match:
            epochs.setdefault(int(match.group(1)), []).append((match.group(2), file_name))
    for files in epochs.values():
        files.sort(key=lambda item: (rank.get(item[0], len(rank)), item[0]))
    return sorted(epochs.items(), reverse=True)
