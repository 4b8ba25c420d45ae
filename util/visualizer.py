"""Training feedback: loss logs, the training web page and the optional live visdom display.

The training loop owns one `Visualizer`. It appends every printed loss line to
`checkpoints/NAME/loss_log.txt` (the reference tool's format) and a JSON object to `loss_log.jsonl`,
keeps `web/index.html` with one row of pictures per epoch (newest first) under a loss-curve picture,
and, when `--display_id` > 0 and a visdom server answers, mirrors pictures and losses there.
A missing or failing visdom server costs one warning line, never a stream of tracebacks.
"""
import contextlib
import html
import io
import json
import logging
import os
import re
import socket
import sys
import time
import warnings
from urllib.parse import urlparse

import numpy as np

from util.html import HTML, IMAGE_FOLDER
from util.log import logger
from util.loss_plot import plot_loss_curves
from util.util import mkdirs, save_image, tensor2im

CONNECT_TIMEOUT_S = 2.0
LOSS_CURVE_FILE = "loss_curves.png"
EPOCH_IMAGE_NAME = re.compile(r"^epoch(\d+)_(.+)\.png$")


class Visualizer:
    """Loss logs, the training web page and the visdom display of one experiment.

    opt: options with name, checkpoints_dir, isTrain, display_id, display_server, display_port,
        display_env, display_ncols, display_winsize and (training only) no_html.
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
        self.visdom = VisdomDisplay.connect(opt) if opt.display_id > 0 else None
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

    def display_current_results(self, visuals, epoch, save_result):
        """Show the current pictures in visdom and, once per epoch, save them to the web page.

        visuals: ordered dict label -> tensor (N, C, H, W) in [-1, 1]; the batch's first is shown.
        epoch: the current epoch number (names the saved files).
        save_result: whether this call may save the pictures to the web page.
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
            for label, picture in pictures.items():
                save_image(picture, os.path.join(self.image_dir, f"epoch{epoch:03d}_{label}.png"))
            self.write_web_page(label_order=list(pictures))

    def write_web_page(self, label_order=()):
        """Rewrite web/index.html: the loss curves, then every saved epoch's pictures, newest first.

        label_order: labels in the order the model lists them; other labels follow alphabetically.
        """
        page = HTML(self.web_dir, f"Experiment name = {self.name}")
        if self.plot_loss_picture():
            page.add_image(LOSS_CURVE_FILE, caption="training losses")
        for epoch, files in saved_epochs(self.image_dir, label_order):
            page.add_header(f"epoch [{epoch}]")
            paths = [f"{IMAGE_FOLDER}/{file_name}" for _, file_name in files]
            page.add_images(paths, [label for label, _ in files], paths, width=self.win_size)
        page.save()

    def plot_loss_picture(self):
        """Redraw web/loss_curves.png from loss_log.jsonl; return its path (None: no page/losses)."""
        if not self.use_html:
            return None
        return plot_loss_curves(read_loss_records(self.jsonl_path),
                                os.path.join(self.web_dir, LOSS_CURVE_FILE))

    def plot_current_losses(self, epoch, counter_ratio, losses):
        """Append the losses to the visdom loss plot (nothing without visdom).

        epoch: the current epoch number.
        counter_ratio: fraction of the epoch done, in [0, 1].
        losses: dict loss name -> float.
        """
        if self.visdom is not None:
            self.visdom.append_losses(epoch + counter_ratio, losses)

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
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(line + "\n")
        record = {"epoch": epoch, "iters": iters, "time": t_comp, "data": t_data,
                  "losses": losses, "timestamp": time.time()}
        if progress is not None:
            record["progress"] = progress
        with open(self.jsonl_path, "a", encoding="utf-8") as jsonl:
            jsonl.write(json.dumps(record) + "\n")
        return line


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
        self.loss_names = None

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

    def append_losses(self, x, losses):
        """Add one point per loss to the loss window (a fresh plot when the loss names change).

        x: fractional epoch of the point.
        losses: dict loss name -> float.
        """
        names = list(losses)
        update = "append" if names == self.loss_names else None
        self.loss_names = names
        values = np.array([[float(losses[name]) for name in names]])
        self._send("line", values, np.full_like(values, x),
                   win=f"{self.name}_losses", update=update,
                   opts={"title": f"{self.name} loss over time", "legend": names,
                         "xlabel": "epoch", "ylabel": "loss"})


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
    return Visualizer(opt) if getattr(opt, "is_main", True) else SilentVisualizer()
