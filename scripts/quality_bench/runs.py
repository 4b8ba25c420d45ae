"""One benchmark run: train.py and test.py as subprocesses, with the command lines a user would type.

Every configuration gets the same data, image size, seed and budget, whatever its model (`cycle_gan`,
train.py's default, or `cut` in either mode: their outputs A -> B, fake_B, are scored). A budget of --iters N trains
N images (iterations at batch size 1, the tool's own count) in whole epochs of the same length, at
the constant rate for the first half of the epochs and decaying linearly to zero over the second
half, as the original's schedule does. A budget of --seconds S trains at the constant rate and
stops train.py with SIGTERM (which saves and exits cleanly) S seconds after its first iteration
finished, so start-up does not count. Losses are printed for every step (--print_freq 1): their
lines give the images trained and the wall-clock seconds per iteration (from the first step's line
to the last one's: epoch ends included; start-up, the first step and the final save excluded).
"""
import glob
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import namedtuple

from metrics.report import report_values

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Epochs of a --seconds run: more than any budget can reach, so SIGTERM is what ends it.
UNLIMITED_EPOCHS = 10 ** 6
LOSS_LINE = re.compile(r"\(epoch: (\d+), iters: (\d+), time: ")  # the original's loss line
TEST_METRICS = "fid,kid,psnr,ssim"
COMPARISON = "fake_B vs real_B"  # A -> B outputs against the B test set and their same-named truth

Training = namedtuple("Training", "images seconds_per_iter wall_seconds")


class RunFailed(Exception):
    """train.py or test.py ended with an error; the message is its error line."""


def load_size(size):
    """The resize before the random crop of `size`: the original's 286/256 margin."""
    return int(round(size * 286 / 256))


def schedule_flags(args):
    """train.py flags for the budget of args (--iters or --seconds) on args.n_train images."""
    if args.seconds is not None:
        return ["--n_epochs", str(UNLIMITED_EPOCHS), "--n_epochs_decay", "0", "--save_epoch_freq", str(UNLIMITED_EPOCHS)]
    epochs = math.ceil(args.iters / args.n_train)
    constant = math.ceil(epochs / 2)
    return ["--n_epochs", str(constant), "--n_epochs_decay", str(epochs - constant),
            "--max_dataset_size", str(math.ceil(args.iters / epochs)), "--save_epoch_freq", str(epochs)]


def train_arguments(args, dataroot, name):
    """train.py's fixed flags for run `name` on the task dataset `dataroot` (a configuration's come after)."""
    return ["--dataroot", dataroot, "--name", name, "--checkpoints_dir", os.path.join(args.out, "checkpoints"),
            "--load_size", str(load_size(args.size)), "--crop_size", str(args.size),
            "--seed", str(args.seed), "--print_freq", "1", "--save_latest_freq", "0", "--display_id", "0",
            "--no_html", *schedule_flags(args)]


def test_arguments(args, dataroot, name, model):
    """test.py's flags for run `name` of `model` (cycle_gan or cut): every test image, all four
    metrics (architecture flags are read back from the run's train_opt.txt)."""
    return ["--dataroot", dataroot, "--name", name, "--checkpoints_dir", os.path.join(args.out, "checkpoints"),
            "--results_dir", os.path.join(args.out, "results"), "--model", model, "--crop_size", str(args.size),
            "--metrics", TEST_METRICS]


def result_folder(args, name):
    """Where test.py writes run `name`'s images and metrics.json."""
    return os.path.join(args.out, "results", name, "test_latest")


class TrainingClock:
    """The images trained and the times of the steps, read from train.py's loss lines as they come."""

    def __init__(self):
        self.epoch, self.done_before_epoch, self.done_in_epoch = None, 0, 0
        self.steps, self.first_time, self.last_time = 0, None, None

    def read(self, line, now):
        """Take one line of train.py's output that arrived at `now`; True if it was a loss line."""
        match = LOSS_LINE.match(line)
        if not match:
            return False
        epoch, in_epoch = int(match.group(1)), int(match.group(2))
        if epoch != self.epoch:
            self.epoch, self.done_before_epoch = epoch, self.done_before_epoch + self.done_in_epoch
        self.done_in_epoch = in_epoch
        self.steps += 1
        self.first_time = self.first_time if self.first_time is not None else now
        self.last_time = now
        return True

    @property
    def images(self):
        """Images trained so far (over all epochs)."""
        return self.done_before_epoch + self.done_in_epoch

    def seconds_per_iter(self):
        """Wall-clock seconds per step from the first to the last loss line (None with fewer than two)."""
        return (self.last_time - self.first_time) / (self.steps - 1) if self.steps > 1 else None


def error_line(log_path):
    """The line that says why a command failed: its last `error:` line, else its last line."""
    with open(log_path, encoding="utf-8", errors="replace") as log:
        lines = [line.strip() for line in log if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or ["no output"])[-1]


def script_command(script, arguments):
    """The command that runs the repository's `script` (train.py, test.py) with `arguments`."""
    return [sys.executable, os.path.join(REPO, script), *arguments]


def run_train(args, arguments, log_path):
    """Run train.py with `arguments`, its output going to log_path; return its Training (RunFailed
    when it fails). With args.seconds, SIGTERM stops it that long after its first iteration."""
    clock, timer = TrainingClock(), None
    start = time.monotonic()
    with open(log_path, "w", encoding="utf-8", buffering=1) as log, subprocess.Popen(
            script_command("train.py", arguments), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1")) as process:
        for line in process.stdout:
            log.write(line)
            if clock.read(line, time.monotonic()) and args.seconds is not None and timer is None:
                timer = threading.Timer(args.seconds, process.send_signal, [signal.SIGTERM])
                timer.daemon = True
                timer.start()
    if timer is not None:
        timer.cancel()
    if process.returncode != 0:
        raise RunFailed(f"train.py: {error_line(log_path)}")
    return Training(clock.images, clock.seconds_per_iter(), time.monotonic() - start)


def run_test(args, arguments, name, log_path):
    """Run test.py with `arguments` (output to log_path) and return its metrics.json report."""
    with open(log_path, "w", encoding="utf-8") as log:
        finished = subprocess.run(script_command("test.py", arguments), stdout=log, stderr=subprocess.STDOUT)
    if finished.returncode != 0:
        raise RunFailed(f"test.py: {error_line(log_path)}")
    with open(os.path.join(result_folder(args, name), "metrics.json"), encoding="utf-8") as handle:
        return json.load(handle)


def scores(report):
    """The numbers of a test.py report: psnr, ssim, fid, kid of the A -> B outputs (None where a
    metric is missing), and under 'metrics' every metric of every comparison."""
    values = report_values(report)
    found = {name: values.get(name, {}).get(COMPARISON) for name in TEST_METRICS.split(",")}
    return {**found, "metrics": values}


def remove_weights(args, name):
    """Delete run `name`'s weights and training state (hundreds of MB per run); logs and options stay."""
    for path in glob.glob(os.path.join(args.out, "checkpoints", name, "*.pth")):
        os.remove(path)


def run(args, task, dataroot, config, flags, model):
    """Train and test one configuration (its flags, as a list, and the model they choose) on one
    task; return its row of results (status 'failed' with the error line when train.py or test.py
    failed)."""
    name = f"{task}-{config.name}"
    logs = os.path.join(args.out, "logs")
    os.makedirs(logs, exist_ok=True)
    row = {"task": task, "config": config.name, "flags": config.flags, "name": name,
           "log": os.path.join(logs, f"{name}_train.log")}
    try:
        training = run_train(args, [*train_arguments(args, dataroot, name), *flags], row["log"])
        row.update(images=training.images, seconds_per_iter=training.seconds_per_iter,
                   train_seconds=round(training.wall_seconds, 1))
        start = time.monotonic()
        row["test_log"] = os.path.join(logs, f"{name}_test.log")
        row.update(scores(run_test(args, test_arguments(args, dataroot, name, model), name, row["test_log"])))
        row.update(test_seconds=round(time.monotonic() - start, 1), images_folder=os.path.join(
            result_folder(args, name), "images"), status="ok")
    except RunFailed as failure:
        row.update(status="failed", error=str(failure))
    if not args.keep_checkpoints:
        remove_weights(args, name)
    return row
