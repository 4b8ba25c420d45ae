"""Speed in one process: every configuration's training it/s and inference img/s, timed in
round-robin rounds, with its peak memory, FLOPs per iteration and (--peak) share of the hardware's
peak, and how much of a step its conv and matmul kernels take: the share of the peak it would reach
if nothing else took time; one record and table row per configuration."""
import statistics

import torch

from scripts.benchmarks.flops import (
    PEAK_CONV_CHANNELS,
    PEAK_CONV_SIZE,
    count_flops,
    counted_work_seconds,
    measure_peaks,
)
from scripts.benchmarks.memory import cuda_memory_in_use, peak_memory, reset_peak_memory
from scripts.benchmarks.report import aligned, device_name, settings_record
from scripts.benchmarks.runs import prepared_runs, time_inference, time_training

MIB = 2 ** 20


def measure_round(run, args, batch):
    """Time one round of `run`: --iters training iterations, then --inference_iters inference calls."""
    start_bytes = cuda_memory_in_use(args.device)
    reset_peak_memory(args.device)
    train_s = time_training(run.model, batch, args.iters, args.device)
    infer_s = time_inference(run.model, batch, args.inference_iters, args.device)
    peak = peak_memory(args.device)
    if start_bytes is not None:
        # Other configurations' models are resident too: count only this one's tensors and work.
        peak = run.resident_bytes + peak - start_bytes
    run.peak_bytes = max(run.peak_bytes, peak)
    run.train_rates.append(args.iters / train_s)
    run.infer_rates.append(args.inference_iters * args.batch_size / infer_s)


def result_record(run, first, args, flops, peaks):
    """Every number of one configuration, with its settings and environment, as a flat dict."""
    train_flops, infer_flops_per_image = flops
    train_rate = statistics.median(run.train_rates)
    achieved = train_flops * train_rate
    peak = peaks.get(run.config.amp)
    step_s, work_s = run.work_profile
    return {
        **settings_record(run, args), "inference_iters": args.inference_iters, "world_size": 1,
        "train_it_s": train_rate, "train_img_s": train_rate * args.batch_size,
        "train_it_s_rounds": run.train_rates,
        # Per-round ratios: both sides of each ratio ran moments apart on the same machine state.
        "speedup_vs_first": statistics.median(mine / theirs for mine, theirs in zip(run.train_rates, first.train_rates)),
        "infer_img_s": statistics.median(run.infer_rates), "infer_img_s_rounds": run.infer_rates,
        "first_iteration_s": run.first_iteration_s,
        "peak_mem_bytes": run.peak_bytes,
        "peak_mem_kind": "cuda_allocated_by_config" if args.device == "cuda" else "process_rss_high_water_mark",
        "train_flops_per_iter": train_flops, "infer_flops_per_image": infer_flops_per_image,
        "achieved_flop_s": achieved,
        "peak_flop_s": peak, "fraction_of_peak": achieved / peak if peak else None,
        "conv_matmul_share_of_step": work_s / step_s if work_s else None,
        "conv_matmul_bound_of_peak": train_flops / work_s / peak if peak and work_s else None,
        "torch": torch.__version__, "device_name": device_name(args.device), "threads": torch.get_num_threads(),
    }


def format_table(records):
    """The aligned results table, one row per configuration."""
    header = ["config", "train it/s", "img/s", "infer img/s", "speed-up", "peak mem MiB", "GFLOP/iter",
              "TFLOP/s", "% of peak", "conv+mm % of step", "bound % of peak"]
    rows = [[r["config"], f"{r['train_it_s']:.3f}", f"{r['train_img_s']:.2f}", f"{r['infer_img_s']:.2f}",
             f"{r['speedup_vs_first']:.2f}x", f"{r['peak_mem_bytes'] / MIB:.0f}", f"{r['train_flops_per_iter'] / 1e9:.2f}",
             f"{r['achieved_flop_s'] / 1e12:.4f}",
             *(percent(r[name]) for name in ("fraction_of_peak", "conv_matmul_share_of_step",
                                             "conv_matmul_bound_of_peak"))] for r in records]
    return aligned(header, rows)


def percent(fraction):
    """A table cell: the fraction in percent, or - when not measured."""
    return "-" if fraction is None else f"{100 * fraction:.1f}"


def explanations(args, peaks):
    """Lines that say how the table's columns were measured."""
    memory = ("CUDA bytes allocated by the configuration's own tensors plus its iterations' transient peak"
              if args.device == "cuda" else
              "process-wide RSS high-water mark (VmHWM) during the configuration's rounds; every "
              "configuration's model is resident in the process, so it is not per configuration")
    lines = [f"train it/s, infer img/s: median over {args.rounds} round(s); speed-up: median per-round ratio of "
             "train it/s to the first configuration's",
             f"peak mem: {memory}",
             "GFLOP/iter: conv and matmul FLOPs (FlopCounterMode) of one fp32 eager training iteration, "
             "forward and backward; the same work is assumed for every configuration"]
    if peaks:
        measured = ", ".join(f"{'fp32' if amp == 'none' else amp} {flops / 1e12:.3f} TFLOP/s" for amp, flops in peaks.items())
        lines.append(f"% of peak: achieved FLOP/s over a {PEAK_CONV_CHANNELS}->{PEAK_CONV_CHANNELS} 3x3 conv's "
                     f"forward throughput on {PEAK_CONV_SIZE}x{PEAK_CONV_SIZE} images in the config's precision: "
                     f"{measured}")
        lines.append(f"conv+mm % of step: time in conv and matmul operators (profiled over {args.iters} training "
                     "iterations after the rounds; their own wall time on the CPU, kernel time on CUDA); bound % of "
                     "peak: the FLOPs over that time alone, the share of the peak the configuration would reach if "
                     "everything else (norms, activations, padding, losses, the optimiser, casts) took no time")
    return lines


def benchmark_single(args, opt, configs, batch):
    """Measure `configs` in this process alone: (table, explanation lines, records)."""
    flops = count_flops(args, opt, batch)
    runs = prepared_runs(args, opt, configs, batch)
    for _ in range(args.rounds):
        for run in runs:
            measure_round(run, args, batch)
    # After the rounds, so that the conv's buffers do not weigh on the configurations' memory peaks.
    peaks = measure_peaks(args.device, configs) if args.peak else {}
    if args.peak:
        for run in runs:
            run.work_profile = counted_work_seconds(run.model, batch, args.iters, args.device)
    records = [result_record(run, runs[0], args, flops, peaks) for run in runs]
    return format_table(records), explanations(args, peaks), records
