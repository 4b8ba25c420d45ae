"""Quality evaluation during training (--eval_freq): metrics on held-out images and the best weights.

Every --eval_freq epochs (or images) the generators run over the evaluation images (--eval_phase of
--eval_dataroot, read the way test.py reads test images), and --metrics are computed by the same
code as `test.py --metrics`, on the generators' averages with --ema_decay (unless --raw_weights).
Whenever --best_metric improves, the weights are saved as best_net_<name>.pth (with --ema_decay: the
averages, the raw weights as best_net_<name>_raw.pth) with the score in best_score.json; `test.py
--epoch best` tests them. The real images' Inception features are computed at the first evaluation
and kept, so later evaluations cost only the generated side. Evaluating leaves training exactly as it was: it runs on saved-and-restored
random generators and puts back the networks' buffers (batch-norm statistics). Where the generators
would compute on every CPU core, two batches are translated at a time (engine/image_lanes.py).
"""
import argparse
import contextlib
import json
import os
import time
from collections import namedtuple

import numpy as np

from data import create_dataset
from engine import train_state
from engine.image_lanes import lanes_for, translate_in_lanes
from engine.metric_collector import MetricsCollector
from metrics.registry import METRICS
from metrics.report import compute_metrics, report_values
from models import checkpoint
from util import atomic_files
from util.errors import UserError
from util.log import logger

BEST_PREFIX = "best"
BEST_SCORE_FILE = "best_score.json"

Evaluation = namedtuple("Evaluation", "report score improved seconds")


def evaluation_options(opt):
    """Options that read the evaluation images as test.py reads test images: whole images (load size =
    crop size), no flipping, in file order, all of them, sharded over the torchrun processes."""
    eval_opt = argparse.Namespace(**vars(opt))
    eval_opt.dataroot = opt.eval_dataroot or opt.dataroot
    eval_opt.phase = opt.eval_phase
    eval_opt.isTrain = False
    eval_opt.no_flip = eval_opt.serial_batches = True
    eval_opt.load_size = opt.crop_size
    eval_opt.max_dataset_size = float("inf")
    return eval_opt


def read_best_score(save_dir):
    """The saved best_score.json of a run as a dict, or None."""
    path = os.path.join(save_dir, BEST_SCORE_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except ValueError:
        logger.warning(f"{path} is not valid JSON; the best score starts afresh")
        return None


@contextlib.contextmanager
def training_untouched(model):
    """Run the body, then put back the random generators and every network buffer as they were."""
    rng = train_state.rng_states()
    buffers = [buffer.detach().clone() for net in model.networks().values() for buffer in net.buffers()]
    try:
        yield
    finally:
        train_state.restore_rng_states(rng)
        for saved, buffer in zip(buffers, (b for net in model.networks().values() for b in net.buffers())):
            buffer.copy_(saved)


class Evaluator:
    """Computes --metrics on the evaluation images and keeps the best weights of a training run.

    opt: training options (eval_freq, eval_unit, eval_dataroot, eval_phase, metrics, best_metric,
    fid_weights, checkpoints_dir, name, continue_train, runtime, ...).
    """

    def __init__(self, opt):
        self.opt = opt
        self.names = opt.metrics.split(",")
        self.save_dir = os.path.join(opt.checkpoints_dir, opt.name)
        self.dataset = self._load_dataset()
        self.inception = None  # loaded at the first evaluation that needs it, then reused
        self.real_features = {}  # label -> {picture key: feature row}, filled by the collectors
        self.best = read_best_score(self.save_dir) if opt.continue_train else None

    def _load_dataset(self):
        """The evaluation images; a UserError naming the flags to fix when they are missing."""
        eval_opt = evaluation_options(self.opt)
        try:
            dataset = create_dataset(eval_opt)
        except UserError as err:
            problem = str(err).split("; ")[0]  # the data layer's fix names --dataroot/--phase, not ours
            raise UserError(f"--eval_freq: {problem}; pass --eval_dataroot (a dataset folder laid out like "
                            "--dataroot) or --eval_phase (its subfolder: testA/testB, or test/ for aligned data)"
                            ) from None
        if len(dataset) == 0:
            raise UserError(f"--eval_freq: no evaluation images in {eval_opt.dataroot} (phase {eval_opt.phase}); "
                            "pass --eval_dataroot or --eval_phase naming them")
        return dataset

    def evaluate(self, model):
        """Run the generators over the evaluation images and compute the metrics. Every process must
        call it; rank 0 gets an Evaluation (report, score, improved, seconds), the others None."""
        start = time.perf_counter()
        # Test-style options: ground truth found by name comes from the evaluation folder, read as test.py reads it.
        collector = MetricsCollector(self.names, evaluation_options(self.opt), model.visual_names, self.inception,
                                     self.real_features)
        self.inception = collector.inception or self.inception
        # The generators that make the user's outputs (the averages of --ema_decay) run in training mode,
        # as test.py runs them without --eval.
        with model.generators_for_outputs(), training_untouched(model):
            lanes = lanes_for(self.opt.runtime.device, model.generators().values(), self.opt.compile)
            # Two batches at a time where the generators would compute on every CPU core (engine/image_lanes.py).
            translate_in_lanes(model, self.dataset, lanes, lambda own, batch: (own.get_current_visuals(), batch),
                               lambda result: collector.add(*result))
        collected = collector.finish()
        if collected is None:
            return None
        report = compute_metrics(self.names, collected)
        score = self.score(report)
        improved = score is not None and (self.best is None or self.better(score, self.best["score"]))
        return Evaluation(report, score, improved, time.perf_counter() - start)

    def score(self, report):
        """--best_metric averaged over the comparisons (both directions of a CycleGAN); None if absent."""
        values = list(report_values(report).get(self.opt.best_metric, {}).values())
        return float(np.mean(values)) if values else None

    def better(self, score, best_score):
        """Whether `score` improves on `best_score` in the direction of --best_metric."""
        if METRICS[self.opt.best_metric].higher_is_better:
            return score > best_score
        return score < best_score

    def save_best(self, model, evaluation, epoch, total_iters):
        """Save the weights as best_net_*.pth and their score as best_score.json, as one commit (rank 0 only)."""
        best = {"metric": self.opt.best_metric, "score": evaluation.score,
                "higher_is_better": METRICS[self.opt.best_metric].higher_is_better,
                "epoch": epoch, "total_iters": total_iters, "metrics": report_values(evaluation.report),
                "weights": f"{BEST_PREFIX}_net_<name>.pth"}
        text = json.dumps(best, indent=2) + "\n"
        atomic_files.write_files(checkpoint.weight_files(self.save_dir, [BEST_PREFIX], checkpoint.network_weights(model))
                               + [(os.path.join(self.save_dir, BEST_SCORE_FILE), text.encode("utf-8"))])
        self.best = best
