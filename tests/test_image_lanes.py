"""test.py's lanes (engine/image_lanes.py): batches translated two at a time, each lane on its own share of
the compute threads, recorded in input order; large batches alone on every thread; a failure or a Ctrl-C
ends the lanes without losing what they hold; one network shared by lanes with different image sizes."""
import signal
import threading
import time

import pytest
import torch

from engine import image_lanes
from engine.image_lanes import run_in_lanes
from models.size_padding import attach_size_padding


def small_batch(position):
    return {"A": torch.full((1, 3, 4, 4), float(position)), "position": position}


def position_of(batch):
    return batch["position"]


@pytest.fixture
def two_caller_threads():
    """The test's thread computes on two threads (the lanes' share is then one each)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_batches_are_recorded_once_each_in_input_order_whichever_lane_finishes_first():
    recorded = []

    def start_lane():
        def translate(batch):
            time.sleep(0.02 * (position_of(batch) % 3 == 0))  # every third batch finishes late
            return position_of(batch)
        return translate

    run_in_lanes([small_batch(position) for position in range(10)], 2, start_lane, recorded.append)
    assert recorded == list(range(10))


def test_two_lanes_translate_at_once_each_on_its_share_of_the_threads(two_caller_threads):
    both_in = threading.Barrier(2, timeout=30)  # broken (an error) unless two batches are in flight together
    lane_threads, started = [], []

    def start_lane():
        started.append(threading.current_thread().name)

        def translate(batch):
            lane_threads.append(torch.get_num_threads())
            both_in.wait()
            return position_of(batch)
        return translate

    recorded = []
    run_in_lanes([small_batch(position) for position in range(6)], 2, start_lane, recorded.append, threads_per_lane=1)
    assert recorded == list(range(6))
    assert sorted(started) == ["lane-0", "lane-1"]  # start_lane once per lane, in the lane's thread
    assert lane_threads == [1] * 6
    assert torch.get_num_threads() == 2  # the caller's threads are its own again


def test_one_lane_runs_everything_in_the_callers_thread():
    seen = []

    def start_lane():
        def translate(batch):
            seen.append(threading.current_thread())
            return position_of(batch)
        return translate

    recorded = []
    run_in_lanes([small_batch(position) for position in range(3)], 1, start_lane, recorded.append)
    assert recorded == [0, 1, 2] and seen == [threading.current_thread()] * 3


def test_a_large_batch_runs_alone_on_every_thread(monkeypatch, two_caller_threads):
    monkeypatch.setattr(image_lanes, "ALONE_ABOVE_ELEMENTS", 100)
    inside, overlaps, large_threads = [0], [], []
    lock = threading.Lock()

    def start_lane():
        def translate(batch):
            with lock:
                inside[0] += 1
                overlaps.append((position_of(batch), inside[0]))
            if batch["A"].numel() > 100:
                large_threads.append(torch.get_num_threads())
            time.sleep(0.05)
            with lock:
                inside[0] -= 1
            return position_of(batch)
        return translate

    batches = [small_batch(position) for position in range(7)]
    batches[3] = {"A": torch.zeros(1, 3, 8, 8), "position": 3}  # 192 values
    recorded = []
    run_in_lanes(batches, 2, start_lane, recorded.append, threads_per_lane=1)
    assert recorded == list(range(7))
    assert dict(overlaps)[3] == 1  # nothing else was translating while the large batch ran
    assert max(count for _, count in overlaps) == 2  # the small ones did overlap
    assert large_threads == [2]


def test_a_failure_in_a_lane_is_raised_in_the_caller_and_ends_the_lanes():
    recorded, translated = [], []

    def start_lane():
        def translate(batch):
            translated.append(position_of(batch))
            if position_of(batch) == 2:
                raise OSError("disk full")
            time.sleep(0.01)
            return position_of(batch)
        return translate

    with pytest.raises(OSError, match="disk full"):
        run_in_lanes([small_batch(position) for position in range(50)], 2, start_lane, recorded.append)
    assert recorded == list(range(len(recorded))) and 2 not in recorded  # in order, nothing after the failure
    assert len(translated) < 50  # no new batches after it


def test_ctrl_c_in_the_caller_lets_the_lanes_finish_and_record_what_they_hold():
    recorded, taken = [], []
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)

    def start_lane():
        def translate(batch):
            taken.append(position_of(batch))
            if position_of(batch) == 3:
                signal.raise_signal(signal.SIGINT)  # handled in the caller's (main) thread
                time.sleep(0.2)  # still working when the caller asks the lanes to stop
            return position_of(batch)
        return translate

    try:
        with pytest.raises(KeyboardInterrupt):
            run_in_lanes([small_batch(position) for position in range(100)], 2, start_lane, recorded.append)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert recorded == sorted(taken) == list(range(len(taken)))  # every batch taken was finished and recorded
    assert 3 in recorded and len(recorded) < 100


class _WaitsForTheOtherThread(torch.nn.Module):
    """An image network whose forward pass waits until two threads are inside it."""

    size_multiple = 4

    def __init__(self):
        super().__init__()
        self.both_in = threading.Barrier(2, timeout=30)

    def forward(self, x):
        self.both_in.wait()
        return x * 2


def test_size_padding_crops_each_threads_output_to_its_own_input():
    net = _WaitsForTheOtherThread()
    attach_size_padding(net, net.size_multiple)
    inputs = [torch.rand(1, 3, 9, 10), torch.rand(1, 3, 13, 6)]
    outputs = [None, None]

    def run(index):
        outputs[index] = net(inputs[index])

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for given, made in zip(inputs, outputs):
        assert made.shape == given.shape and torch.equal(made, given * 2)
