"""Which device and precision a process runs with, and the backend switches that go with them.

The pure choices (`resolve_gpu_ids`, `device_for`, `check_amp`; runtime/speed_hints.py's advice) take
what the machine offers as a `Machine`, so that tests can fake a GPU or a CPU; `set_backend_switches`
and `float32_convolutions` are the only places that touch the CUDA/cuDNN switches. runtime.runtime
builds the run's Runtime from these.
"""
import os

import torch

from util.errors import UserError
from util.log import logger

AMP_CHOICES = ("none", "bf16", "fp16")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
CPUINFO = "/proc/cpuinfo"


class Machine:
    """The CPU and CUDA GPUs of this machine, asked of the system and of torch only when needed. Tests
    pass a stand-in with the members they need (e.g. a SimpleNamespace)."""

    @property
    def cuda_devices(self):
        """How many CUDA GPUs this process can use (0 without CUDA)."""
        return torch.cuda.device_count() if torch.cuda.is_available() else 0

    def computes_bf16(self, index):
        """Whether GPU `index` can run bfloat16 autocast."""
        with torch.cuda.device(index):
            return torch.cuda.is_bf16_supported()

    @property
    def cpu_flags(self):
        """The CPU's feature flags as Linux lists them in /proc/cpuinfo (e.g. 'amx_bf16', 'avx512_bf16');
        empty where that file does not exist."""
        try:
            with open(CPUINFO, encoding="utf-8") as handle:
                line = next((line for line in handle if line.startswith("flags")), "")
        except OSError:
            return frozenset()
        return frozenset(line.partition(":")[2].split())

    def gpu(self, index):
        """(name, compute capability as (major, minor)) of GPU `index`."""
        return torch.cuda.get_device_name(index), torch.cuda.get_device_capability(index)


THIS_MACHINE = Machine()


def resolve_gpu_ids(text, machine):
    """Turn the `--gpu_ids` text into a list of CUDA device indices ([] = CPU).

    text: None (not given: the first GPU if CUDA is available, else the CPU with one notice),
    '-1' (CPU) or comma-separated indices such as '0' or '0,1,2'; machine: a Machine.
    """
    available = machine.cuda_devices
    if text is None:
        if available:
            return [0]
        logger.info("note: no CUDA GPU found; running on the CPU (pass --gpu_ids -1 to choose the CPU explicitly)")
        return []
    try:
        ids = [int(part) for part in str(text).split(",") if part.strip() != ""]
    except ValueError:
        raise UserError(f"--gpu_ids {text!r} is not a list of numbers; use e.g. --gpu_ids 0, --gpu_ids 0,1 or -1 for the CPU")
    ids = [i for i in ids if i >= 0]
    if not ids:
        return []
    if not available:
        raise UserError(f"--gpu_ids {text} asks for a GPU but CUDA is not available here; pass --gpu_ids -1 to run on the CPU")
    missing = [i for i in ids if i >= available]
    if missing:
        raise UserError(f"--gpu_ids {text}: this machine has {available} GPU(s), no GPU {missing[0]}; "
                        "choose existing indices")
    if len(ids) > 1:
        logger.warning(f"--gpu_ids {text}: one process uses one GPU; to train on {len(ids)} GPUs run "
                       f"`torchrun --nproc_per_node={len(ids)} train.py ...`; using GPU {ids[0]} now")
        ids = ids[:1]
    return ids


def device_for(gpu_ids):
    """The torch.device for a resolved `gpu_ids` list."""
    return torch.device(f"cuda:{gpu_ids[0]}") if gpu_ids else torch.device("cpu")


def check_amp(amp, device, machine):
    """UserError for a --amp value `device` cannot run (machine: a Machine)."""
    if amp == "fp16" and device.type != "cuda":
        raise UserError("--amp fp16 needs a CUDA GPU; on the CPU use --amp bf16 (fast on CPUs with AMX or AVX-512 BF16)")
    if amp == "bf16" and device.type == "cuda" and not machine.computes_bf16(device.index):
        raise UserError("--amp bf16 needs an Ampere or newer GPU; use --amp fp16 on this one")


def usable_cpus():
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cpus_left_by_the_network(device):
    """CPU cores that the network's own computation leaves free for loading and writing images: every
    usable core when it runs on a GPU; on the CPU those beyond torch's compute threads (none by default,
    torch computing on every core)."""
    if device.type != "cpu":
        return usable_cpus()
    return max(0, usable_cpus() - torch.get_num_threads())


def set_backend_switches(device, deterministic, tf32):
    """Deterministic algorithms when asked; on CUDA, cuDNN autotuning (unless deterministic) and TF32."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by deterministic cuBLAS
        torch.use_deterministic_algorithms(True)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = deterministic
        torch.backends.cudnn.benchmark = not deterministic  # fixed crop sizes: autotuning pays off
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32


def float32_convolutions():
    """A context in which cuDNN convolutions compute in full float32 (no TF32), the other switches as
    they are: for numbers that must not depend on the GPU (FID features)."""
    cudnn = torch.backends.cudnn
    return cudnn.flags(enabled=cudnn.enabled, benchmark=cudnn.benchmark, deterministic=cudnn.deterministic,
                       allow_tf32=False)
