"""Quality benchmark: configurations trained for the same budget on photo tasks with exact ground truth.

    python scripts/quality_benchmark.py                                  # default configurations, every task
    python scripts/quality_benchmark.py --tasks warm --iters 300 --configs default= small='--ngf 32'
    python scripts/quality_benchmark.py --seconds 600 --configs configs.json  # {"name": "flags", ...}

Tasks (scripts/quality_bench/tasks.py): real photos shipped with scikit-image and scikit-learn, cut
into random --size px crops; domain B is a known photographic transform of domain A (warm tone
curves, the demo dataset's cool "winter" grade, sepia toning), so testB/x.png is the exact truth of
testA/x.png. Each configuration (a name and train.py flags; --model cycle_gan or cut) is trained on
each task with train.py and tested with test.py --metrics fid,kid,psnr,ssim (its A -> B outputs
against the truth), as a user would run them
(scripts/quality_bench/runs.py says how the budget and the time per iteration are measured). The
do-nothing baseline scores each test input itself against its truth, with the same metric functions.

Writes to --out: quality_benchmark.md (the table, also printed), quality_benchmark.json (settings and
every number, both directions of each run), <task>.png (test inputs, truth and every configuration's
outputs side by side), the task datasets (tasks/), the runs' logs (logs/), options and loss logs
(checkpoints/; weights are deleted after testing unless --keep_checkpoints) and test results (results/).
"""
import argparse
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [REPO, HERE, os.path.join(REPO, "datasets")]  # the tool, quality_bench/, the demo dataset's helpers

import torch  # noqa: E402
from make_demo_dataset import MIN_SIZE, draw_crops  # noqa: E402
from quality_bench import configs, report, runs, tasks  # noqa: E402

from metrics.inception import InceptionFeatures, resolve_weights  # noqa: E402
from options.base_options import require_writable_folder  # noqa: E402
from util.errors import UserError, exit_on_user_error  # noqa: E402
from util.log import logger  # noqa: E402
from util.ranges import NumberRange, add_ranges_to_help, check_ranges  # noqa: E402

DEFAULT_ITERS = 1500
JSON_NAME, TABLE_NAME = "quality_benchmark.json", "quality_benchmark.md"
OUTPUT_FOLDERS = ("tasks", "checkpoints", "results", "logs")
EXAMPLES = """\
configurations (--configs): name=flags entries, flags as train.py takes them (quote each entry), e.g.
  --configs default= resize='--upsample resize' gated='--resblock gated' residual='--residual_output' \\
            sn='--spectral_norm' r1='--r1_gamma 1' diffaug='--diffaug color,translation,cutout' \\
            ema='--ema_decay 0.999' all='--upsample resize --residual_output --spectral_norm --ema_decay 0.999' \\
            cut='--model cut' fastcut='--model cut --CUT_mode FastCUT'
or one JSON file holding {"default": "", "resize": "--upsample resize", ...}. Without --configs:
default= resnet_6blocks='--netG resnet_6blocks'. A configuration trains --model cycle_gan (train.py's
default) or --model cut (CUT or FastCUT, with any of its flags); every model's A -> B outputs (fake_B)
are scored against the truth. The benchmark itself sets, alike for every configuration and model,
--dataroot --name --checkpoints_dir --load_size --crop_size --seed --print_freq 1 --save_latest_freq 0
--display_id 0 --no_html and the schedule (--n_epochs --n_epochs_decay --save_epoch_freq, and
--max_dataset_size with --iters; FastCUT's shorter default schedule does not apply); a configuration
may not change them.

outputs in --out: quality_benchmark.md (the table, also printed), quality_benchmark.json (every number),
<task>.png (test inputs, truth and each configuration's outputs), tasks/, logs/, checkpoints/, results/.
"""


def parse_args(argv=None):
    """Read and check the command line. argv: arguments, default sys.argv[1:]."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="./quality_benchmark", help="folder of every output (default: %(default)s)")
    parser.add_argument("--tasks", default=",".join(tasks.TASKS),
                        help="comma-separated tasks: " + "; ".join(f"{name}: {text}" for name, (_, text)
                                                                   in tasks.TASKS.items()) + " (default: all)")
    parser.add_argument("--configs", nargs="+", default=None, metavar="NAME=FLAGS",
                        help="the configurations to compare (see below), or one .json file")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--iters", type=NumberRange(int, minimum=1), default=None,
                        help=f"train every configuration on this many images (iterations at batch size 1), the "
                             f"learning rate constant for the first half of the epochs, then decaying to 0 "
                             f"(default: {DEFAULT_ITERS})")
    budget.add_argument("--seconds", type=NumberRange(float, above=0), default=None,
                        help="instead, train every configuration for this many seconds of wall clock, counted from "
                             "the end of its first iteration, at a constant learning rate")
    parser.add_argument("--size", type=NumberRange(int, minimum=MIN_SIZE), default=64,
                        help="side of the crops in pixels: the training crop and the test images (default: %(default)s)")
    parser.add_argument("--n_train", type=NumberRange(int, minimum=1), default=200,
                        help="training crops per domain (default: %(default)s)")
    parser.add_argument("--n_test", type=NumberRange(int, minimum=2), default=50,
                        help="test crops, each with its truth (default: %(default)s)")
    parser.add_argument("--show", type=NumberRange(int, minimum=1), default=8,
                        help="test images (rows) in each task's picture (default: %(default)s)")
    parser.add_argument("--seed", type=NumberRange(int, minimum=0, maximum=2 ** 32 - 1), default=0,
                        help="seed of the crops and of every training run (default: %(default)s)")
    parser.add_argument("--keep_checkpoints", action="store_true",
                        help="keep each run's weights and training state (about 0.5 GB per default run)")
    parser.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier benchmark in --out")
    add_ranges_to_help(parser)
    args = parser.parse_args(argv)
    check_ranges(args, parser)
    if args.seconds is None and args.iters is None:
        args.iters = DEFAULT_ITERS
    return args


def prepare_out(out, overwrite):
    """Make sure `out` is writable and holds no earlier benchmark (removed with overwrite: only the
    benchmark's own files and folders)."""
    require_writable_folder(out, "--out", out)
    earlier = [os.path.join(out, name) for name in (*OUTPUT_FOLDERS, JSON_NAME, TABLE_NAME,
                                                    *(f"{task}.png" for task in tasks.TASKS))]
    earlier = [path for path in earlier if os.path.exists(path)]
    if earlier and not overwrite:
        raise UserError(f"--out {out!r} already holds a benchmark ({earlier[0]}); pass --overwrite to replace it "
                        "or choose another --out")
    for path in earlier:
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def settings_of(args, task_names, chosen):
    """The benchmark's settings, as recorded in the JSON file."""
    return {"tasks": {name: tasks.TASKS[name][1] for name in task_names},
            "configs": {config.name: config.flags for config in chosen},
            "budget": {"seconds": args.seconds} if args.seconds is not None else {"iters": args.iters},
            "size": args.size, "load_size": runs.load_size(args.size), "n_train": args.n_train,
            "n_test": args.n_test, "seed": args.seed, "torch": torch.__version__,
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}


def budget_text(args):
    """The budget of every run in words."""
    return f"{args.seconds:g} s" if args.seconds is not None else f"{args.iters} images"


def benchmark_task(args, task, chosen, checked, crops, inception):
    """Write one task's dataset, score its baseline, train and test every configuration on it and
    draw its picture; return its rows (the baseline first).

    chosen: the Configs; checked: name -> their configs.Checked; crops: draw_crops's;
    inception: the InceptionFeatures of the baseline's FID and KID."""
    dataroot = os.path.join(args.out, "tasks", task)
    tasks.write_task(dataroot, task, crops)
    rows = [report.baseline_row(task, tasks.do_nothing_scores(dataroot, inception))]
    for config in chosen:
        print(f"{task} / {config.name}: training for {budget_text(args)}, then testing", flush=True)
        row = runs.run(args, task, dataroot, config, *checked[config.name])
        print(f"{task} / {config.name}: " + (f"PSNR {row['psnr']:.2f} dB" if row["status"] == "ok"
                                             else f"failed ({row['error']}); log: {row['log']}"), flush=True)
        rows.append(row)
    report.draw_task_picture(os.path.join(args.out, f"{task}.png"), dataroot, rows, args.show)
    return rows


def write_outputs(args, settings, rows):
    """Print the table and write it, and the JSON file of `settings` and `rows`, to --out."""
    report.add_gains(rows)
    table = report.markdown_table(rows)
    report.write_json(os.path.join(args.out, JSON_NAME), settings, rows)
    with open(os.path.join(args.out, TABLE_NAME), "w", encoding="utf-8") as handle:
        handle.write(table)
    print(table, end="")
    print(f"table: {os.path.join(args.out, TABLE_NAME)}; numbers: {os.path.join(args.out, JSON_NAME)}; pictures: "
          + ", ".join(os.path.join(args.out, f"{task}.png") for task in settings["tasks"]))


@exit_on_user_error
def main(argv=None):
    """Run the benchmark the command line describes. argv: arguments, default sys.argv[1:]."""
    args = parse_args(argv)
    task_names = tasks.parse_tasks(args.tasks)
    chosen = configs.read_configs(args.configs)
    # Every configuration is checked before anything is trained.
    checked = {config.name: configs.check_config(config, runs.train_arguments(args, "DATAROOT", "NAME"))
               for config in chosen}
    prepare_out(args.out, args.overwrite)
    inception = InceptionFeatures(resolve_weights(None), "cuda" if torch.cuda.is_available() else "cpu")
    crops = draw_crops(args.size, args.n_train, args.n_test, args.seed)
    start = time.monotonic()
    rows = [row for task in task_names for row in benchmark_task(args, task, chosen, checked, crops, inception)]
    write_outputs(args, {**settings_of(args, task_names, chosen), "total_seconds": round(time.monotonic() - start, 1)},
                  rows)
    failed = [row["name"] for row in rows if row["status"] != "ok"]
    if failed:
        logger.error(f"{len(failed)} run(s) failed: {', '.join(failed)}; their logs are in "
                     f"{os.path.join(args.out, 'logs')}")
        sys.exit(1)


if __name__ == "__main__":
    main()
