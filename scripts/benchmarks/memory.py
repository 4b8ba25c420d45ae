"""Memory use of a configuration: CUDA bytes held and peak bytes allocated, or on the CPU the
process's resident-set high-water mark."""
import re

import torch


def cuda_memory_in_use(device):
    """Bytes of CUDA memory held by tensors now (None on the CPU)."""
    return torch.cuda.memory_allocated() if device == "cuda" else None


def reset_peak_memory(device):
    """Start a new peak: CUDA's allocator statistics, or the process's RSS high-water mark."""
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        return
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # 5 resets VmHWM to the current RSS (Linux 4.0+)
    except OSError:
        pass  # then the mark covers the whole process lifetime; still an upper bound


def peak_memory(device):
    """CUDA: peak bytes allocated since the reset; CPU: the process's VmHWM in bytes (0 if unknown)."""
    if device == "cuda":
        return torch.cuda.max_memory_allocated()
    try:
        with open("/proc/self/status") as handle:
            return int(re.search(r"VmHWM:\s+(\d+) kB", handle.read()).group(1)) * 1024
    except (OSError, AttributeError):
        return 0
