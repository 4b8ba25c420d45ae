"""Translating batches in parallel lanes on the CPU, for test.py and the evaluation during training:
several batches at a time, each on its share of the CPU threads, recorded in input order.

Where the network computes on every CPU core, test.py translating one batch at a time leaves the cores
idle while it reads and writes pictures (done in its own thread there, engine/result_writer.py), and
every operator of the network waits for the slowest of its threads. Two lanes, each translating its own
batches on half the threads and reading and writing its own pictures, keep every core busy without
that wait: on a 2-core Intel Xeon with AMX-BF16 (`--amp bf16 --channels_last`, 40 images of 256 px,
resnet_9blocks) the bf16 generator alone ran 57-59 ms per image in two one-thread lanes against 64-70
ms on two threads, and the whole run took 4.2 s instead of 4.9 s (README, Speed). The evaluation of
a 256 px CycleGAN during training ran 1.03 to 1.17 times as fast.

Each lane's thread sets its own number of compute threads (torch keeps it per thread, as OpenMP does).
A batch larger than `ALONE_ABOVE_ELEMENTS` input values waits until the other lanes are idle and then
runs alone on every thread, so that lanes never hold two large images' feature maps at once: memory
stays that of one lane for the large images that can fill it. `record` (the page rows, the metrics, the
progress bar) runs in input order, one batch at a time, whichever lane finished first.

A failure in a lane ends every lane (after the batch each is working on) and is raised in the caller's
thread; so is a Ctrl-C there, after the lanes have finished and recorded their current batches, so that
no picture is left cut short. A second Ctrl-C stops waiting for the records; the lanes still end
their batches before the process does.
"""
import copy
import threading

import torch
import torch.nn as nn

from runtime.device import cpus_left_by_the_network

# A 1024 x 1024 px RGB image: a resnet_9blocks generator's feature maps take about a gigabyte there in
# fp32, growing with the pixels; larger batches run alone.
ALONE_ABOVE_ELEMENTS = 3 * 1024 * 1024

# The layers that draw random numbers in training mode.
RANDOM_LAYERS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


def draws_random_numbers(networks):
    """Whether a forward pass of `networks` draws random numbers: a dropout layer in training mode (as
    pix2pix's U-Net runs in test.py without --eval, like the original's), or a layer that says it does
    (`draws_random_numbers`: the noise injection of the StyleGAN2 generator, in every mode). Lanes would
    draw them in an order that changes from run to run, so that --seed no longer fixed the outputs."""
    return any((isinstance(layer, RANDOM_LAYERS) and layer.training and layer.p > 0)
               or getattr(layer, "draws_random_numbers", False)
               for net in networks for layer in net.modules())


def lanes_for(device, networks, compiled=False, tiled=False):
    """How many batches to translate at a time with `networks` on `device`: two where the network would
    compute on every CPU core of several; one elsewhere (a GPU, fewer torch threads than cores), for
    networks that draw random numbers (draws_random_numbers), compiled ones (compiled code is run from one
    thread) and tiled ones (models/tiling.py keeps each image's statistics on the layers)."""
    if cpus_left_by_the_network(device) or compiled or tiled or torch.get_num_threads() < 2 \
            or draws_random_numbers(networks):
        return 1
    return 2


def lane_model(model, lanes):
    """The model a lane drives: with several lanes its own shallow copy, whose inputs and outputs (the
    attributes set_input and forward set) are its own while the networks are shared; else `model`."""
    return copy.copy(model) if lanes > 1 else model


def translate_in_lanes(model, batches, lanes, finish, record):
    """run_in_lanes for a model: each lane drives its own lane_model through set_input and test, then
    finish(own model, batch), still in the lane (writing pictures, say), gives the result that
    record(result) gets, in input order."""
    def start_lane():
        own = lane_model(model, lanes)

        def translate(batch):
            own.set_input(batch)
            own.test()
            return finish(own, batch)
        return translate
    run_in_lanes(batches, lanes, start_lane, record)


def input_elements(batch):
    """The number of input values of a batch: the elements of its tensors."""
    return sum(value.numel() for value in batch.values() if isinstance(value, torch.Tensor))


class _Lanes:
    """The shared state of one run_in_lanes call: the batch source, the turn of `record`, the seats taken."""

    def __init__(self, batches, lanes, record, threads_per_lane, all_threads):
        self.batches, self.lanes, self.record = iter(batches), lanes, record
        self.threads_per_lane, self.all_threads = threads_per_lane, all_threads
        self.condition = threading.Condition()
        self.reading = threading.Lock()  # one reader at a time: the loader's iterator is not thread-safe
        self.taken = 0  # batches handed out so far: the next one's position in the input order
        self.recorded = 0  # batches recorded so far: the position whose turn it is
        self.busy = 0  # lanes translating now; `lanes` while a batch runs alone
        self.stopping = False  # no new batches (Ctrl-C in the caller, or a failure)
        self.failure = None  # the first exception of a lane
        self.go = threading.Event()  # set once every lane has started (or the caller stops them)
        self.running = 0  # lane threads started and not yet ended

    def next_batch(self):
        """(position, batch) of the next batch, or None when there is none or the lanes are stopping."""
        with self.reading:
            if self.stopping:
                return None
            try:
                batch = next(self.batches)
            except StopIteration:
                return None
            self.taken += 1
            return self.taken - 1, batch

    def take_seat(self, alone):
        """Wait for room to translate: any free lane, or for a batch that runs alone, every lane idle
        (then this thread computes on all the threads)."""
        with self.condition:
            self.condition.wait_for(lambda: self.busy == 0 if alone else self.busy < self.lanes)
            self.busy = self.lanes if alone else self.busy + 1
        if alone:
            torch.set_num_threads(self.all_threads)

    def leave_seat(self, alone):
        if alone:
            torch.set_num_threads(self.threads_per_lane)
        with self.condition:
            self.busy = 0 if alone else self.busy - 1
            self.condition.notify_all()

    def record_in_turn(self, position, result):
        """Call `record(result)` once every earlier batch is recorded; False (recording nothing) when a
        lane failed meanwhile."""
        with self.condition:
            self.condition.wait_for(lambda: self.recorded == position or self.failure is not None)
            if self.failure is not None:
                return False
        # Alone in its turn: the batches after this one wait for `recorded` to move on.
        try:
            self.record(result)
        finally:
            with self.condition:
                self.recorded += 1
                self.condition.notify_all()
        return True

    def fail(self, error):
        with self.condition:
            self.failure = self.failure or error
            self.stopping = True
            self.condition.notify_all()

    def stop(self):
        with self.condition:
            self.stopping = True

    def start(self, start_lane, index):
        """Start one lane's thread and return it."""
        with self.condition:
            self.running += 1  # before the thread exists: `start` returns only once it does
        thread = threading.Thread(target=self.run_lane, args=(start_lane,), name=f"lane-{index}")
        try:
            thread.start()
        except RuntimeError:  # the system started no thread
            with self.condition:
                self.running -= 1
            raise
        return thread

    def wait_for_lanes(self):
        """Return once every lane has ended. Waits in short steps: Python handles a Ctrl-C in the main
        thread only when it runs Python code, even where the kernel delivered it to a lane's thread."""
        with self.condition:
            while self.running:
                self.condition.wait(0.1)

    def run_lane(self, start_lane):
        """One lane's thread: translate and record batches until none is left, the lanes stop or one fails."""
        try:
            torch.set_num_threads(self.threads_per_lane)
            self.go.wait()
            translate = start_lane()
            while (item := self.next_batch()) is not None:
                position, batch = item
                alone = input_elements(batch) > ALONE_ABOVE_ELEMENTS
                self.take_seat(alone)
                try:
                    result = translate(batch)
                finally:
                    self.leave_seat(alone)
                if not self.record_in_turn(position, result):
                    return
        except BaseException as error:  # raised in the caller's thread, where the user sees it
            self.fail(error)
        finally:
            with self.condition:
                self.running -= 1
                self.condition.notify_all()


def run_in_lanes(batches, lanes, start_lane, record):
    """For every batch of `batches`, `record(translate(batch))` in input order, with `lanes` batches
    translated at a time, each lane's operators on an equal share of the caller's compute threads (a
    batch above ALONE_ABOVE_ELEMENTS on all of them).

    start_lane(): called once in each lane's thread, returns that lane's `translate` (its own model state);
    record(result): called one batch at a time, in input order. With one lane everything runs in the
    caller's thread, on its threads.
    """
    if lanes == 1:
        translate = start_lane()
        for batch in batches:
            record(translate(batch))
        return
    caller_threads = torch.get_num_threads()
    shared = _Lanes(batches, lanes, record, max(1, caller_threads // lanes), caller_threads)
    threads = []
    try:
        for index in range(lanes):
            threads.append(shared.start(start_lane, index))
        shared.go.set()
        shared.wait_for_lanes()
    except BaseException:  # a Ctrl-C, or no thread to be had
        shared.stop()  # the lanes finish and record the batches they hold, then end
        shared.go.set()
        shared.wait_for_lanes()
        raise
    finally:
        # Their last objects are freed when the threads end: not while the interpreter shuts down, where
        # freeing a tensor in an ending thread aborts the process.
        for thread in threads:
            thread.join()
        torch.set_num_threads(caller_threads)  # also torch's default for threads started later
    if shared.failure is not None:
        raise shared.failure
