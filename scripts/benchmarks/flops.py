"""FLOPs: the conv and matmul work of one training iteration and of inference per image (counted
by FlopCounterMode), the hardware's achievable peak (a large convolution's throughput per precision),
and the time a training step spends in the conv and matmul kernels that do that work (profiled)."""
import gc
import re
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from scripts.benchmarks.configurations import Config
from scripts.benchmarks.runs import build_model, synchronize, time_training

# The tensor type a configuration's convolutions mostly run in (for its hardware peak).
PRECISION_DTYPES = {"none": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
PEAK_CONV_CHANNELS, PEAK_CONV_SIZE = 256, 64
PEAK_TIME_BUDGET_S = 1.0  # seconds of timed convolutions per precision


class WholeRunOnly:
    """Stands in for FlopCounterMode's module tracker, whose backward hooks on module inputs fail inside
    torch.autograd.grad (the R1 and WGAN-GP penalties: "A leaf node was passed to
    _will_engine_execute_node"); we read only the total, which the tracker files under "Global"."""

    parents = ("Global",)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def flop_counter():
    """A FlopCounterMode that counts the whole run (get_total_flops) without tracking modules."""
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = WholeRunOnly()
    return counter


def count_flops(args, base_opt, batch):
    """(FLOPs of one training iteration, inference FLOPs per image), counted on a fresh fp32 eager model."""
    model = build_model(base_opt, Config())
    with flop_counter() as counter:
        model.set_input(batch)
        model.optimize_parameters()
    train_flops = counter.get_total_flops()
    model.eval()
    with flop_counter() as counter:
        model.set_input(batch)
        model.test()
    del model
    gc.collect()  # freed now, so that it cannot leave the CUDA memory counts of the timed models mid-way
    return train_flops, counter.get_total_flops() / args.batch_size


def conv_peak_flops(device, amp):
    """Achievable FLOP/s of a large forward convolution (256->256 channels, 3x3, 64x64 images) in the
    precision of `amp` (fp32 may use TF32 on CUDA, as the tool allows by default)."""
    dtype, batch_size = PRECISION_DTYPES[amp], 32 if device == "cuda" else 2
    channels, size = PEAK_CONV_CHANNELS, PEAK_CONV_SIZE
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
    conv = conv.to(device=device, dtype=dtype, memory_format=torch.channels_last)
    images = torch.randn(batch_size, channels, size, size, device=device, dtype=dtype)
    images = images.contiguous(memory_format=torch.channels_last)
    flops_per_call = 2 * channels * channels * 9 * size * size * batch_size
    with torch.inference_mode():
        for _ in range(2):  # autotuning and first-call allocations
            conv(images)
        synchronize(device)
        start = time.perf_counter()
        conv(images)
        synchronize(device)
        calls = max(3, int(PEAK_TIME_BUDGET_S / max(time.perf_counter() - start, 1e-6)))
        start = time.perf_counter()
        for _ in range(calls):
            conv(images)
        synchronize(device)
    return flops_per_call * calls / (time.perf_counter() - start)


def measure_peaks(device, configs):
    """{amp: conv peak FLOP/s} for fp32, bf16 and every precision the configurations use."""
    wanted = dict.fromkeys(["none", "bf16"] + [config.amp for config in configs])
    peaks = {}
    for amp in wanted:
        if amp == "bf16" and device == "cuda" and not torch.cuda.is_bf16_supported():
            continue
        if amp == "fp16" and device != "cuda":
            continue
        peaks[amp] = conv_peak_flops(device, amp)
    return peaks


# Profiled operators that do the counted work: convolutions of every kind (forward, backward,
# transposed, per backend) and matrix products. Self times, so no call is counted twice.
MATMUL_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}
CONV_OP = re.compile(r"conv(olution|_|\d)")  # convolution, conv2d, slow_conv_transpose2d; not "convert"


def is_counted_work(name):
    """Whether the profiled operator `name` is one of the conv or matmul kernels FlopCounterMode counts."""
    return name in MATMUL_OPS or (name.startswith("aten::") and CONV_OP.search(name) is not None)


def counted_work_seconds(model, batch, iterations, device):
    """(seconds per training iteration, seconds of it spent in conv and matmul operators), profiled
    over `iterations` iterations: on the CPU their own wall time on the calling thread (which waits
    for torch's compute threads inside each operator), on CUDA their kernels' device time."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as profiler:
        step_seconds = time_training(model, batch, iterations, device)
    events = profiler.key_averages()
    if device == "cuda":
        work_us = sum(event.self_device_time_total for event in events if is_counted_work(event.key))
    else:
        work_us = sum(event.self_cpu_time_total for event in events if is_counted_work(event.key))
    return step_seconds / iterations, work_us / 1e6 / iterations
