"""Train an image-to-image translation model (CycleGAN, pix2pix, ...).

    python train.py --dataroot ./datasets/horse2zebra --name horse2zebra_cyclegan --model cycle_gan
    python train.py --dataroot ./datasets/facades --name facades_pix2pix --model pix2pix --direction BtoA

Checkpoints, options, loss logs and the training web page go to checkpoints_dir/name/.
See `python train.py --help` for every flag.
"""
import os
import time

import torch
from tqdm import tqdm

from data import create_dataset
from models import create_model
from options.base_options import architecture_summary
from options.train_options import TrainOptions
from util import checkpoint
from util.errors import exit_on_user_error
from util.progress import progress_bar
from util.visualizer import Visualizer


def crossed(total, step, every):
    """Whether counting from total - step to total passed a multiple of `every` (works for any batch size)."""
    return every > 0 and total // every > (total - step) // every


def train_one_epoch(opt, epoch, last_epoch, dataset, model, visualizer, total_iters):
    """Run one epoch; returns (images seen in total so far, mean generator loss of the epoch)."""
    save_dir = os.path.join(opt.checkpoints_dir, opt.name)
    visualizer.reset()
    epoch_iter = 0
    generator_loss_sum = torch.zeros((), device=opt.device)
    batches = 0
    data_time = 0.0
    iter_data_time = time.time()
    with progress_bar(len(dataset), f"epoch {epoch}/{last_epoch}") as bar:
        for batch in dataset:
            iter_start = time.time()
            data_time = iter_start - iter_data_time
            step = len(next(v for k, v in batch.items() if k.endswith("_paths")))
            total_iters += step
            epoch_iter += step
            model.set_input(batch)
            model.optimize_parameters()
            generator_loss_sum += model.generator_loss().detach()
            batches += 1

            if crossed(total_iters, step, opt.display_freq):
                model.compute_visuals()
                visualizer.display_current_results(model.get_current_visuals(), epoch,
                                                   crossed(total_iters, step, opt.update_html_freq))
            if crossed(total_iters, step, opt.print_freq):
                losses = model.get_current_losses()
                compute_time = (time.time() - iter_start) / step
                progress = epoch_iter / len(dataset)
                tqdm.write(visualizer.print_current_losses(epoch, epoch_iter, losses, compute_time, data_time,
                                                           progress=epoch + progress))
                visualizer.plot_current_losses(epoch, progress, losses)
                bar.set_postfix({name: f"{value:.3f}" for name, value in losses.items()}, refresh=False)
            if crossed(total_iters, step, opt.save_latest_freq):
                prefix = f"iter_{total_iters}" if opt.save_by_iter else "latest"
                tqdm.write(f"saving the model as {prefix} (epoch {epoch}, total images {total_iters})")
                checkpoint.save_networks(model, save_dir, prefix)
            bar.update(step)
            iter_data_time = time.time()
    # Every epoch gets a row of visuals on the web page, even when display_freq was not reached.
    if batches:
        model.compute_visuals()
        visualizer.display_current_results(model.get_current_visuals(), epoch, True)
    mean_generator_loss = (generator_loss_sum / max(batches, 1)).item()
    return total_iters, mean_generator_loss


@exit_on_user_error
def main(argv=None):
    opt = TrainOptions().parse(argv)
    dataset = create_dataset(opt)
    print(f"The number of training images = {len(dataset)}")
    model = create_model(opt)
    model.setup()
    save_dir = os.path.join(opt.checkpoints_dir, opt.name)
    if opt.continue_train:
        prefix = checkpoint.load_prefix(opt)
        checkpoint.load_networks(model, save_dir, prefix, architecture_summary(opt))
        print(f"continuing from the networks saved as {prefix}, at epoch {opt.epoch_count}")
    print(model.describe_networks(opt.verbose))
    visualizer = Visualizer(opt)

    last_epoch = opt.n_epochs + opt.n_epochs_decay
    total_iters = 0
    epoch = opt.epoch_count - 1
    for epoch in range(opt.epoch_count, last_epoch + 1):
        epoch_start = time.time()
        total_iters, mean_generator_loss = train_one_epoch(opt, epoch, last_epoch, dataset, model, visualizer,
                                                           total_iters)
        if epoch % opt.save_epoch_freq == 0 or epoch == last_epoch:
            # The last epoch is always saved, so a run never ends without its final weights.
            print(f"saving the model at the end of epoch {epoch}, iters {total_iters}")
            checkpoint.save_networks(model, save_dir, "latest")
            checkpoint.save_networks(model, save_dir, str(epoch))
        old_lr, new_lr = model.update_learning_rate(mean_generator_loss)
        print(f"End of epoch {epoch} / {last_epoch} \t Time Taken: {time.time() - epoch_start:.0f} sec \t "
              f"mean generator loss {mean_generator_loss:.4f} \t learning rate {old_lr:.7f} -> {new_lr:.7f}")
    print(f"training finished: weights in {save_dir}, web page {os.path.join(save_dir, 'web', 'index.html')}")


if __name__ == "__main__":
    main()
