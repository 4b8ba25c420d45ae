"""The benchmark's report: each configuration's settings and machine, aligned text tables, and the
printed table, explanation lines and `BENCH {json}` lines (also appended to --json)."""
import json
import platform
import re

import torch

from util.errors import UserError


def device_name(device):
    """The GPU's name, or the CPU's model name."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo") as handle:
            return re.search(r"model name\s*:\s*(.+)", handle.read()).group(1).strip()
    except (OSError, AttributeError):
        return platform.processor() or "cpu"


def settings_record(run, args):
    """The settings of one configuration's measurement, as a flat dict."""
    return {
        "config": run.config.label, "model": args.model, "CUT_mode": args.CUT_mode,
        "no_antialias": args.no_antialias, "no_antialias_up": args.no_antialias_up,
        "netG": run.model.opt.netG, "ngf": args.ngf, "ndf": args.ndf,
        "crop_size": args.crop_size, "batch_size": args.batch_size, "device": args.device,
        "amp": run.config.amp, "channels_last": run.config.channels_last, "compile": run.config.compile,
        "warmup": args.warmup, "iters": args.iters, "rounds": args.rounds,
    }


def aligned(header, rows):
    """An aligned text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(row[column]) for row in [header] + rows) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) if column == 0 else cell.rjust(width)
                       for column, (cell, width) in enumerate(zip(row, widths))) for row in [header] + rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def publish(table, notes, records, json_path=None):
    """Print the table, its explanations and the BENCH lines; append the JSON lines to json_path (--json)
    when one is given."""
    print(table)
    for line in notes:
        print(line)
    lines = [json.dumps(record) for record in records]
    print("\n".join("BENCH " + line for line in lines))
    if json_path:  # plain JSON lines, one file gathering many runs
        try:
            with open(json_path, "a", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
        except OSError as err:
            raise UserError(f"cannot append to --json {json_path!r} ({err.strerror}); choose a writable file")
