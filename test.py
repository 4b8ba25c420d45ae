"""Run a trained model over test images and write an HTML page of the results.

    python test.py --dataroot ./datasets/horse2zebra --name horse2zebra_cyclegan --model cycle_gan
    python test.py --dataroot datasets/horse2zebra/testA --name horse2zebra_pretrained --model test --no_dropout

Results go to results_dir/name/<phase>_<epoch>/: images/<stem>_<label>.png and index.html.
Every image is processed unless --num_test is given.
"""
import os

from data import create_dataset
from models import create_model
from options.base_options import architecture_summary
from options.test_options import TestOptions
from util import checkpoint, device
from util.errors import exit_on_user_error
from util.html import HTML, add_result_row, write_result_images
from util.progress import progress_bar


def result_dir(opt):
    """results_dir/name/<phase>_<epoch>[_iter<load_iter>]"""
    folder = f"{opt.phase}_{opt.epoch}" + (f"_iter{opt.load_iter}" if opt.load_iter > 0 else "")
    return os.path.join(opt.results_dir, opt.name, folder)


def split_visuals(visuals, index):
    """The visuals of the `index`-th image of a batch."""
    return {label: images[index] for label, images in visuals.items()}


@exit_on_user_error
def main(argv=None):
    options = TestOptions()
    opt = options.parse(argv)
    if opt.num_test is not None:
        opt.max_dataset_size = min(opt.max_dataset_size, opt.num_test)
    dataset = create_dataset(opt)
    model = create_model(opt)
    model.setup()
    checkpoint.load_networks(model, os.path.join(opt.checkpoints_dir, opt.name), checkpoint.load_prefix(opt),
                             architecture_summary(opt))
    print(model.describe_networks(opt.verbose))
    if opt.is_main:
        options.save(opt)
    if opt.eval:
        model.eval()
    web_dir = result_dir(opt)
    webpage = HTML(web_dir, f"Experiment = {opt.name}, Phase = {opt.phase}, Epoch = {opt.epoch}")
    rows = []
    with progress_bar(len(dataset), f"testing {opt.name}", disable=not opt.is_main) as bar:
        for batch in dataset:
            model.set_input(batch)
            model.test()
            visuals = model.get_current_visuals()
            for index, path in enumerate(model.get_image_paths()):
                rows.append((path, write_result_images(webpage.image_dir, split_visuals(visuals, index), path,
                                                       opt.aspect_ratio)))
            bar.update(len(model.get_image_paths()) * opt.world_size)
    write_page(webpage, rows, opt)
    print(f"results: {os.path.join(web_dir, 'index.html')}")


def write_page(webpage, rows, opt):
    """Rank 0 writes the result page with every process's rows (in file order, each image once)."""
    rows = device.gather_to_main(rows)
    if not opt.is_main:
        return
    if opt.world_size > 1:
        rows = sorted(dict(rows).items())  # ranks took interleaved shares; padding repeated a few
    for _, row in rows:
        add_result_row(webpage, row, width=opt.display_winsize)
    webpage.save()


if __name__ == "__main__":
    main()
