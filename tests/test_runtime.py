"""The Runtime: decided once per parse from torchrun's environment, the flags and the machine (faked
here), the only source of device, precision and distribution facts. tests/test_distributed.py runs it
under torchrun."""
import argparse
import contextlib
import io
import os
import pickle
import platform
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from conftest import REPO_ROOT
from engine.train_state import plain_options
from options.train_options import TrainOptions
from runtime import device as device_module
from runtime import runtime as runtime_module
from runtime.device import cpus_left_by_the_network
from runtime.runtime import Launch, Runtime, runtime_of
from util.errors import UserError

NO_GPU = SimpleNamespace(cuda_devices=0, computes_bf16=lambda index: False)
TWO_GPUS = SimpleNamespace(cuda_devices=2, computes_bf16=lambda index: True)
TWO_OLD_GPUS = SimpleNamespace(cuda_devices=2, computes_bf16=lambda index: False)
SECOND_OF_TWO = {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2"}  # as torchrun sets them

# What only runtime/ may do, as it appears in code (tests/ and runtime/ are not searched).
FORBIDDEN = {
    "reads torchrun's environment": r"""["'](LOCAL_)?RANK["']|["']WORLD_SIZE["']""",
    "asks torch.distributed who this process is": r"\b(get_rank|get_world_size|is_initialized)\s*\(",
    "sets a CUDA switch": r"allow_tf32|cudnn\.(benchmark|deterministic|flags)\b|use_deterministic_algorithms|"
                          r"set_float32_matmul_precision|cuda\.set_device",
    "reads a runtime fact from the options, not from their Runtime":
        r"""getattr\(\s*\w*opt\w*\s*,\s*["'](is_main|world_size|rank|local_rank|gpu_ids|device|amp|deterministic)["']"""
        r"|\b\w*opt\.(is_main|world_size|rank|local_rank|gpu_ids|device)\b",
}


def decide(env, gpu_ids=None, amp="none", machine=NO_GPU):
    return Runtime.decide(Launch.from_environment(env), gpu_ids, amp, machine=machine)


def place(runtime):
    return runtime.rank, runtime.local_rank, runtime.world_size, runtime.is_main, runtime.distributed


def test_a_lone_process_on_the_cpu():
    runtime = decide({}, "-1")
    assert place(runtime) == (0, 0, 1, True, False)
    assert runtime.device == torch.device("cpu") and runtime.gpu_ids == () and runtime.backend == "gloo"
    assert not runtime.pin_memory and runtime.fused_adam is None  # fp32: PyTorch's default Adam, bit for bit
    assert runtime.with_amp("bf16").fused_adam
    assert runtime.amp_dtype is None and not runtime.needs_grad_scaler
    assert decide({}, None) == runtime  # no --gpu_ids and no GPU: the CPU


def test_a_lone_process_on_a_gpu():
    runtime = decide({}, None, "fp16", TWO_GPUS)
    assert runtime.device == torch.device("cuda:0") and runtime.gpu_ids == (0,)
    assert runtime.pin_memory and runtime.fused_adam and runtime.needs_grad_scaler
    assert runtime.amp_dtype == torch.float16
    assert decide({}, "1", "bf16", TWO_GPUS).device == torch.device("cuda:1")
    assert decide({}, "1,0", machine=TWO_GPUS).gpu_ids == (1,)  # one GPU per process (said in a warning)
    assert not decide({}, "-1", machine=TWO_GPUS).pin_memory


def test_a_torchrun_process_takes_the_gpu_of_its_local_rank():
    runtime = decide(SECOND_OF_TWO, None, "bf16", TWO_GPUS)
    assert place(runtime) == (1, 1, 2, False, True)
    assert runtime.device == torch.device("cuda:1") and runtime.backend == "nccl"
    assert runtime.amp_dtype == torch.bfloat16 and not runtime.needs_grad_scaler
    for on_cpu in (decide(SECOND_OF_TWO, "-1", machine=TWO_GPUS), decide(SECOND_OF_TWO, "0")):
        assert on_cpu.device == torch.device("cpu") and on_cpu.backend == "gloo" and not on_cpu.pin_memory
    alone = runtime.alone()
    assert place(alone) == (0, 0, 1, True, False) and alone.device == runtime.device


@pytest.mark.parametrize("env, gpu_ids, amp, machine, message", [
    ({}, "0", "none", NO_GPU, "CUDA is not available"),
    ({}, "2", "none", TWO_GPUS, "no GPU 2"),
    ({}, "first", "none", TWO_GPUS, "not a list of numbers"),
    ({}, "-1", "fp16", TWO_GPUS, "--amp fp16 needs a CUDA GPU"),
    (SECOND_OF_TWO, None, "fp16", NO_GPU, "--amp fp16 needs a CUDA GPU"),
    ({}, "0", "bf16", TWO_OLD_GPUS, "--amp bf16 needs an Ampere"),
])
def test_flags_the_machine_cannot_run(env, gpu_ids, amp, machine, message):
    with pytest.raises(UserError, match=message):
        decide(env, gpu_ids, amp, machine)


def test_autocast_and_another_amp():
    cpu = decide({}, "-1")
    product = torch.ones(2, 2)
    with cpu.autocast():
        assert (product @ product).dtype == torch.float32
    with cpu.with_amp("bf16").autocast():
        assert (product @ product).dtype == torch.bfloat16
    assert cpu.amp == "none"  # with_amp gives a new Runtime
    with pytest.raises(UserError, match="fp16 needs a CUDA GPU"):
        cpu.with_amp("fp16")


def test_without_torchrun_the_agreements_stay_in_the_process():
    runtime = decide({}, "-1")
    assert runtime.start_max_over_ranks([1.0, -2.5])() == [1.0, -2.5]
    assert runtime.mean_over_ranks(2.5) == 2.5 and runtime.gather_to_main((1, 2)) == [1, 2]
    assert pickle.loads(pickle.dumps(runtime)) == runtime  # data-loader workers may receive it


def test_options_built_by_hand_stand_for_one_process_on_the_device_they_name():
    assert runtime_of(argparse.Namespace()) == Runtime()
    on_gpu = runtime_of(SimpleNamespace(gpu_ids=[0]))
    assert on_gpu.device == torch.device("cuda:0") and on_gpu.pin_memory and not on_gpu.distributed
    assert runtime_of(argparse.Namespace(device=torch.device("cuda:1"))).fused_adam


def test_parsing_decides_the_runtime_once_and_keeps_it_out_of_the_saved_options(tmp_path, monkeypatch):
    decided = []
    decide_once = Runtime.decide.__func__

    def counted(cls, *args, **kwargs):
        decided.append(decide_once(cls, *args, **kwargs))
        return decided[-1]
    monkeypatch.setattr(Runtime, "decide", classmethod(counted))
    switches = []  # recorded, not set: --deterministic would stay on in this test process
    monkeypatch.setattr(runtime_module, "set_backend_switches", lambda *args: switches.append(args))
    options = TrainOptions()
    with contextlib.redirect_stdout(io.StringIO()):
        opt = options.parse(["--dataroot", str(tmp_path), "--checkpoints_dir", str(tmp_path), "--gpu_ids", "-1",
                             "--amp", "bf16", "--no_tf32", "--deterministic"])
    assert decided == [Runtime(amp="bf16", deterministic=True, tf32=False)] and runtime_of(opt) is decided[0]
    assert switches == [(torch.device("cpu"), True, False)]
    # The copies under the names earlier versions set, which the saved options keep.
    assert (opt.rank, opt.world_size, opt.is_main, opt.gpu_ids, opt.device) == (0, 1, True, [], torch.device("cpu"))
    assert not re.search(r"^ *runtime:", options.text, re.M)
    saved = plain_options(opt)
    assert "runtime" not in saved and saved["device"] == "cpu" and saved["is_main"] is True


def product_files():
    for path in sorted(REPO_ROOT.rglob("*.py")):
        parts = path.relative_to(REPO_ROOT).parts
        if parts[0] not in ("tests", "runtime") and not any(part.startswith(".") for part in parts):
            yield path


def test_only_the_runtime_decides_who_and_where_a_process_is():
    hits = [f"{path.relative_to(REPO_ROOT)}:{number}: {what}: {line.strip()}"
            for path in product_files()
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            for what, pattern in FORBIDDEN.items() if re.search(pattern, line)]
    assert not hits, "\n".join(hits)


@pytest.mark.parametrize("line", [
    'opt.rank = int(os.environ.get("RANK", "0"))', 'return Visualizer(opt) if getattr(opt, "is_main", True) else x',
    "mean, var = stats(x, dist.get_rank(), dist.get_world_size())", "torch.backends.cudnn.allow_tf32 = True",
    "pin_memory=bool(opt.gpu_ids)", "if self.opt.world_size > 1:", "device_ids=[opt.device.index]",
])
def test_the_search_finds_the_ways_that_were_removed(line):
    assert any(re.search(pattern, line) for pattern in FORBIDDEN.values())


def test_cpus_left_by_the_network_are_those_beyond_torchs_threads_on_the_cpu_and_all_beside_a_gpu(monkeypatch):
    monkeypatch.setattr(device_module, "usable_cpus", lambda: 8)
    for threads, left in [(8, 0), (16, 0), (6, 2), (1, 7)]:
        monkeypatch.setattr(torch, "get_num_threads", lambda threads=threads: threads)
        assert cpus_left_by_the_network(torch.device("cpu")) == left
        assert cpus_left_by_the_network(torch.device("cuda", 0)) == 8


def test_usable_cpus_follow_the_processs_affinity():
    assert device_module.usable_cpus() == len(os.sched_getaffinity(0)) >= 1


REALLOCATING = """
import ctypes, resource, sys
sys.path.insert(0, sys.argv[2])
from runtime.allocator import keep_freed_memory_for_reuse, return_free_memory
applied = keep_freed_memory_for_reuse() if sys.argv[1] == "keep" else None
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
SIZE = 64 << 20

def use_and_free_a_buffer():  # as a training step does with a large feature map
    address = libc.malloc(SIZE)
    ctypes.memset(address, 1, SIZE)
    libc.free(address)

def page_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

use_and_free_a_buffer()  # the first buffer takes fresh pages either way
before = page_faults()
for _ in range(5):
    use_and_free_a_buffer()
print(applied, page_faults() - before)

def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()

kept = resident_bytes()
return_free_memory()
print(kept - resident_bytes())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_freed_large_buffers_are_reused_without_fresh_pages_once_kept_until_returned():
    def run(mode):
        finished = subprocess.run([sys.executable, "-c", REALLOCATING, mode, str(REPO_ROOT)], capture_output=True,
                                  text=True, timeout=300, check=True)
        applied, faults, returned = finished.stdout.split()
        return applied, int(faults), int(returned)

    applied, faults, returned = run("keep")
    assert applied == "True" and faults <= 16  # the buffer came back from the heap each time
    assert returned >= 60 << 20  # until return_free_memory gave its pages back (as train.py does around evaluations)
    _, faults, _ = run("default")
    assert faults >= 5  # glibc's default: every 64 MiB buffer mapped anew (fewer faults with huge pages)
