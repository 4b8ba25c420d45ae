"""Run a trained model over test images and write an HTML page of the results.

    python test.py --dataroot ./datasets/horse2zebra --name horse2zebra_cyclegan --model cycle_gan
    python test.py --dataroot datasets/horse2zebra/testA --name horse2zebra_pretrained --model test --no_dropout

Results go to results_dir/name/<phase>_<epoch>/: images/<stem>_<label>.png and index.html (inputs
that share a file name, such as x.png, x.jpg and sub/x.png, get x_png, x_jpg and sub_x in place of
the stem; see engine/html.py result_names); 8-bit RGB PNGs, or 16-bit PNGs with --output_bits 16.
Inputs are decoded by the loader's --num_threads worker processes and the result pictures encoded
and written by background threads (engine/result_writer.py), both while the network runs, where it leaves
CPU cores free (on a GPU); where it computes on every CPU core test.py does both itself, translating two
batches at a time, each on half the threads (engine/image_lanes.py); --batch_size,
--amp bf16 and --compile speed up the network itself (README, Speed).
The generators' weights are those of <epoch>_net_<name>.pth: for a run trained with --ema_decay their
averages, or with --raw_weights the raw weights saved beside them (<epoch>_net_<name>_raw.pth); the
printed `weights:` line says which. Every image is processed unless --num_test is given. With --metrics fid,kid,psnr,ssim,l1 the quality
metrics are computed as the images come out, printed, written to metrics.json and shown at the top of
the page (see metrics/ and engine/metric_collector.py). With --tile SIZE every generator translates in
tiles of SIZE px, for images too large to translate whole (models/tiling.py, README "Large images").
A Ctrl-C writes the page of the images finished so far and exits with status 130.
"""
import os
import signal
import sys

import torch

from data import create_dataset, single_folder_options
from engine.html import HTML, add_result_row, result_names
from engine.image_lanes import lanes_for, translate_in_lanes
from engine.interrupt import signal_exit_status
from engine.metric_collector import MetricsCollector
from engine.result_writer import ResultWriter
from metrics.registry import parse_metric_names
from metrics.report import REFERENCE, compute_metrics, report_lines, save_metrics
from models import checkpoint, create_model
from options.base_options import architecture_summary, require_writable_folder
from options.test_options import TestOptions
from runtime.device import cpus_left_by_the_network
from runtime.speed_hints import describe_hardware, inference_hints
from util.errors import exit_on_user_error
from util.log import logger
from util.progress import progress_bar


def result_dir(opt):
    """results_dir/name/<phase>_<epoch>[_iter<load_iter>]"""
    folder = f"{opt.phase}_{opt.epoch}" + (f"_iter{opt.load_iter}" if opt.load_iter > 0 else "")
    return os.path.join(opt.results_dir, opt.name, folder)


def loads_and_writes_in_background(opt, explicit):
    """Whether images are decoded in loader worker processes and written by writer threads while the
    network runs: only where it leaves CPU cores free (on a GPU, or with fewer torch threads than cores).
    Where it computes on every core they would take cores from it, and test.py is faster doing both in
    its own thread (README, Speed): then --num_threads becomes 0 unless the user gave it."""
    if cpus_left_by_the_network(opt.runtime.device):
        return True
    if "num_threads" not in explicit and opt.num_threads:
        opt.num_threads = 0
        logger.info(f"note: images are read and written in this process, since the network computes on all "
                    f"{torch.get_num_threads()} CPU threads; --num_threads N reads them in N worker processes")
    return False


def split_visuals(visuals, index):
    """The visuals of the `index`-th image of a batch."""
    return {label: images[index] for label, images in visuals.items()}


def translation_lanes(opt, model):
    """How many batches test.py translates at a time, each on its share of the CPU threads (engine/image_lanes.py
    lanes_for), saying so when more than one."""
    lanes = lanes_for(opt.runtime.device, model.networks().values(), opt.compile, bool(opt.tile))
    if lanes > 1:
        logger.info(f"note: {lanes} batches are translated at a time, each on {torch.get_num_threads() // lanes} "
                    f"of the {torch.get_num_threads()} CPU threads")
    return lanes


def translate_all(model, dataset, writer, names, lanes, collector, bar, world_size, rows):
    """Translate every batch of `dataset` with `model` in `lanes` lanes, hand each input's visuals to
    `writer` (and to the metrics `collector`, if any) and append the page rows to `rows` in input order:
    (input path, row); on a Ctrl-C `rows` holds those of the inputs written."""

    def write(own, batch):
        visuals = own.get_current_visuals()
        # One host copy per batch (none on the CPU): the writer threads may read these tensors later,
        # which is safe because each batch's visuals are new tensors, never written into again.
        on_host = {label: images.detach().cpu() for label, images in visuals.items()}
        return batch, visuals, [(path, writer.submit(split_visuals(on_host, index), names[path]))
                                for index, path in enumerate(own.get_image_paths())]

    def record(result):
        batch, visuals, batch_rows = result
        if collector:
            collector.add(visuals, batch)
        rows.extend(batch_rows)
        bar.update(len(batch_rows) * world_size)

    translate_in_lanes(model, dataset, lanes, write, record)


@exit_on_user_error
def main(argv=None):
    options = TestOptions()
    opt = options.parse(argv)
    if opt.num_test is not None:
        opt.max_dataset_size = min(opt.max_dataset_size, opt.num_test)
    background_io = loads_and_writes_in_background(opt, options.explicit)
    dataset = create_dataset(opt)
    model = create_model(opt)
    model.setup()
    if opt.tile:
        model.tile_generators(opt.tile, opt.tile_overlap, opt.tile_statistics)
    save_dir = os.path.join(opt.checkpoints_dir, opt.name)
    loaded = checkpoint.load_networks(model, save_dir, checkpoint.load_prefix(opt), architecture_summary(opt),
                                      opt.raw_weights)
    model.store_weights_in_amp_dtype()
    web_dir = result_dir(opt)
    require_writable_folder(web_dir, "--results_dir", opt.results_dir)  # before the model runs
    print(model.describe_networks(opt.verbose))
    print(f"weights: {loaded}")
    if opt.runtime.is_main:
        for line in inference_hints(describe_hardware(opt.runtime.device), options.explicit, opt.amp):
            print(line)
    metric_names = parse_metric_names(opt.metrics)
    collector = MetricsCollector(metric_names, opt, model.visual_names) if metric_names else None
    if opt.runtime.is_main:
        options.save(opt)
    if opt.eval:
        model.eval()
    webpage = HTML(web_dir, f"Experiment = {opt.name}, Phase = {opt.phase}, Epoch = {opt.epoch}")
    names = result_names(dataset.dataset.folders)  # decided for all inputs: no two results share a name
    lanes = translation_lanes(opt, model)
    # With background_io the pictures are encoded and written in background threads while the network
    # runs the next batch; otherwise each lane writes its own (engine/image_lanes.py).
    rows = []
    try:
        with ResultWriter(webpage.image_dir, opt.aspect_ratio, opt.output_bits, threads=2 if background_io else 0,
                          max_pending=2 * opt.batch_size) as writer, \
                progress_bar(len(dataset), f"testing {opt.name}", disable=not opt.runtime.is_main) as bar:
            translate_all(model, dataset, writer, names, lanes, collector, bar, opt.runtime.world_size, rows)
    except KeyboardInterrupt:
        stop_with_partial_page(webpage, rows, opt, len(dataset))
    metric_lines = evaluate_metrics(collector, metric_names, opt, web_dir) if collector else []
    write_page(webpage, rows, opt, metric_lines)
    print(f"results: {os.path.join(web_dir, 'index.html')}")


def stop_with_partial_page(webpage, rows, opt, total):
    """After a Ctrl-C: write the page of the inputs finished so far (every one whose pictures were written)
    and exit with status 130 and one line saying so. Under torchrun the processes stop on their own
    (no page: the others may never gather theirs)."""
    if not opt.runtime.distributed:
        write_page(webpage, rows, opt)
        logger.error(f"stopped by Ctrl-C after {len(rows)} of {total} images; their results: "
                     f"{os.path.join(webpage.web_dir, 'index.html')}")
    sys.exit(signal_exit_status(signal.SIGINT))


def evaluate_metrics(collector, names, opt, web_dir):
    """Compute the metrics from what `collector` kept; rank 0 prints them, writes metrics.json and
    returns the lines for the page (other ranks return [])."""
    if opt.runtime.is_main and collector.inception and any(c.real == REFERENCE for c in collector.comparisons):
        collector.add_reference(create_dataset(single_folder_options(opt, opt.metrics_reference)))
    collected = collector.finish()
    if collected is None:
        return []
    report = compute_metrics(names, collected)
    lines = report_lines(report)
    print("quality metrics:\n" + "\n".join(f"  {line}" for line in lines))
    print(f"metrics: {save_metrics(report, web_dir)}")
    return lines


def write_page(webpage, rows, opt, metric_lines=()):
    """Rank 0 writes the result page: the metric lines first, then every process's rows (in file
    order, each image once)."""
    rows = opt.runtime.gather_to_main(rows)
    if not opt.runtime.is_main:
        return
    if metric_lines:
        webpage.add_header("Quality metrics")
        for line in metric_lines:
            webpage.add_text(line)
    if opt.runtime.distributed:
        rows = sorted(dict(rows).items())  # ranks took interleaved shares; padding repeated a few
    for _, row in rows:
        add_result_row(webpage, row, width=opt.display_winsize)
    webpage.save()


if __name__ == "__main__":
    main()
