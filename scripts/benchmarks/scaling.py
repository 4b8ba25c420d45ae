"""Data-parallel scaling under torchrun: every rank trains the same configurations DDP-wrapped and
times the same iterations between barriers; rank 0 reports each process's img/s, their sum and the
efficiency against a single-process run's --json lines given as --baseline."""
import json
import statistics

import torch
import torch.distributed as dist

from scripts.benchmarks.report import aligned, device_name, settings_record
from scripts.benchmarks.runs import prepared_runs, time_training
from util.errors import UserError

# Record fields that define the work measured: a --baseline figure must match all of them.
WORKLOAD_KEYS = ("config", "model", "CUT_mode", "no_antialias", "no_antialias_up", "netG", "ngf", "ndf", "crop_size",
                 "batch_size", "device")


def barrier(opt):
    """Wait until every rank gets here (NCCL: on this rank's GPU)."""
    device = opt.runtime.device
    dist.barrier(device_ids=[device.index] if device.type == "cuda" else None)


def measure_distributed_round(run, args, opt, batch):
    """Time one round of `run` on this rank: --iters training iterations, started together on all ranks."""
    barrier(opt)
    train_s = time_training(run.model, batch, args.iters, args.device)
    barrier(opt)  # no rank starts the next configuration while another still times this one
    run.train_rates.append(args.iters / train_s)


def distributed_record(run, args, opt, rank_rates, baselines):
    """Every number of one configuration under torchrun, as a flat dict (rank 0 only).

    rank_rates: each rank's training it/s per round, in rank order; baselines: single-process train
    img/s by workload (see read_baselines), or None without --baseline.
    """
    record = settings_record(run, args)
    per_rank_rounds = [[rate * args.batch_size for rate in rates] for rates in rank_rates]
    per_rank = [statistics.median(rounds) for rounds in per_rank_rounds]
    total = sum(per_rank)
    single = (baselines or {}).get(workload(record))
    return {
        **record, "world_size": opt.runtime.world_size, "backend": opt.runtime.backend,
        "per_rank_img_s": per_rank, "per_rank_img_s_rounds": per_rank_rounds, "total_img_s": total,
        "baseline_img_s": single, "efficiency": total / (opt.runtime.world_size * single) if single else None,
        "torch": torch.__version__, "device_name": device_name(args.device), "threads": torch.get_num_threads(),
    }


def workload(record):
    """The fields of a record that define the work measured (to match a --baseline line)."""
    return tuple(record.get(key) for key in WORKLOAD_KEYS)


def read_baselines(path):
    """{workload: train img/s} from the single-process lines of a --json file (a later line wins)."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as err:
        raise UserError(f"cannot read --baseline {path!r} ({err.strerror}); give a file a single-process run "
                        "wrote with --json")
    baselines = {}
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line) if line.strip() else {}
        except json.JSONDecodeError:
            raise UserError(f"--baseline {path!r} line {number} is not JSON; give a file a single-process run "
                            "wrote with --json")
        if isinstance(record, dict) and record.get("world_size", 1) == 1 and "train_img_s" in record:
            baselines[workload(record)] = record["train_img_s"]
    return baselines


def format_distributed_table(records):
    """The aligned results table of a torchrun run, one row per configuration."""
    header = ["config", "per-process img/s (rank 0, 1, ...)", "total img/s", "1-process img/s", "efficiency"]
    rows = [[r["config"], " ".join(f"{rate:.2f}" for rate in r["per_rank_img_s"]), f"{r['total_img_s']:.2f}",
             "unknown" if r["baseline_img_s"] is None else f"{r['baseline_img_s']:.2f}",
             "unknown" if r["efficiency"] is None else f"{100 * r['efficiency']:.1f}%"] for r in records]
    return aligned(header, rows)


def distributed_explanations(args, opt, records):
    """Lines that say how a torchrun run's columns were measured."""
    if args.baseline is None:
        baseline = "unknown without --baseline (a single-process run's --json file)"
    else:
        baseline = (f"read from --baseline {args.baseline} for the same {', '.join(WORKLOAD_KEYS)}; unknown where "
                    "it holds no single-process line for them")
    lines = [f"per-process img/s: median over {args.rounds} round(s) of {args.iters} training iteration(s) on a batch "
             f"of {args.batch_size}, timed by each of the {opt.runtime.world_size} processes between barriers "
             f"(DDP, {opt.runtime.backend})",
             "total img/s: their sum; efficiency: total / (processes x 1-process img/s), the 1-process img/s " + baseline,
             "under torchrun only training is timed: inference, FLOP counting, memory peaks and --peak are skipped"]
    if any(record["efficiency"] is None for record in records) and args.baseline is not None:
        lines.append(f"note: --baseline {args.baseline} has no single-process line for some configurations; "
                     "run the benchmark without torchrun with the same flags and --json to get one")
    return lines


def benchmark_distributed(args, opt, configs, batch, baselines):
    """Measure `configs` on every rank of a torchrun job; rank 0 gets (table, explanation lines,
    records), the other ranks None. baselines: as read_baselines returns, or None."""
    runs = prepared_runs(args, opt, configs, batch)
    for _ in range(args.rounds):
        for run in runs:
            measure_distributed_round(run, args, opt, batch)
    rank_rates = opt.runtime.gather_to_main([[run.train_rates for run in runs]])  # one list per rank, in rank order
    if not opt.runtime.is_main:
        return None
    records = [distributed_record(run, args, opt, [rates[index] for rates in rank_rates], baselines)
               for index, run in enumerate(runs)]
    return format_distributed_table(records), distributed_explanations(args, opt, records), records
