"""The configurations a benchmark compares: named sets of train.py flags, given on the command line
as `name=flags` entries or in a JSON file ({"name": "flags", ...}). Each is checked against train.py's
own parser before anything is trained, so that a typo costs seconds rather than a study."""
import contextlib
import io
import json
import re
import shlex
from collections import namedtuple

from options.base_options import explicit_dests
from options.train_options import TrainOptions
from util.errors import UserError
from util.ranges import check_ranges

Config = namedtuple("Config", "name flags")  # flags: the text as given, e.g. "--netG resnet_6blocks"
Checked = namedtuple("Checked", "flags model")  # flags: a list of arguments; model: the --model they choose
# The models that learn the benchmark's unpaired tasks A -> B.
MODELS = ("cycle_gan", "cut")

# The original's flags, and a smaller generator (the same recipe at about 2/3 of the time per image).
DEFAULT_CONFIGS = {"default": "", "resnet_6blocks": "--netG resnet_6blocks"}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*\Z")  # names become parts of folder and file names
ENTRY_HELP = "write each entry as name=flags (e.g. default= small='--ngf 32'), or pass one .json file"


def read_configs(entries):
    """The configurations of --configs `entries` (None or empty: DEFAULT_CONFIGS), as a list of Config."""
    if not entries:
        pairs = list(DEFAULT_CONFIGS.items())
    elif len(entries) == 1 and entries[0].endswith(".json"):
        pairs = read_json(entries[0])
    else:
        pairs = [split_entry(entry) for entry in entries]
    configs = {}
    for name, flags in pairs:
        if not NAME.match(name):
            raise UserError(f"--configs: the name {name!r} cannot name files; start it with a letter or digit and "
                            f"use only letters, digits and _ . + - ({ENTRY_HELP})")
        if name in configs:
            raise UserError(f"--configs: the name {name!r} is given twice; give each configuration its own name")
        configs[name] = Config(name, flags.strip())
    return list(configs.values())


def split_entry(entry):
    """(name, flags) of one `name=flags` entry; UserError when it has no '='."""
    name, sep, flags = entry.partition("=")
    if not sep:
        raise UserError(f"--configs entry {entry!r} has no '='; {ENTRY_HELP}")
    return name.strip(), flags


def read_json(path):
    """(name, flags) pairs of a JSON file holding one object of name: flags strings."""
    try:
        with open(path, encoding="utf-8") as handle:
            table = json.load(handle)
    except OSError as err:
        raise UserError(f"--configs {path!r} cannot be read ({err.strerror or err}); pass an existing JSON file")
    except ValueError as err:
        raise UserError(f"--configs {path!r} is not valid JSON ({err}); fix the file")
    if not isinstance(table, dict) or not table or not all(isinstance(flags, str) for flags in table.values()):
        raise UserError(f"--configs {path!r} must hold one non-empty JSON object of name: flags strings, e.g. "
                        '{"default": "", "small": "--ngf 32"}')
    return list(table.items())


def flag_list(config):
    """The flags of a configuration as a list of arguments, split by the shell's quoting rules."""
    try:
        return shlex.split(config.flags)
    except ValueError as err:
        raise UserError(f"--configs {config.name}: cannot split {config.flags!r} into flags ({err}); check the quotes")


def check_config(config, fixed):
    """The configuration's flags as a list of arguments and its model, as a Checked; UserError when
    train.py would refuse them, when they choose a model other than MODELS, or when they change one
    of `fixed`, the flags the benchmark gives every configuration alike (data, size, budget, files)."""
    flags = flag_list(config)
    argv = [*fixed, *flags]
    with contextlib.redirect_stderr(io.StringIO()) as refused, contextlib.redirect_stdout(io.StringIO()):
        try:
            parser = TrainOptions().build_parser(argv)
            opt, unknown = parser.parse_known_args(argv)
        except SystemExit:  # argparse's refusal (a bad value or choice; --help) has gone to `refused`
            reason = (refused.getvalue().strip().splitlines() or ["not a set of training flags"])[-1]
            raise UserError(f"--configs {config.name}: train.py refuses {config.flags!r} "
                            f"({reason.partition('error: ')[2] or reason}); see python train.py --help")
    if unknown:
        raise UserError(f"--configs {config.name}: train.py has no flag {unknown[0]!r}; see python train.py --help")
    try:
        check_ranges(opt, parser)
    except UserError as err:
        raise UserError(f"--configs {config.name}: {err}")
    benchmark_values = parser.parse_known_args(fixed)[0]
    changed = sorted(dest for dest in explicit_dests(parser, fixed)
                     if getattr(opt, dest) != getattr(benchmark_values, dest))
    if changed:
        raise UserError(f"--configs {config.name}: it sets --{changed[0]}, which the benchmark sets alike for every "
                        "configuration (see python scripts/quality_benchmark.py --help); remove it")
    if opt.model not in MODELS:
        raise UserError(f"--configs {config.name}: --model {opt.model} does not learn the benchmark's unpaired "
                        f"translations; choose --model {' or '.join(MODELS)}")
    return Checked(flags, opt.model)
