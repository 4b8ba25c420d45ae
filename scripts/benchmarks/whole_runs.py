"""What the scripts that measure whole train.py or test.py runs in child processes share (testpy_speed,
train_speed, train_memory): the --configs and --workdir arguments, train.py's picture and network sizes
and command line, the code versions compared (--before), and the work folder the runs write into."""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.quality_bench.configs import flag_list
from util.errors import UserError
from util.ranges import NumberRange

REPO = Path(__file__).resolve().parent.parent.parent
NAME = "bench"  # the experiment name of every run


def run_environment(threads):
    """The runs' environment: unbuffered output, and `threads` compute threads when given (None: as this
    process's environment has it)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def train_command(code, args, work, config):
    """The train.py command of one run of `config` with the code in folder `code`: one epoch, batch 1, on
    the CPU, visdom off, on work/photos with checkpoints in work/checkpoints/<config name>; the sizes of
    add_training_size_arguments, then the configuration's flags."""
    return [sys.executable, os.path.join(code, "train.py"), "--dataroot", os.path.join(work, "photos"),
            "--name", NAME, "--checkpoints_dir", os.path.join(work, "checkpoints", config.name),
            "--gpu_ids", "-1", "--display_id", "0", "--seed", "0", "--n_epochs", "1", "--n_epochs_decay", "0",
            "--load_size", str(args.load_size), "--crop_size", str(args.crop_size),
            "--ngf", str(args.ngf), "--ndf", str(args.ndf), *flag_list(config)]


def add_configs_argument(parser, script, defaults):
    """--configs: name=flags entries with flags of `script` (train.py or test.py); defaults: the entries."""
    parser.add_argument("--configs", nargs="+", default=defaults, metavar="NAME=FLAGS",
                        help=f"configurations: name=flags entries with {script} flags, or one .json file of "
                             f"{{name: flags}} (default: {' '.join(repr(entry) for entry in defaults)})")


def add_training_size_arguments(parser):
    """train.py's --load_size, --crop_size, --ngf and --ndf for the measured runs (CycleGAN's defaults)."""
    parser.add_argument("--load_size", type=NumberRange(int, minimum=16), default=286,
                        help="side of the square pictures, train.py's --load_size (default: %(default)s)")
    parser.add_argument("--crop_size", type=NumberRange(int, minimum=16), default=256,
                        help="train.py's --crop_size (default: %(default)s)")
    parser.add_argument("--ngf", type=NumberRange(int, minimum=1), default=64,
                        help="generator filters in the last conv layer (default: %(default)s)")
    parser.add_argument("--ndf", type=NumberRange(int, minimum=1), default=64,
                        help="discriminator filters in the first conv layer (default: %(default)s)")


def check_training_sizes(args):
    """UserError when the crop does not fit in the pictures."""
    if args.crop_size > args.load_size:
        raise UserError(f"--crop_size {args.crop_size} is larger than --load_size {args.load_size}; "
                        "give a crop size of at most the load size")


def add_workdir_argument(parser, what):
    """--workdir: where the runs write `what` (e.g. 'the pictures, checkpoints and logs')."""
    parser.add_argument("--workdir", default=None,
                        help=f"folder for {what} (default: a temporary one, removed)")


def in_workdir(args, benchmark, prefix):
    """benchmark(args, folder) in --workdir (created if needed), or in a temporary folder named after
    `prefix` that is removed afterwards."""
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
        benchmark(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix=prefix) as work:
            benchmark(args, work)


def code_versions(before, work):
    """The code the runs use, as (key, label, folder): this repository, preceded by its files at git
    revision `before` (exported into work/before) when one is given."""
    codes = [("now", "now", str(REPO))]
    if before:
        codes.insert(0, ("before", before, os.path.join(work, "before")))
        export_revision(before, codes[0][2])
    return codes


def export_revision(revision, folder):
    """This repository's files at git revision `revision`, written into `folder` (git archive)."""
    os.makedirs(folder, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", revision], capture_output=True)
    if archive.returncode != 0:
        raise UserError(f"--before {revision}: git archive failed ({archive.stderr.decode().strip()}); "
                        "give a revision of this repository, e.g. main or HEAD~3")
    subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
