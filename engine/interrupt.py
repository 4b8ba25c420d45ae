"""Stop training cleanly on Ctrl-C (SIGINT) or SIGTERM: finish the iteration, save, exit 0.

The first signal only sets `requested`; the training loop asks `should_stop` after each iteration, then
saves the full state and prints how to resume. A second Ctrl-C ends the process at once (exit status
130), even in the middle of a save: saves are atomic, so the previous checkpoint stays valid.

Under torchrun a signal may reach one process only (a scheduler, a `kill`), yet every process must stop
at the same iteration, so that the saved states agree and a resume is exact. The processes vote without
waiting for each other: at a check, each one reads the result of the vote it started at the previous
check (finished long since, unless another process lags behind by a whole interval) and starts the
next, a small host-side all-reduce of its request. All stop at the first check whose result holds a
request. The checks are spaced about CHECK_SECONDS apart at the pace of the slowest process, which is
agreed in the same votes, so every process stops within two check intervals of the iteration that
noticed the signal: about a second, or two iterations where an iteration takes longer than
CHECK_SECONDS (plus any save or evaluation that falls in between). Iterations between checks make no
collective call.
"""
import math
import os
import signal
import sys
import time

from util.log import logger

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
CHECK_SECONDS = 0.5  # the aimed time between two stop checks under torchrun; a stop takes up to two



def signal_exit_status(signum):
    """The exit status the shell reports for a process ended by signal `signum`: 128 + its number (130
    for a Ctrl-C)."""
    return 128 + signum

class GracefulStop:
    """Context manager catching SIGINT/SIGTERM during training; `requested` names the signal this
    process received, and `should_stop` tells the training loop when to stop (every process at once).

    runtime: the run's Runtime (under torchrun the processes agree on when to stop); clock: a monotonic
    clock in seconds, which spaces the checks (a stand-in in tests).
    """

    def __init__(self, runtime, clock=time.monotonic):
        self.runtime, self.clock = runtime, clock
        self.requested = None
        self._previous = {}
        self.iterations = 0  # training iterations so far (the same count on every process)
        self.next_check = 1
        self.last_check = (0, clock())  # iteration and clock time of the last check
        self.vote = None  # the result function of the vote started at the last check
        self.noticed = None  # (images trained, wall-clock time) when a request was first seen
        self.stopped = None  # (images trained, wall-clock time) when every process stopped

    def __enter__(self):
        for signum in _SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, exc_type, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        if exc_type is None and self.vote is not None:
            self.vote()  # the last vote of a finished run, so that it does not outlive the process group
        return False

    def _handle(self, signum, frame):
        if self.requested is not None:
            if signum != signal.SIGINT:
                return  # a repeated SIGTERM (torchrun sends its own after the scheduler's) changes nothing
            # A second Ctrl-C: leave now. os._exit, because an exception raised here could land inside
            # library code that swallows it, and the user asked to stop at once. Printed and flushed
            # here, not logged: os._exit skips every buffer and handler.
            print("\nstopped at once; the last complete checkpoint is kept", file=sys.stderr, flush=True)
            os._exit(signal_exit_status(signum))
        self.requested = signal.Signals(signum).name
        when = "together with the other processes, within about a second," if self.runtime.distributed else \
            "after this iteration"
        logger.info(f"{self.requested} received: stopping {when} and saving "
                    "(press Ctrl-C again to stop at once, without saving)")

    def should_stop(self, images):
        """Called by every process after each training iteration, with the images trained so far (the
        same number on every process): True when training is to stop now, on every process at once."""
        self.iterations += 1
        if self.requested is not None and self.noticed is None:
            self.noticed = (images, time.time())
        if self.runtime.distributed:
            if self.iterations < self.next_check:
                return False  # no collective call between checks
            stop = self._check()
        else:
            stop = self.noticed is not None
        if stop:
            self.stopped = (images, time.time())
        return stop

    def _check(self):
        """Read the previous vote, start the next one and schedule the next check; True when the previous
        vote holds a request. Every process checks at the same iterations, as the schedule comes from the
        votes' results."""
        interval = 1  # until the first vote's result is in
        if self.vote is not None:
            requested, minus_interval, minus_images, minus_time = self.vote()
            self.vote = None
            if requested:
                self.noticed = (int(-minus_images), -minus_time)  # the earliest of all processes
                return True
            interval = int(-minus_interval)
        now = self.clock()
        since, then = self.last_check
        self.last_check = (self.iterations, now)
        self.next_check = self.iterations + interval
        # Maxima of negated values are minima: the slowest pace wins, and the earliest notice.
        images, noticed_time = self.noticed or (math.inf, math.inf)
        self.vote = self.runtime.start_max_over_ranks(
            [float(self.noticed is not None), -self._iterations_per_check(self.iterations - since, now - then),
             -images, -noticed_time])
        return False

    @staticmethod
    def _iterations_per_check(iterations, seconds):
        """How many iterations take about CHECK_SECONDS at the pace of the last `iterations` (at least 1)."""
        return max(1, int(CHECK_SECONDS * iterations / seconds)) if seconds > 0 else 1

    def summary(self):
        """One line saying what stopped training and where (once should_stop has said to stop)."""
        (noticed, noticed_time), (stopped, stopped_time) = self.noticed, self.stopped
        if not self.runtime.distributed:
            return f"stopped by {self.requested} at image {stopped}"
        source = f"{self.requested} to this process" if self.requested else "a signal to another process"
        return (f"stopped by {source}: noticed at image {noticed}, every process stopped at image {stopped}, "
                f"{stopped_time - noticed_time:.1f} s later")
