"""Training feedback: loss logs, the training web page and the optional live visdom display.

The training loop owns one `Visualizer`. It appends every printed loss line and every evaluation
(--eval_freq) to `checkpoints/NAME/loss_log.txt` (the reference tool's format) and a JSON object to
`loss_log.jsonl`, and keeps the training web page: `web/index.html` shows the loss and metric curves
and the newest EPOCHS_PER_PAGE epochs' pictures (newest first); older epochs move to index_2.html,
index_3.html, ... so that the page stays light after hundreds of epochs, and every epoch's pictures
are kept. When `--display_id` > 0 and a visdom server answers, pictures, losses and metrics are
mirrored there; with --use_tensorboard / --use_wandb they also go to those loggers. A missing or
failing visdom server costs one warning line, never a stream of tracebacks; so does a log or page
that cannot be written (full disk, quota): training goes on, and its saves say whether the run's
checkpoints can still be written.
"""
import contextlib
import functools
import html
import io
import json
import logging
import os
import re
import socket
import time
import warnings
from urllib.parse import urlparse

import numpy as np

from engine.curve_plot import plot_loss_curves, plot_metric_curves
from engine.experiment_loggers import ExperimentLoggers
from engine.html import HTML, IMAGE_FOLDER
from metrics.report import report_values
from runtime.runtime import runtime_of
from util.errors import is_storage_error, write_error
from util.log import logger
from util.util import mkdirs, save_image, tensor2im

CONNECT_TIMEOUT_S = 2.0
LOSS_CURVE_FILE = "loss_curves.png"
METRIC_CURVE_FILE = "metric_curves.png"
EPOCHS_PER_PAGE = 20
EPOCH_IMAGE_NAME = re.compile(r"^epoch(\d+)_(.+)\.png$")


def training_goes_on_after_write_errors(method):
    """Decorate a Visualizer method that writes logs or pages: a storage error (full disk, quota,
    read-only folder) costs one warning per method, and training goes on without that output."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except OSError as err:
            if not is_storage_error(err):
                raise
            if method.__name__ not in self.write_failures:
                self.write_failures.add(method.__name__)
                logger.warning(str(write_error(err.filename or self.web_dir, err, "training goes on without it")))
    return wrapper


class Visualizer:
    """Loss logs, the training web page and the visdom display of one experiment.

    opt: options with name, checkpoints_dir, isTrain, display_id, display_server, display_port,
        display_env, display_ncols, display_winsize and (training only) no_html, use_tensorboard,
        use_wandb, wandb_project, continue_train.
    """

    def __init__(self, opt):
        self.name = opt.name
        self.ncols = opt.display_ncols
        self.win_size = opt.display_winsize
        run_dir = os.path.join(opt.checkpoints_dir, opt.name)
        self.web_dir = os.path.join(run_dir, "web")
        self.image_dir = os.path.join(self.web_dir, IMAGE_FOLDER)
        self.log_path = os.path.join(run_dir, "loss_log.txt")
        self.jsonl_path = os.path.join(run_dir, "loss_log.jsonl")
        self.use_html = opt.isTrain and not getattr(opt, "no_html", False)
        self.saved = False
        self.best_text = None  # the best evaluation so far, in words, for the web page
        self.label_order = ()  # the model's visual labels, which order each epoch's pictures
        self.notes_shown = set()  # evaluation notes already printed (each is printed once)
        self.write_failures = set()  # methods whose writes failed (each is warned about once)
        self.visdom = VisdomDisplay.connect(opt) if opt.display_id > 0 else None
        self.loggers = ExperimentLoggers(opt) if opt.isTrain else None
        if opt.isTrain:
            mkdirs(run_dir)
            self._start_logs()
        if self.use_html:
            mkdirs(self.web_dir, self.image_dir)

    def _start_logs(self):
        """Mark the start of this run in loss_log.txt and make sure loss_log.jsonl exists."""
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"================ Training Loss ({time.strftime('%c')}) ================\n")
        open(self.jsonl_path, "a", encoding="utf-8").close()

    def reset(self):
        """Start a new epoch: its pictures may be saved to the web page once more."""
        self.saved = False

    def close(self, failed=False):
        """Flush and close the experiment loggers (TensorBoard, W&B). failed: the run ended with an error."""
        if self.loggers is not None:
            self.loggers.close(failed)

    def display_current_results(self, visuals, epoch, save_result, total_iters=None):
        """Show the current pictures in visdom and, once per epoch, save them to the web page.

        visuals: ordered dict label -> tensor (N, C, H, W) in [-1, 1]; the batch's first is shown.
        epoch: the current epoch number (names the saved files).
        save_result: whether this call may save the pictures to the web page.
        total_iters: images seen so far, the step of the pictures sent to TensorBoard/W&B with each save.
        """
        save_now = self.use_html and save_result and not self.saved
        if self.visdom is None and not save_now:
            return
        pictures = {label: tensor2im(tensor) for label, tensor in visuals.items()}
        if self.visdom is not None:
            if self.ncols > 0:
                self.visdom.show_grid(pictures, self.ncols)
            else:
                self.visdom.show_each(pictures)
        if save_now:
            self.saved = True
            self.save_pictures(pictures, epoch)
            self.write_web_page()
            if self.loggers is not None and total_iters is not None:
                self.loggers.log_images(pictures, total_iters)

    @training_goes_on_after_write_errors
    def save_pictures(self, pictures, epoch):
        """Save one epoch's pictures (label -> uint8 array) for the web page."""
        self.label_order = list(pictures)
        for label, picture in pictures.items():
            save_image(picture, os.path.join(self.image_dir, f"epoch{epoch:03d}_{label}.png"))

    @training_goes_on_after_write_errors
    def write_web_page(self):
        """Rewrite the training pages: index.html with the curves, the best evaluation and the newest
        EPOCHS_PER_PAGE epochs' pictures; index_2.html, ... with older epochs (newest first)."""
        if not self.use_html:
            return
        records = read_loss_records(self.jsonl_path)
        epochs = saved_epochs(self.image_dir, self.label_order)
        pages = [epochs[start:start + EPOCHS_PER_PAGE] for start in range(0, len(epochs), EPOCHS_PER_PAGE)] or [[]]
        for number, page_epochs in enumerate(pages, start=1):
            page = HTML(self.web_dir, f"Experiment name = {self.name}" + (f" (page {number})" if number > 1 else ""))
            if number == 1:
                self.add_curves(page, records)
            page.add_links([(page_file_name(other), epoch_range_text(pages[other - 1]))
                            for other in range(1, len(pages) + 1)], current=page_file_name(number))
            for epoch, files in page_epochs:
                page.add_header(f"epoch [{epoch}]")
                paths = [f"{IMAGE_FOLDER}/{file_name}" for _, file_name in files]
                page.add_images(paths, [label for label, _ in files], paths, width=self.win_size)
            page.save(page_file_name(number))

    def add_curves(self, page, records):
        """Add the loss-curve and metric-curve pictures (redrawn from `records`) and the best score."""
        if plot_loss_curves(records, os.path.join(self.web_dir, LOSS_CURVE_FILE)):
            page.add_image(LOSS_CURVE_FILE, caption="training losses")
        if plot_metric_curves(records, os.path.join(self.web_dir, METRIC_CURVE_FILE)):
            page.add_image(METRIC_CURVE_FILE, caption="evaluation metrics (--eval_freq)")
        if self.best_text:
            page.add_text(self.best_text)

    def plot_current_losses(self, epoch, counter_ratio, losses, total_iters=None):
        """Append the losses to the visdom loss plot and the experiment loggers.

        epoch: the current epoch number.
        counter_ratio: fraction of the epoch done, in [0, 1].
        losses: dict loss name -> float.
        total_iters: images seen so far (the step in TensorBoard/W&B; without it they are skipped).
        """
        if self.visdom is not None:
            self.visdom.append_losses(epoch + counter_ratio, losses)
        if self.loggers is not None and total_iters is not None:
            self.loggers.log_scalars({f"loss/{name}": float(value) for name, value in losses.items()}, total_iters)

    def show_best(self, best):
        """Remember the best evaluation for the web page. best: best_score.json's dict, or None."""
        if best is not None:
            self.best_text = (f"best {best['metric']}: {best['score']:.4f} at epoch {best['epoch']} "
                              f"({best['total_iters']} images), saved as best_net_*.pth")

    def log_evaluation(self, epoch, total_iters, progress, evaluation, best):
        """Record one evaluation everywhere it is shown; return the lines to print.

        epoch: the current epoch; total_iters: images seen so far; progress: fractional epoch of the
        point on the curves; evaluation: util.evaluation.Evaluation; best: the best score's dict
        (util.evaluation's best_score.json) after this evaluation, or None.
        """
        values = report_values(evaluation.report)
        numbers = "".join(f" {name} {title}: {value:.4f}"
                          for name, by_title in values.items() for title, value in by_title.items())
        line = f"(epoch: {epoch}, iters: {total_iters}, evaluation: {evaluation.seconds:.1f} s){numbers}"
        self._append_to_logs(line, {"kind": "evaluation", "epoch": epoch, "total_iters": total_iters,
                                    "progress": progress, "metrics": values, "score": evaluation.score,
                                    "improved": evaluation.improved, "seconds": evaluation.seconds,
                                    "feature_images": evaluation.report["protocol"].get("inception_images", 0)})
        flat = {f"{name} {title}": value for name, by_title in values.items() for title, value in by_title.items()}
        if self.visdom is not None and flat:
            self.visdom.append_metrics(progress, flat)
        if self.loggers is not None:
            self.loggers.log_scalars({f"metrics/{key}": value for key, value in flat.items()}, total_iters)
        self.show_best(best)
        self.write_web_page()
        notes = [note for note in evaluation.report["notes"] if note not in self.notes_shown]
        self.notes_shown.update(notes)
        return [line] + [f"  note: {note}" for note in notes] + \
            ([self.best_text + (" (new best)" if evaluation.improved else "")] if self.best_text else [])

    def print_current_losses(self, epoch, iters, losses, t_comp, t_data, progress=None):
        """Log one loss line to loss_log.txt and loss_log.jsonl; return the line (not printed).

        epoch: the current epoch number.
        iters: iterations (images) done in this epoch.
        losses: dict loss name -> float.
        t_comp: computation time per image, in seconds.
        t_data: data loading time per image, in seconds.
        progress: optional fractional epoch (epoch + fraction done) for the loss-curve picture.
        """
        losses = {name: float(value) for name, value in losses.items()}
        line = f"(epoch: {epoch}, iters: {iters}, time: {t_comp:.3f}, data: {t_data:.3f})"
        line += "".join(f" {name}: {value:.3f}" for name, value in losses.items())
        record = {"epoch": epoch, "iters": iters, "time": t_comp, "data": t_data, "losses": losses}
        if progress is not None:
            record["progress"] = progress
        self._append_to_logs(line, record)
        return line

    @training_goes_on_after_write_errors
    def _append_to_logs(self, line, record):
        """Append `line` to loss_log.txt and `record` (timestamped) as one JSON line to loss_log.jsonl."""
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(line + "\n")
        with open(self.jsonl_path, "a", encoding="utf-8") as jsonl:
            jsonl.write(json.dumps({**record, "timestamp": time.time()}) + "\n")


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


def server_answers(server, port):
    """Whether something accepts connections at server:port within CONNECT_TIMEOUT_S."""
    host = urlparse(server if "://" in server else f"http://{server}").hostname or "localhost"
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def quiet_visdom():
    """Hide what the visdom client prints or warns on its own; failures reach us as exceptions."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


class VisdomDisplay:
    """The live visdom windows of one experiment; it switches itself off after a failed send.

    client: a connected visdom.Visdom client.
    url: the server's address, for messages.
    name: the experiment name, which prefixes the window ids.
    """

    def __init__(self, client, url, name):
        self.client = client
        self.url = url
        self.name = name
        self.line_names = {}  # window -> the legend of its last point

    @classmethod
    def connect(cls, opt):
        """Return a display talking to opt's visdom server, or None (after one warning line)."""
        url = f"{opt.display_server}:{opt.display_port}"
        try:
            import visdom
        except ImportError:
            logger.warning('visdom: not installed; install it with "pip install visdom" or pass '
                 '--display_id 0; continuing without visdom')
            return None
        logging.getLogger("visdom").setLevel(logging.CRITICAL)
        client = None
        if server_answers(opt.display_server, opt.display_port):
            with contextlib.suppress(OSError), quiet_visdom():
                client = visdom.Visdom(server=opt.display_server, port=opt.display_port,
                                       env=opt.display_env, use_incoming_socket=False,
                                       raise_exceptions=True)
                client = client if client.check_connection() else None
        if client is None:
            logger.warning(f'visdom: no server at {url}; start one with "python -m visdom.server" or pass '
                 '--display_id 0; continuing without visdom')
            return None
        return cls(client, url, opt.name)

    def _send(self, method_name, *args, **kwargs):
        """Call the client's method of that name; on failure warn once and stop using visdom."""
        if self.client is None:
            return
        try:
            with quiet_visdom():
                getattr(self.client, method_name)(*args, **kwargs)
        except OSError as error:
            self.client = None
            logger.warning(f"visdom: sending to {self.url} failed ({type(error).__name__}); "
                 "continuing without visdom")

    def show_grid(self, pictures, ncols):
        """Show all pictures in one grid window of ncols columns, with their labels beside it.

        pictures: dict label -> uint8 HxWx3 array.
        ncols: pictures per grid row.
        """
        self._send("images", stack_pictures(pictures.values()),
                   nrow=ncols, padding=2, win=f"{self.name}_images",
                   opts={"title": f"{self.name} images"})
        self._send("text", labels_table(list(pictures), ncols),
                   win=f"{self.name}_labels", opts={"title": f"{self.name} labels"})

    def show_each(self, pictures):
        """Show every picture in its own window. pictures: dict label -> uint8 HxWx3 array."""
        for label, picture in pictures.items():
            self._send("image", to_chw_unit(picture),
                       win=f"{self.name}_{label}", opts={"title": label})

    def append_metrics(self, x, values):
        """Add one point per metric and comparison to the metrics window.

        x: fractional epoch of the evaluation.
        values: dict 'fid fake_B vs real_B' -> float.
        """
        self._append_line("metrics", x, values, "metric")

    def append_losses(self, x, losses):
        """Add one point per loss to the loss window (a fresh plot when the loss names change).

        x: fractional epoch of the point.
        losses: dict loss name -> float.
        """
        self._append_line("losses", x, losses, "loss")

    def _append_line(self, window, x, values, ylabel):
        """Add one point per named value to the line window `<name>_<window>` (a fresh plot when the
        names change). x: fractional epoch; values: dict name -> float; ylabel: the y axis's label."""
        names = list(values)
        update = "append" if names == self.line_names.get(window) else None
        self.line_names[window] = names
        points = np.array([[float(values[name]) for name in names]])
        self._send("line", points, np.full_like(points, x),
                   win=f"{self.name}_{window}", update=update,
                   opts={"title": f"{self.name} {ylabel} over time", "legend": names,
                         "xlabel": "epoch", "ylabel": ylabel})


def to_chw_unit(picture):
    """uint8 HxWx3 array -> float CxHxW array in [0, 1], which visdom draws without rescaling."""
    return np.transpose(picture, (2, 0, 1)).astype(np.float32) / 255.0


def stack_pictures(pictures):
    """Stack pictures into one (N, 3, H, W) float batch, padding smaller ones with white."""
    pictures = [to_chw_unit(picture) for picture in pictures]
    height = max(picture.shape[1] for picture in pictures)
    width = max(picture.shape[2] for picture in pictures)
    batch = np.ones((len(pictures), 3, height, width), dtype=np.float32)
    for index, picture in enumerate(pictures):
        batch[index, :, :picture.shape[1], :picture.shape[2]] = picture
    return batch


def labels_table(labels, ncols):
    """An HTML table of the labels laid out like the picture grid (ncols per row)."""
    rows = ["".join(f"<td>{html.escape(label)}</td>" for label in labels[start:start + ncols])
            for start in range(0, len(labels), ncols)]
    return "<table>" + "".join(f"<tr>{row}</tr>" for row in rows) + "</table>"


class SilentVisualizer:
    """The visualizer of ranks other than 0 in a torchrun job: every call does nothing, so that only
    rank 0 writes logs, pages and visdom windows."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: ""


def visualizer_for(opt):
    """A Visualizer on rank 0 (or without torchrun), a SilentVisualizer on the other ranks."""
    return Visualizer(opt) if runtime_of(opt).is_main else SilentVisualizer()
