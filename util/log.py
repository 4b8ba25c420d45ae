"""The tool's logger: notices and warnings go to stderr without breaking tqdm progress bars."""
import logging
import sys

import tqdm

logger = logging.getLogger("cyclegan")


class _TqdmHandler(logging.Handler):
    """Writes each record through tqdm.write so that an active progress bar is redrawn below it."""

    def emit(self, record):
        try:
            tqdm.tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging must never take the run down
            self.handleError(record)


class _Formatter(logging.Formatter):
    """`warning: message` for warnings and errors, the bare message for notices."""

    def format(self, record):
        message = record.getMessage()
        return message if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {message}"


def _install_handler():
    handler = _TqdmHandler()
    handler.setFormatter(_Formatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # our lines are for the user, not for an application's root logger


_install_handler()
