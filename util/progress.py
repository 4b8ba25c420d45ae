"""tqdm progress bars that stay readable when stderr is not a terminal (screen logs, nohup, files).

On a terminal the bar redraws in place. Otherwise every update becomes one plain line, written
at most every 30 seconds, so a log file holds a readable history instead of carriage returns.
"""
import sys

from tqdm import tqdm

_LOG_INTERVAL_S = 30.0


class _LineStream:
    """A file-like wrapper turning tqdm's carriage-return redraws into separate lines."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        text = text.replace("\r", "").rstrip()
        if text:
            self.stream.write(text + "\n")

    def flush(self):
        self.stream.flush()


def progress_bar(total, desc, unit="img", stream=None, disable=False):
    """A tqdm bar over `total` units (images by default) labelled `desc`; stream defaults to stderr;
    disable: show nothing (ranks other than 0 of a torchrun job)."""
    stream = stream or sys.stderr
    interactive = stream.isatty()
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=False, dynamic_ncols=interactive, disable=disable,
                file=stream if interactive else _LineStream(stream), ascii=not interactive,
                mininterval=0.1 if interactive else _LOG_INTERVAL_S, smoothing=0.1)
