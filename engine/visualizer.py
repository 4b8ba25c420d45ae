"""Training feedback: loss logs, the training web page and the optional live visdom display.

The training loop owns one `Visualizer`. It appends every printed loss line and every evaluation
(--eval_freq) to `checkpoints/NAME/loss_log.txt` (the reference tool's format) and a JSON object to
`loss_log.jsonl`, saves each epoch's pictures and has the training web page redrawn
(engine.training_page: curves, the best evaluation, pictures by epoch over several pages). When
`--display_id` > 0 and a visdom server answers, pictures, losses and metrics are mirrored there
(engine.visdom_display); with --use_tensorboard / --use_wandb they also go to those loggers. A
missing or failing visdom server costs one warning line, never a stream of tracebacks; so does a log
or page that cannot be written (full disk, quota): training goes on, and its saves say whether the
run's checkpoints can still be written.
"""
import functools
import json
import os
import time

from engine.experiment_loggers import ExperimentLoggers
from engine.html import IMAGE_FOLDER
from engine.training_page import write_training_pages
from engine.visdom_display import VisdomDisplay
from metrics.report import baseline_text, report_values
from runtime.runtime import runtime_of
from util.errors import is_storage_error, write_error
from util.log import logger
from util.util import mkdirs, save_image, tensor2im


def training_goes_on_after_write_errors(method):
    """Decorate a Visualizer method that writes logs or pages: a storage error (full disk, quota,
    read-only folder) costs one warning per method, and training goes on without that output."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except OSError as err:
            if not is_storage_error(err):
                raise
            if method.__name__ not in self.write_failures:
                self.write_failures.add(method.__name__)
                logger.warning(str(write_error(err.filename or self.web_dir, err, "training goes on without it")))
    return wrapper


class Visualizer:
    """Loss logs, the training web page and the visdom display of one experiment.

    opt: options with name, checkpoints_dir, isTrain, display_id, display_server, display_port,
        display_env, display_ncols, display_winsize and (training only) no_html, use_tensorboard,
        use_wandb, wandb_project, continue_train.
    """

    def __init__(self, opt):
        self.name = opt.name
        self.ncols = opt.display_ncols
        self.win_size = opt.display_winsize
        run_dir = os.path.join(opt.checkpoints_dir, opt.name)
        self.web_dir = os.path.join(run_dir, "web")
        self.image_dir = os.path.join(self.web_dir, IMAGE_FOLDER)
        self.log_path = os.path.join(run_dir, "loss_log.txt")
        self.jsonl_path = os.path.join(run_dir, "loss_log.jsonl")
        self.use_html = opt.isTrain and not getattr(opt, "no_html", False)
        self.saved = False
        self.best_text = None  # the best evaluation so far, in words, for the web page
        self.label_order = ()  # the model's visual labels, which order each epoch's pictures
        self.notes_shown = set()  # evaluation notes already printed (each is printed once)
        self.write_failures = set()  # methods whose writes failed (each is warned about once)
        self.visdom = VisdomDisplay.connect(opt) if opt.display_id > 0 else None
        self.loggers = ExperimentLoggers(opt) if opt.isTrain else None
        if opt.isTrain:
            mkdirs(run_dir)
            self._start_logs()
        if self.use_html:
            mkdirs(self.web_dir, self.image_dir)

    def _start_logs(self):
        """Mark the start of this run in loss_log.txt and make sure loss_log.jsonl exists."""
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"================ Training Loss ({time.strftime('%c')}) ================\n")
        open(self.jsonl_path, "a", encoding="utf-8").close()

    def reset(self):
        """Start a new epoch: its pictures may be saved to the web page once more."""
        self.saved = False

    def close(self, failed=False):
        """Flush and close the experiment loggers (TensorBoard, W&B). failed: the run ended with an error."""
        if self.loggers is not None:
            self.loggers.close(failed)

    def display_current_results(self, visuals, epoch, save_result, total_iters=None):
        """Show the current pictures in visdom and, once per epoch, save them to the web page.

        visuals: ordered dict label -> tensor (N, C, H, W) in [-1, 1]; the batch's first is shown.
        epoch: the current epoch number (names the saved files).
        save_result: whether this call may save the pictures to the web page.
        total_iters: images seen so far, the step of the pictures sent to TensorBoard/W&B with each save.
        """
        save_now = self.use_html and save_result and not self.saved
        if self.visdom is None and not save_now:
            return
        pictures = {label: tensor2im(tensor) for label, tensor in visuals.items()}
        if self.visdom is not None:
            if self.ncols > 0:
                self.visdom.show_grid(pictures, self.ncols)
            else:
                self.visdom.show_each(pictures)
        if save_now:
            self.saved = True
            self.save_pictures(pictures, epoch)
            self.write_web_page()
            if self.loggers is not None and total_iters is not None:
                self.loggers.log_images(pictures, total_iters)

    @training_goes_on_after_write_errors
    def save_pictures(self, pictures, epoch):
        """Save one epoch's pictures (label -> uint8 array) for the web page."""
        self.label_order = list(pictures)
        for label, picture in pictures.items():
            save_image(picture, os.path.join(self.image_dir, f"epoch{epoch:03d}_{label}.png"))

    @training_goes_on_after_write_errors
    def write_web_page(self):
        """Rewrite the training pages (engine.training_page) from the logs and the saved pictures."""
        if self.use_html:
            write_training_pages(self.web_dir, self.name, self.jsonl_path, self.label_order, self.best_text,
                                 self.win_size)

    def plot_current_losses(self, epoch, counter_ratio, losses, total_iters=None):
        """Append the losses to the visdom loss plot and the experiment loggers.

        epoch: the current epoch number.
        counter_ratio: fraction of the epoch done, in [0, 1].
        losses: dict loss name -> float.
        total_iters: images seen so far (the step in TensorBoard/W&B; without it they are skipped).
        """
        if self.visdom is not None:
            self.visdom.append_losses(epoch + counter_ratio, losses)
        if self.loggers is not None and total_iters is not None:
            self.loggers.log_scalars({f"loss/{name}": float(value) for name, value in losses.items()}, total_iters)

    def show_best(self, best):
        """Remember the best evaluation for the web page. best: best_score.json's dict, or None."""
        if best is not None:
            self.best_text = (f"best {best['metric']}: {best['score']:.4f} at epoch {best['epoch']} "
                              f"({best['total_iters']} images), saved as best_net_*.pth")

    def log_evaluation(self, epoch, total_iters, progress, evaluation, best):
        """Record one evaluation everywhere it is shown; return the lines to print.

        epoch: the current epoch; total_iters: images seen so far; progress: fractional epoch of the
        point on the curves; evaluation: engine.evaluation.Evaluation; best: the best score's dict
        (engine.evaluation's best_score.json) after this evaluation, or None.
        """
        values = report_values(evaluation.report)
        numbers = "".join(f" {name} {title}: {entry['value']:.4f}{baseline_text(entry, '.4f')}"
                          for name, by_title in evaluation.report["metrics"].items()
                          for title, entry in by_title.items())
        line = f"(epoch: {epoch}, iters: {total_iters}, evaluation: {evaluation.seconds:.1f} s){numbers}"
        self._append_to_logs(line, {"kind": "evaluation", "epoch": epoch, "total_iters": total_iters,
                                    "progress": progress, "metrics": values, "score": evaluation.score,
                                    "improved": evaluation.improved, "seconds": evaluation.seconds,
                                    "feature_images": evaluation.report["protocol"].get("inception_images", 0)})
        flat = {f"{name} {title}": value for name, by_title in values.items() for title, value in by_title.items()}
        if self.visdom is not None and flat:
            self.visdom.append_metrics(progress, flat)
        if self.loggers is not None:
            self.loggers.log_scalars({f"metrics/{key}": value for key, value in flat.items()}, total_iters)
        self.show_best(best)
        self.write_web_page()
        notes = [note for note in evaluation.report["notes"] if note not in self.notes_shown]
        self.notes_shown.update(notes)
        return [line] + [f"  note: {note}" for note in notes] + \
            ([self.best_text + (" (new best)" if evaluation.improved else "")] if self.best_text else [])

    def print_current_losses(self, epoch, iters, losses, t_comp, t_data, progress=None):
        """Log one loss line to loss_log.txt and loss_log.jsonl; return the line (not printed).

        epoch: the current epoch number.
        iters: iterations (images) done in this epoch.
        losses: dict loss name -> float.
        t_comp: computation time per image, in seconds.
        t_data: data loading time per image, in seconds.
        progress: optional fractional epoch (epoch + fraction done) for the loss-curve picture.
        """
        losses = {name: float(value) for name, value in losses.items()}
        line = f"(epoch: {epoch}, iters: {iters}, time: {t_comp:.3f}, data: {t_data:.3f})"
        line += "".join(f" {name}: {value:.3f}" for name, value in losses.items())
        record = {"epoch": epoch, "iters": iters, "time": t_comp, "data": t_data, "losses": losses}
        if progress is not None:
            record["progress"] = progress
        self._append_to_logs(line, record)
        return line

    @training_goes_on_after_write_errors
    def _append_to_logs(self, line, record):
        """Append `line` to loss_log.txt and `record` (timestamped) as one JSON line to loss_log.jsonl."""
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(line + "\n")
        with open(self.jsonl_path, "a", encoding="utf-8") as jsonl:
            jsonl.write(json.dumps({**record, "timestamp": time.time()}) + "\n")


class SilentVisualizer:
    """The visualizer of ranks other than 0 in a torchrun job: every call does nothing, so that only
    rank 0 writes logs, pages and visdom windows."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: ""


def visualizer_for(opt):
    """A Visualizer on rank 0 (or without torchrun), a SilentVisualizer on the other ranks."""
    return Visualizer(opt) if runtime_of(opt).is_main else SilentVisualizer()
