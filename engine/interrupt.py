"""Stop training cleanly on Ctrl-C (SIGINT) or SIGTERM: finish the iteration, save, exit 0.

The first signal only sets `requested`; the training loop checks it after each iteration, saves
the full state and prints how to resume. A second Ctrl-C ends the process at once (exit status
130), even in the middle of a save: saves are atomic, so the previous checkpoint stays valid.
"""
import os
import signal
import sys

from util.log import logger

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulStop:
    """Context manager catching SIGINT/SIGTERM during training; `requested` names the signal."""

    def __init__(self):
        self.requested = None
        self._previous = {}

    def __enter__(self):
        for signum in _SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False

    def _handle(self, signum, frame):
        if self.requested is not None:
            if signum != signal.SIGINT:
                return  # a repeated SIGTERM (torchrun sends its own after the scheduler's) changes nothing
            # A second Ctrl-C: leave now. os._exit, because an exception raised here could land inside
            # library code that swallows it, and the user asked to stop at once. Printed and flushed
            # here, not logged: os._exit skips every buffer and handler.
            print("\nstopped at once; the last complete checkpoint is kept", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        self.requested = signal.Signals(signum).name
        logger.info(f"{self.requested} received: stopping after this iteration and saving "
                    "(press Ctrl-C again to stop at once, without saving)")
