"""Train an image-to-image translation model (CycleGAN, pix2pix, ...).

    python train.py --dataroot ./datasets/horse2zebra --name horse2zebra_cyclegan --model cycle_gan
    python train.py --dataroot ./datasets/facades --name facades_pix2pix --model pix2pix --direction BtoA

Checkpoints, options, loss logs and the training web page go to checkpoints_dir/name/. Every save
also writes a full training state, so `--continue_train` resumes exactly where a run stopped (even
mid-epoch). Ctrl-C or SIGTERM finishes the iteration, saves and prints the command to resume (under
torchrun a signal to any one process stops all of them at the same iteration: engine/interrupt.py).
With --eval_freq, quality metrics (FID/KID, PSNR/SSIM) are computed on held-out images during
training and the best weights are kept as best_net_*.pth (see engine/evaluation.py).
See `python train.py --help` for every flag.
"""
import math
import os
import shlex
import sys
import time

import torch
from tqdm import tqdm

from data import create_dataset
from engine import train_state
from engine.evaluation import BEST_PREFIX, Evaluator, training_untouched
from engine.interrupt import GracefulStop
from engine.visualizer import visualizer_for
from models import checkpoint, create_model
from options.base_options import architecture_summary
from options.train_options import TrainOptions
from runtime.allocator import keep_freed_memory_for_reuse, return_free_memory
from runtime.runtime import runtime_of
from runtime.speed_hints import describe_hardware, speed_hints
from util import atomic_files
from util.errors import UserError, exit_on_user_error
from util.log import logger
from util.progress import progress_bar


def crossed(total, step, every):
    """Whether counting from total - step to total passed a multiple of `every` (works for any batch size)."""
    return every > 0 and total // every > (total - step) // every


class Trainer:
    """One training run: the epoch loop, logging, periodic saves and a clean stop on a signal.

    opt: parsed training options; dataset: the loader; model: the set-up model; visualizer: logs
    and pages; progress: where the run stands (train_state.Progress); evaluator: the
    engine.evaluation.Evaluator of --eval_freq, or None.
    """

    def __init__(self, opt, dataset, model, visualizer, progress, evaluator=None):
        self.opt, self.dataset, self.model, self.visualizer, self.progress = opt, dataset, model, visualizer, progress
        self.evaluator = evaluator
        self.runtime = runtime_of(opt)
        self.save_dir = os.path.join(opt.checkpoints_dir, opt.name)
        self.last_epoch = opt.n_epochs + opt.n_epochs_decay
        # Image count and epoch where the losses first stopped being finite; kept on the device (and
        # updated with Python scalars, which need no copy), so watching costs no synchronisation
        # until they are read at print and save time.
        self.first_bad_image = torch.full((), -1, dtype=torch.long, device=self.runtime.device)
        self.first_bad_epoch = torch.full((), -1, dtype=torch.long, device=self.runtime.device)
        self.first_iteration_timed = not opt.compile

    def watch_losses(self):
        """Remember the first iteration whose losses are NaN or infinite (no synchronisation)."""
        newly_bad = ~self.model.losses_finite() & (self.first_bad_image < 0)
        self.first_bad_image = torch.where(newly_bad, self.progress.total_iters, self.first_bad_image)
        self.first_bad_epoch = torch.where(newly_bad, self.progress.epoch, self.first_bad_epoch)

    def check_losses(self):
        """UserError when the losses stopped being finite (so no NaN weights are ever saved)."""
        images, epoch = int(self.first_bad_image), int(self.first_bad_epoch)
        if images >= 0:
            raise UserError(f"the losses became NaN or infinite at image {images} (epoch {epoch}); the last "
                            "checkpoint is kept: resume from it with a lower --lr, or with --amp bf16 or none "
                            "instead of fp16")

    def save(self, numbered=None, required=True):
        """Save the full state and the latest weights, plus the weights of a numbered save (an epoch
        or iter_<n>) when given, as one commit. A failing periodic save (required=False) is reported
        in one line and training goes on; the previous checkpoint stays intact either way."""
        self.check_losses()
        # Every rank has its own random streams and image pools; rank 0 writes them all.
        runtime = self.runtime
        other_ranks = runtime.gather_to_main([train_state.rank_state(self.model)])[1:] if runtime.distributed else []
        if not runtime.is_main:
            return  # every rank holds the same weights; rank 0 writes them
        try:
            train_state.save_checkpoint(self.model, self.progress, self.dataset, self.opt, numbered, other_ranks)
        except UserError as err:
            if required:
                raise
            logger.warning(f"{err}; training goes on and tries again at the next save")

    def run(self, stop):
        """Train until the last epoch or until `stop` (a GracefulStop) is requested; True when finished."""
        while self.progress.epoch <= self.last_epoch:
            epoch_start = time.time()
            if not self.train_epoch(stop):
                return False
            self.finish_epoch(epoch_start)
        return True

    def train_epoch(self, stop):
        """Run (the rest of) the current epoch; False when stopped by a signal."""
        runtime, progress, model = self.runtime, self.progress, self.model
        self.dataset.set_epoch(progress.epoch, progress.order, progress.epoch_iter)
        self.visualizer.reset()
        trained_now = False
        iter_data_time = time.time()
        with progress_bar(len(self.dataset), f"epoch {progress.epoch}/{self.last_epoch}",
                          disable=not runtime.is_main) as bar:
            bar.update(progress.epoch_iter)
            for batch in self.dataset:
                iter_start = time.time()
                # Images of this step over all processes (the same batch size on every rank).
                step = len(next(value for key, value in batch.items() if key.endswith("_paths"))) * runtime.world_size
                progress.total_iters += step
                progress.epoch_iter = min(progress.epoch_iter + step, len(self.dataset))
                model.set_input(batch)
                model.optimize_parameters()
                if not self.first_iteration_timed:
                    self.first_iteration_timed = True
                    logger.info(f"torch.compile: the first iteration took {time.time() - iter_start:.1f} s, "
                                "compilation included")
                self.watch_losses()
                progress.loss_sum = progress.loss_sum + model.generator_loss().detach()
                progress.batches += 1
                trained_now = True
                self.after_iteration(step, iter_start, iter_start - iter_data_time, bar)
                bar.update(step)
                if stop.should_stop(progress.total_iters):
                    return False
                iter_data_time = time.time()
        # Every epoch gets a row of visuals on the web page, even when display_freq was not reached.
        if trained_now:
            self.visualizer.display_current_results(output_visuals(model), progress.epoch, True, progress.total_iters)
        return True

    def after_iteration(self, step, iter_start, data_time, bar):
        """Display, log and save at their frequencies (counted in images)."""
        opt, progress, model = self.opt, self.progress, self.model
        if crossed(progress.total_iters, step, opt.display_freq):
            self.visualizer.display_current_results(output_visuals(model), progress.epoch,
                                                    crossed(progress.total_iters, step, opt.update_html_freq),
                                                    progress.total_iters)
        if crossed(progress.total_iters, step, opt.print_freq):
            self.check_losses()
            losses = model.get_current_losses()
            compute_time = (time.time() - iter_start) / step
            fraction = progress.epoch_iter / len(self.dataset)
            tqdm.write(self.visualizer.print_current_losses(progress.epoch, progress.epoch_iter, losses,
                                                            compute_time, data_time,
                                                            progress=progress.epoch + fraction))
            self.visualizer.plot_current_losses(progress.epoch, fraction, losses, progress.total_iters)
            bar.set_postfix({name: f"{value:.3f}" for name, value in losses.items()}, refresh=False)
        if self.evaluator and opt.eval_unit == "iters" and crossed(progress.total_iters, step, opt.eval_freq):
            self.evaluate()
        if crossed(progress.total_iters, step, opt.save_latest_freq):
            numbered = f"iter_{progress.total_iters}" if opt.save_by_iter else None
            tqdm.write(f"saving the model as {numbered or 'latest'} (epoch {progress.epoch}, "
                       f"total images {progress.total_iters})")
            self.save(numbered, required=False)

    def evaluate(self):
        """Compute the metrics on the evaluation images, log them and keep the best weights (a failing
        save of those costs one warning line). Every process takes part; rank 0 logs and saves."""
        self.check_losses()  # NaN weights are neither scored nor kept
        return_free_memory()  # the evaluation's buffers differ from a step's (runtime/allocator.py)
        evaluation = self.evaluator.evaluate(self.model)
        return_free_memory()
        if evaluation is None:
            return
        progress = self.progress
        if evaluation.improved:
            try:
                self.evaluator.save_best(self.model, evaluation, progress.epoch, progress.total_iters)
            except UserError as err:
                logger.warning(f"{err}; training goes on without updating {BEST_PREFIX}_net_*.pth")
        position = progress.epoch + progress.epoch_iter / len(self.dataset)
        for line in self.visualizer.log_evaluation(progress.epoch, progress.total_iters, position, evaluation,
                                                   self.evaluator.best):
            tqdm.write(line)

    def finish_epoch(self, epoch_start):
        """Evaluate when due, step the learning rate, move to the next epoch and save (the last epoch
        is always evaluated and saved)."""
        progress = self.progress
        epoch = progress.epoch
        if self.evaluator and self.opt.eval_unit == "epochs" and (epoch % self.opt.eval_freq == 0
                                                                   or epoch == self.last_epoch):
            self.evaluate()
        mean_generator_loss = self.runtime.mean_over_ranks((progress.loss_sum / max(progress.batches, 1)).item())
        old_lr, new_lr = self.model.update_learning_rate(mean_generator_loss)
        progress.start_epoch(epoch + 1)
        if epoch % self.opt.save_epoch_freq == 0 or epoch == self.last_epoch:
            # The last epoch is always saved, so a run never ends without its final weights.
            print(f"saving the model at the end of epoch {epoch}, iters {progress.total_iters}")
            self.save(str(epoch), required=epoch == self.last_epoch)
            train_state.prune_checkpoints(self.save_dir, self.opt.keep_last)
        print(f"End of epoch {epoch} / {self.last_epoch} \t Time Taken: {time.time() - epoch_start:.0f} sec \t "
              f"mean generator loss {mean_generator_loss:.4f} \t learning rate {old_lr:.7f} -> {new_lr:.7f}")


def output_visuals(model):
    """The visuals of the current batch, from the generators whose outputs the user sees: with --ema_decay
    their averages run on the batch once more, identity images included (leaving training as it was:
    random streams and buffers put back); otherwise those of the training step."""
    if not model.outputs_from_averages():
        model.compute_visuals()
        return model.get_current_visuals()
    with model.generators_for_outputs(), training_untouched(model):
        model.test(training_visuals=True)
    return model.get_current_visuals()


def steps_left(opt, progress, images_per_epoch):
    """The optimisation steps from the start of `progress`'s epoch to the end of the run."""
    steps_per_epoch = math.ceil(images_per_epoch / (opt.batch_size * opt.runtime.world_size))
    return steps_per_epoch * (opt.n_epochs + opt.n_epochs_decay - progress.epoch + 1)


def resume_command():
    """The command line that continues this run."""
    args = sys.argv[1:] + ([] if "--continue_train" in sys.argv else ["--continue_train"])
    return shlex.join(["python", sys.argv[0], *args])


def continue_run(opt, save_dir, model, dataset, state_file, state):
    """Load what --continue_train resumes from into `model`; return the Progress to continue at.

    state: the newest training state (None for a run saved by the original tool, which has only
    weights: then training goes on at --epoch_count with fresh optimisers, as the original did).
    """
    if state is None:
        prefix = checkpoint.load_prefix(opt)
        checkpoint.load_networks(model, save_dir, prefix, architecture_summary(opt), raw_weights=True)
        model.restart_average()
        print(f"continuing from the weights saved as {prefix} (no training state: optimisers restart), "
              f"at epoch {opt.epoch_count}")
        return train_state.Progress(epoch=opt.epoch_count)
    if state_file == train_state.state_path(save_dir, train_state.LATEST):
        repair_weight_files(save_dir, state, opt)
    progress = train_state.restore(model, state, opt.runtime.rank)
    if state["data"]["dataset_len"] != len(dataset.dataset):
        logger.warning(f"the dataset changed size since the save ({state['data']['dataset_len']} -> "
                       f"{len(dataset.dataset)} images); this epoch continues in a new order")
        progress.order = None
    print(f"continuing from {state_file}: epoch {progress.epoch}, {progress.epoch_iter} images into it, "
          f"{progress.total_iters} images in total")
    return progress


def repair_weight_files(save_dir, state, opt):
    """Rank 0 makes the weights files agree with the state resumed from, and says what it changed
    (the other ranks read only the state)."""
    if opt.runtime.is_main:
        rewritten, removed = train_state.repair_weight_files(save_dir, state)
        for path in rewritten:
            print(f"rewrote {path} from the training state (a save was interrupted or the file damaged)")
        for path in removed:
            print(f"removed {path}: the save it belongs to never completed")


@exit_on_user_error
def main(argv=None):
    options = TrainOptions()
    opt = options.parse(argv)
    runtime = opt.runtime
    keep_freed_memory_for_reuse()  # before the loader's workers fork; see runtime/allocator.py
    save_dir = os.path.join(opt.checkpoints_dir, opt.name)
    if runtime.is_main:
        atomic_files.remove_stale_temporaries(save_dir)
    state_file, state = None, None
    if opt.continue_train:
        state_file, state = train_state.find_resume_state(save_dir, checkpoint.load_prefix(opt))
        if state is not None:
            train_state.check_same_architecture(state["options"], opt, state_file)
            train_state.check_ema_decay(state["options"], opt, state_file)
    dataset = create_dataset(opt, seed=state["data"]["seed"] if state else None)
    print(f"The number of training images = {len(dataset)}; batch size {opt.batch_size} per process x "
          f"{runtime.world_size} process(es) = {opt.batch_size * runtime.world_size}")
    evaluator = Evaluator(opt) if opt.eval_freq > 0 else None  # checks the evaluation images early
    model = create_model(opt)
    model.setup()
    progress = (continue_run(opt, save_dir, model, dataset, state_file, state) if opt.continue_train
                else train_state.Progress(epoch=opt.epoch_count))
    print(model.describe_networks(opt.verbose))
    if runtime.is_main:
        options.save(opt)
        train_state.report_disk_plan(model, opt, progress, len(dataset))
        steps = steps_left(opt, progress, len(dataset))
        for line in speed_hints(describe_hardware(runtime.device), options.explicit, steps):
            logger.info(line)  # once, before the first step
    visualizer = visualizer_for(opt)
    if evaluator:
        visualizer.show_best(evaluator.best)  # a continued run's page keeps showing the earlier best
    trainer = Trainer(opt, dataset, model, visualizer, progress, evaluator)
    try:
        with GracefulStop(runtime) as stop:
            finished = trainer.run(stop)
            if not finished:
                trainer.save()
    except BaseException:
        visualizer.close(failed=True)  # marks the W&B run as failed
        raise
    visualizer.close()
    if not finished:
        print(f"{stop.summary()}; the full state is saved in {train_state.state_path(save_dir, 'latest')}")
        print(f"resume with: {resume_command()}")
        return
    print(f"training finished: weights in {save_dir}, web page {os.path.join(save_dir, 'web', 'index.html')}")


if __name__ == "__main__":
    main()
