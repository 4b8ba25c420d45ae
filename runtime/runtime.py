"""The Runtime: device, precision and this process's place in a torchrun job, decided once at start-up.

Start-up happens in the option parser. `Launch.from_environment()` reads how torchrun started this
process first, so that other ranks stay quiet (`quiet_unless_main`). Once the flags are known,
`start_runtime` decides the `Runtime` (`Runtime.decide` is pure: the machine comes in as an argument),
starts it (CUDA device, process group, backend switches) and attaches it to the options as
`opt.runtime`. Every module below reads the run's facts from there (`runtime_of(opt)`) and uses its
helpers: the autocast context and the small agreements between ranks. No other module reads
RANK/WORLD_SIZE/LOCAL_RANK, asks torch.distributed who this process is, or sets the CUDA switches
(tests/test_runtime.py checks).
"""
import atexit
import contextlib
import dataclasses
import datetime
import logging
import os
import sys

import torch
import torch.distributed as dist

from util.log import logger

from .device import AMP_DTYPES, THIS_MACHINE, check_amp, device_for, resolve_gpu_ids, set_backend_switches

_control_group = None  # a gloo group for small host-side agreements (stop votes, epoch losses)


@dataclasses.dataclass(frozen=True)
class Launch:
    """How torchrun started this process: its rank, its rank on this machine and the number of
    processes; a process started without torchrun is rank 0 of 1."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @classmethod
    def from_environment(cls, env=os.environ):
        """The Launch that torchrun's RANK, LOCAL_RANK and WORLD_SIZE in `env` describe."""
        return cls(rank=int(env.get("RANK", "0")), local_rank=int(env.get("LOCAL_RANK", "0")),
                   world_size=int(env.get("WORLD_SIZE", "1")))

    @property
    def is_main(self):
        """Rank 0: the process that prints and writes the run's files."""
        return self.rank == 0

    @property
    def distributed(self):
        """Whether this process is one of several in a torchrun job."""
        return self.world_size > 1


@dataclasses.dataclass(frozen=True)
class Runtime(Launch):
    """A process's Launch plus where and how it computes; picklable, as data-loader workers may get it.

    device: the torch.device; gpu_ids: (the CUDA index,) or () for the CPU; amp: --amp (none, bf16 or
    fp16); deterministic: --deterministic; tf32: whether CUDA may use TF32 (not --no_tf32).
    """

    device: torch.device = torch.device("cpu")
    gpu_ids: tuple = ()
    amp: str = "none"
    deterministic: bool = False
    tf32: bool = True

    @classmethod
    def decide(cls, launch, gpu_ids=None, amp="none", deterministic=False, tf32=True, machine=THIS_MACHINE):
        """The Runtime of a process started as `launch` with these flags; UserError for flags this
        machine cannot run.

        gpu_ids: the --gpu_ids text (under torchrun only -1 counts: each process takes GPU LOCAL_RANK,
        or the CPU with -1 or without CUDA); amp, deterministic: --amp, --deterministic; tf32: not
        --no_tf32; machine: what the machine offers (a Machine, or a stand-in in tests).
        """
        if launch.distributed:
            on_gpu = machine.cuda_devices > 0 and str(gpu_ids).strip() != "-1"
            ids = [launch.local_rank] if on_gpu else []
        else:
            ids = resolve_gpu_ids(gpu_ids, machine)
        device = device_for(ids)
        check_amp(amp, device, machine)
        return cls(rank=launch.rank, local_rank=launch.local_rank, world_size=launch.world_size, device=device,
                   gpu_ids=tuple(ids), amp=amp, deterministic=deterministic, tf32=tf32)

    @property
    def amp_dtype(self):
        """The autocast dtype of --amp; None for --amp none."""
        return AMP_DTYPES.get(self.amp)

    @property
    def needs_grad_scaler(self):
        """Whether the optimisers need loss scaling: fp16 gradients underflow without it; bf16 has fp32's range."""
        return self.amp == "fp16"

    @property
    def fused_adam(self):
        """Adam's `fused` argument: the fused kernel on CUDA and under --amp, PyTorch's default (None) for
        fp32 on the CPU. The fused kernel updates the fp32 weights in one pass instead of seven (a third of
        the optimiser's time on a CPU); its rounding differs in fp32's last bit, far below bf16's noise, so
        fp32 CPU runs keep the default kernel and stay the same bit for bit."""
        return True if self.device.type == "cuda" or self.amp_dtype is not None else None

    @property
    def pin_memory(self):
        """Whether data loaders pin their batches, for asynchronous copies to the GPU."""
        return self.device.type == "cuda"

    @property
    def backend(self):
        """The process group's backend: NCCL between GPUs, gloo between CPU processes."""
        return "nccl" if self.device.type == "cuda" else "gloo"

    def with_amp(self, amp, machine=THIS_MACHINE):
        """This Runtime with another --amp; UserError when the device cannot run it."""
        check_amp(amp, self.device, machine)
        return dataclasses.replace(self, amp=amp)

    def alone(self):
        """This process as if it ran alone, for images it reads by itself (not shared out over ranks)."""
        return dataclasses.replace(self, rank=0, local_rank=0, world_size=1)

    def start(self, timeout_s):
        """Put this process on its GPU, join torchrun's process group and set the backend switches.
        timeout_s: collectives that wait longer fail loudly instead of hanging (torchrun then ends the
        whole job)."""
        if self.distributed:
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            _join_process_group(self.backend, timeout_s)
        set_backend_switches(self.device, self.deterministic, self.tf32)

    def autocast(self):
        """The autocast context for forward passes under --amp (a no-op context for --amp none)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def start_max_over_ranks(self, values):
        """Start taking the element-wise maximum of a list of floats over all ranks, without waiting for
        the other ranks (a host-side gloo all-reduce: no GPU synchronisation); returns a function that
        waits for it and gives the list. Every rank must start the same ones in the same order. Without
        torchrun the function gives the values themselves."""
        if not self.distributed:
            return lambda: list(values)
        tensor = torch.tensor(values, dtype=torch.float64)
        work = dist.all_reduce(tensor, op=dist.ReduceOp.MAX, group=_control_group, async_op=True)

        def result():
            work.wait()
            return tensor.tolist()
        return result

    def mean_over_ranks(self, value):
        """The mean of a Python float over all ranks (the value itself without torchrun)."""
        if not self.distributed:
            return value
        total = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(total, group=_control_group)
        return total.item() / self.world_size

    def gather_to_main(self, items):
        """Rank 0 gets the concatenation of every rank's list `items` (others get []); a plain list without torchrun."""
        if not self.distributed:
            return list(items)
        gathered = [None] * self.world_size if self.is_main else None
        dist.gather_object(list(items), gathered, dst=0, group=_control_group)
        return [item for part in gathered for item in part] if gathered else []


def _join_process_group(backend, timeout_s):
    """Join torchrun's process group with `backend`, plus a gloo group for host-side agreements."""
    global _control_group
    timeout = datetime.timedelta(seconds=timeout_s)
    dist.init_process_group(backend=backend, timeout=timeout)
    # Left to interpreter shutdown, the group's communication threads are sometimes destroyed while still
    # joinable, and the process aborts ("terminate called without an active exception") after a finished run.
    atexit.register(_leave_process_group)
    _control_group = dist.new_group(backend="gloo", timeout=timeout) if backend != "gloo" else dist.group.WORLD


def _leave_process_group():
    """Destroy the process group before the interpreter shuts down (see _join_process_group)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def group_place():
    """(rank, world size) of this process in the process group it joined, None outside one: for layers
    whose collectives run in whatever group is there (models.norms.CrossRankBatchNorm2d)."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    return dist.get_rank(), dist.get_world_size()


def quiet_unless_main(launch):
    """Only rank 0 prints: other processes of a torchrun job send stdout nowhere and log errors only."""
    if not launch.is_main:
        sys.stdout = open(os.devnull, "w")
        logger.setLevel(logging.ERROR)


def start_runtime(opt, launch, deterministic):
    """Decide the Runtime of `opt`'s flags (--gpu_ids, --amp, --no_tf32, --dist_timeout) for a process
    started as `launch`, start it and attach it to `opt`; UserError for flags the machine cannot run.
    deterministic: --deterministic (a training flag)."""
    runtime = Runtime.decide(launch, opt.gpu_ids, opt.amp, deterministic, tf32=not opt.no_tf32)
    runtime.start(opt.dist_timeout)
    attach(opt, runtime)
    return runtime


def attach(opt, runtime):
    """Give `opt` its Runtime as opt.runtime, and copies of its facts under the names that earlier
    versions set and the saved options keep (rank, world_size, is_main, gpu_ids as a list, device)."""
    opt.rank, opt.world_size, opt.is_main = runtime.rank, runtime.world_size, runtime.is_main
    opt.gpu_ids, opt.device = list(runtime.gpu_ids), runtime.device
    opt.runtime = runtime


def runtime_of(opt):
    """The Runtime of the run `opt` belongs to: opt.runtime, attached by the option parser. Options
    assembled by hand without the parser (unit tests) have none: they stand for one process on the
    device they name (`device`, else a `gpu_ids` list, else the CPU)."""
    given = vars(opt)
    if "runtime" in given:
        return given["runtime"]
    gpu_ids = tuple(given.get("gpu_ids") or ())
    return Runtime(device=torch.device(given.get("device") or device_for(gpu_ids)), gpu_ids=gpu_ids)


def options_without_runtime(opt):
    """The options as a dict without the attached Runtime: what the printed and saved options hold."""
    return {key: value for key, value in vars(opt).items() if key != "runtime"}
