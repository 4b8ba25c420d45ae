"""The live visdom display of a training run: pictures, loss and metric curves in a visdom server's
windows. Used by engine.visualizer when --display_id > 0. The visdom client is imported only then; a
missing package, an absent server or a failed send costs one warning line and the run goes on
without the display."""
import contextlib
import html
import io
import logging
import socket
import warnings
from urllib.parse import urlparse

import numpy as np

from util.log import logger

CONNECT_TIMEOUT_S = 2.0


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
