"""Writing test.py's result pictures in background threads, while the network computes the next batch.

Encoding a 256 px result as PNG takes longer than decoding its input (3-6 ms with util.util's zlib
settings against 2 ms to decode and resize a JPEG, on a CPU core), and test.py writes two or more
pictures per input: done in its own thread, that is time a GPU waits. A ResultWriter takes each input's
visuals from test.py and returns its page row at once; its threads turn the visuals into pictures and
write them (engine/html.write_result_images). Pillow's encoder and NumPy release the GIL for most of their work
(two threads saving PNGs did 1.3 times the work of one on two busy cores), as the network's operators
do, so writing runs beside the forward pass.

Where the network computes on every CPU core (test.py on the CPU, torch's default threads), a writer
thread only takes cores from it: its operators then wait for the slower of their threads. There
`threads=0` writes each input inside `submit`, in the caller's thread: test.py's lanes, each translating
its own batches on part of the cores (engine/image_lanes.py; a 2-core Intel Xeon with AMX-BF16, --amp
bf16 --channels_last, 40 images: in test.py's one thread the whole run took 5.4 s against 5.9 s with two
writer threads and loader workers; two lanes since then 4.0 s).

The queue is bounded (`max_pending` inputs), so memory stays flat when the disk is slower than the
network. A write that fails (a full disk, a read-only folder) ends the writing: its error is raised in
test.py's thread at the next `submit` or at `close` (the entry point's util.errors turns it into one
line naming the file, exit status 2). Leaving the `with` block waits for every queued picture, also on
an error or Ctrl-C in test.py, so what was handed over is written in full; a second Ctrl-C stops the
wait (the threads are daemons and end with the process).
"""
import queue
import threading

from engine.html import result_row, write_result_images

_STOP = None  # queued once per thread by `close`: no more work


class ResultWriter:
    """Background writer of result pictures to `image_dir` (one file per visual: <name>_<label>.png).

    image_dir: the result page's image folder; aspect_ratio: test.py's --aspect_ratio; bits: 8 or 16 bits
    per channel (test.py's --output_bits, see engine/html.write_result_images); threads: writer threads;
    max_pending: inputs queued at most before `submit` waits for the writers. With threads=0 `submit`
    writes the pictures itself and returns when they are written.
    """

    def __init__(self, image_dir, aspect_ratio=1.0, bits=8, threads=2, max_pending=8):
        self.image_dir, self.aspect_ratio, self.bits = image_dir, aspect_ratio, bits
        self._queue = queue.Queue(maxsize=max_pending)
        self._error = None
        self._threads = [threading.Thread(target=self._write_queued, name=f"result-writer-{index}", daemon=True)
                         for index in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, visuals, name):
        """Queue one input's visuals for writing and return its page row (see engine/html.result_row).

        visuals: label -> (C, H, W) tensor in [-1, 1], on the CPU, not changed afterwards; name: what
        names the files (engine/html.result_names). Raises the error of a write that failed before.
        """
        self._raise_failure()
        if not self._threads:
            return self._write_now(visuals, name)
        self._queue.put((visuals, name))  # waits while max_pending inputs are queued
        return result_row(name, visuals)

    def _write_now(self, visuals, name):
        """Write one input's pictures in the caller's thread; a Ctrl-C during the write lets it finish
        first (writing the input again in full), so that no picture is left cut short."""
        try:
            return write_result_images(self.image_dir, visuals, None, self.aspect_ratio, name, self.bits)
        except KeyboardInterrupt:
            write_result_images(self.image_dir, visuals, None, self.aspect_ratio, name, self.bits)
            raise

    def close(self):
        """Wait until every queued picture is written; raise the error of a write that failed."""
        self._finish()
        self._raise_failure()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is None:
            self.close()
        else:
            self._finish()  # the error in progress is the one to report; what was queued is still written
        return False

    def _finish(self):
        """Let the threads write what is queued, then end them."""
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join()

    def _raise_failure(self):
        if self._error is not None:
            raise self._error

    def _write_queued(self):
        """A writer thread: write queued inputs until told to stop; after a failure, only empty the queue
        (so that `submit` never waits on a writer that has given up)."""
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is not None:
                continue
            visuals, name = item
            try:
                write_result_images(self.image_dir, visuals, None, self.aspect_ratio, name, self.bits)
            except Exception as err:  # raised in test.py's thread, where the user sees it
                self._error = self._error or err
