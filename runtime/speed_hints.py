"""Which speed flags the user left out would make training or testing faster on this machine: the lines
train.py and test.py print once at their start. The defaults never change (plain fp32, no compilation:
the original's numbers, and no compile wait); the hint only says what was measured.

`speed_hints` is pure: the hardware comes in as a `Hardware` (`describe_hardware` asks the machine), so
tests fake an AMX Xeon or an older GPU. What the advice rests on (CycleGAN with resnet_9blocks, batch 1):
  AMX Xeon, 256 px, 2 cores              train.py (scripts/benchmarks/train_speed.py --rounds 2): fp32 8.59 s/it,
                                         --amp bf16 3.00 s/it (2.86x), --amp bf16 --compile 1.91 s/it (4.50x;
                                         compile 1.57x); an earlier single round: 2.50x and 3.80x
  AMD EPYC with AVX-512 BF16, no AMX     --amp bf16 2.05x the fp32 speed, train.py at 256 px (1 thread, CPU time:
                                         12.4 -> 6.0 s/it); 1.54x in scripts/benchmark.py at 128 px; a large conv 2.0x
  CPUs with neither                      bf16 is emulated, slower than fp32: no hint
  GPUs of compute capability 8.0+        bf16 tensor cores (Ampere or newer), no loss scaling needed
  --channels_last on CPUs                training: slower (0.89x fp32, 0.88x bf16 on the AMX Xeon in
                                         scripts/benchmark.py; compiled bf16 no faster): never hinted
  --compile, AMD EPYC without AMX        bf16 0.521 -> 0.533 it/s at 128 px (+2%, 1 thread)
test.py (scripts/benchmarks/testpy_speed.py, 40 pictures of 256 px, whole runs, 2 cores): on the AMX Xeon
--amp bf16 2.27 -> 4.46 img/s (1.95x), with --channels_last 6.86 (1.54x more); on the AMD EPYC --amp bf16
2.64 -> 4.05 img/s (1.5x).
--compile costs a minute or more before the first step, so it is suggested for long runs only.
"""
import dataclasses

from .device import THIS_MACHINE

AMX_FLAG = "amx_bf16"  # /proc/cpuinfo: AMX tiles with bf16 matrix products (Xeon Sapphire Rapids and newer)
AVX512_BF16_FLAG = "avx512_bf16"  # /proc/cpuinfo: bf16 dot products in AVX-512 (e.g. AMD Zen 4 EPYC)
AMPERE = (8, 0)  # the first compute capability with bf16 tensor cores
# Steps from which a run counts as long enough to repay compiling (a minute or more, once): a CPU step at
# 256 px takes seconds, a GPU step milliseconds. Judgement: compile speed-ups were measured on CPUs only.
LONG_RUN_STEPS = {"cpu": 2_000, "cuda": 100_000}


@dataclasses.dataclass(frozen=True)
class Hardware:
    """What decides which precision and compilation pay off.

    device_type: 'cpu' or 'cuda' (the device training runs on); cpu_flags: the CPU's feature flags
    (/proc/cpuinfo); gpu_name, gpu_capability: the training GPU's name and compute capability (major, minor).
    """

    device_type: str
    cpu_flags: frozenset = frozenset()
    gpu_name: str = ""
    gpu_capability: tuple = ()


def describe_hardware(device, machine=THIS_MACHINE):
    """The Hardware of training on torch.device `device`. machine: a device.Machine (or a stand-in)."""
    if device.type == "cuda":
        name, capability = machine.gpu(device.index or 0)
        return Hardware("cuda", gpu_name=name, gpu_capability=tuple(capability))
    return Hardware("cpu", cpu_flags=frozenset(machine.cpu_flags))


def speed_hints(hardware, given, steps):
    """The lines to print about faster flags (none when nothing applies).

    hardware: a Hardware; given: the option names the user typed (e.g. {'amp', 'compile'}): a flag given
    in any form, `--amp none` too, is the user's choice and gets no hint; steps: the optimisation steps
    the run will take.
    """
    hints = []
    bf16 = bf16_reason(hardware)
    if "amp" not in given and bf16:
        hints.append(f"--amp bf16: {bf16}")
    if "compile" not in given and steps >= LONG_RUN_STEPS[hardware.device_type]:
        hints.append(f"--compile: this run takes {steps:,} steps, and compiling costs a minute or more once; "
                     f"{compile_gain(hardware)}")
    return hint_lines(hints, "train faster")


def inference_hints(hardware, given, amp):
    """The lines test.py prints about faster flags (none when nothing applies).

    hardware: a Hardware; given: the option names the user typed; amp: the --amp in use. --channels_last
    is suggested only where it was measured faster: with bf16 on an AMX CPU, where instance norm keeps the
    layout in inference (models/norms.py).
    """
    hints = []
    bf16 = bf16_reason(hardware, TEST_BF16_GAIN)
    if "amp" not in given and bf16:
        hints.append(f"--amp bf16: {bf16}")
    bf16_in_use = amp == "bf16" or (bf16 is not None and "amp" not in given)
    if "channels_last" not in given and bf16_in_use and hardware.device_type == "cpu" and AMX_FLAG in hardware.cpu_flags:
        hints.append("--channels_last: with --amp bf16 on an AMX Xeon test.py ran 1.5x faster still (256 px)")
    return hint_lines(hints, "run faster")


def hint_lines(hints, what):
    """The heading and the hints, indented; no lines without hints. what: e.g. 'train faster'."""
    if not hints:
        return []
    return [f"speed: flags you did not give that {what} on this machine (nothing was changed):",
            *(f"  {hint}" for hint in hints)]


def compile_gain(hardware):
    """What --compile was measured to gain on hardware like `hardware`, in words."""
    if hardware.device_type == "cuda":
        return "not measured on GPUs here (on an AMX Xeon it made bf16 training 1.6x as fast)"
    if AMX_FLAG in hardware.cpu_flags:
        return "on an AMX Xeon it raised bf16 training from 2.9x to 4.5x the fp32 speed (train.py, 256 px)"
    return "on an AMD EPYC without AMX it made bf16 training only 2% faster (128 px); on an AMX Xeon 1.6x"


# What --amp bf16 was measured to gain per CPU kind (its /proc/cpuinfo flag, the first one present):
# how the hint names the CPU and where it was measured, then the gain in training and in test.py.
CPU_BF16 = {AMX_FLAG: ("this CPU has AMX", "on an AMX Xeon"),
            AVX512_BF16_FLAG: ("this CPU has AVX-512 BF16", "on an AMD EPYC with it (no AMX)")}
TRAINING_BF16_GAIN = {AMX_FLAG: "CycleGAN trained 2.9x as fast as in fp32 (256 px)",
                      AVX512_BF16_FLAG: "CycleGAN trained 2.0x as fast as in fp32 (256 px)"}
TEST_BF16_GAIN = {AMX_FLAG: "test.py ran 1.95x as fast as in fp32 (256 px, whole runs)",
                  AVX512_BF16_FLAG: "test.py ran 1.5x as fast as in fp32 (256 px, whole runs)"}


def bf16_reason(hardware, gains=TRAINING_BF16_GAIN):
    """Why --amp bf16 is faster on `hardware`, in words; None where it is not known to be. gains: the
    measured gain per CPU kind (TRAINING_BF16_GAIN or TEST_BF16_GAIN)."""
    if hardware.device_type == "cuda":
        if hardware.gpu_capability >= AMPERE:
            major, minor = hardware.gpu_capability
            return (f"{hardware.gpu_name} (compute capability {major}.{minor}) has bf16 tensor cores, and bf16 "
                    "needs no loss scaling")
        return None
    for flag, (cpu, where) in CPU_BF16.items():
        if flag in hardware.cpu_flags:
            return f"{cpu}; {where} {gains[flag]}"
    return None
