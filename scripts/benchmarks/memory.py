"""Memory use of a configuration: CUDA bytes held and peak bytes allocated, or on the CPU the
process's resident-set high-water mark; and, for whole runs in child processes, the peak proportional
set size of a process tree (a child and its loader workers)."""
import os
import re
import threading

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


def process_tree(pid):
    """`pid` and all its living descendants (Linux /proc/PID/task/TID/children)."""
    found, waiting = [], [pid]
    while waiting:
        current = waiting.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    waiting.extend(int(child) for child in handle.read().split())
        except OSError:
            continue  # it ended meanwhile
    return found


def proportional_bytes(pid):
    """The process's proportional set size (PSS: its private pages plus its share of pages it shares,
    so that forked loader workers and their parent are not counted twice); 0 once it has ended."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            return int(re.search(r"^Pss:\s+(\d+) kB", handle.read(), re.MULTILINE).group(1)) * 1024
    except (OSError, AttributeError):
        return 0


class TreePeak(threading.Thread):
    """Samples the summed PSS of a process and its descendants every `interval` seconds, in the
    background, until `stop()`; `peak_bytes` is the highest sum seen and `most_processes` the largest
    number of processes seen at once."""

    def __init__(self, pid, interval):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_bytes, self.most_processes = 0, 0
        self.finished = threading.Event()

    def run(self):
        while not self.finished.wait(self.interval):
            pids = process_tree(self.pid)
            self.peak_bytes = max(self.peak_bytes, sum(proportional_bytes(pid) for pid in pids))
            self.most_processes = max(self.most_processes, len(pids))

    def stop(self):
        """Stop sampling and wait for the sampler."""
        self.finished.set()
        self.join()
