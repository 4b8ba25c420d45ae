"""The faster-flags hint of train.py: which flags it suggests for faked hardware, only when the user gave
none of them, and the hardware facts it reads (runtime/speed_hints.py, runtime/device.py)."""
from types import SimpleNamespace

import pytest
import torch

from runtime import device as device_module
from runtime.device import Machine
from runtime.speed_hints import LONG_RUN_STEPS, Hardware, describe_hardware, inference_hints, speed_hints

AMX_XEON = Hardware("cpu", frozenset({"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}))
ZEN4_EPYC = Hardware("cpu", frozenset({"avx2", "avx512f", "avx512_bf16"}))
PLAIN_CPU = Hardware("cpu", frozenset({"sse4_2", "avx2"}))
A100 = Hardware("cuda", gpu_name="NVIDIA A100-SXM4-80GB", gpu_capability=(8, 0))
V100 = Hardware("cuda", gpu_name="Tesla V100-SXM2-16GB", gpu_capability=(7, 0))
SHORT = 100
LONG = 1_000_000


def suggested(lines):
    """The flags suggested by speed_hints' lines (e.g. ['--amp bf16', '--compile'])."""
    return [line.strip().split(":")[0] for line in lines[1:]]


@pytest.mark.parametrize("hardware, flags", [
    (AMX_XEON, ["--amp bf16"]), (ZEN4_EPYC, ["--amp bf16"]), (PLAIN_CPU, []), (A100, ["--amp bf16"]), (V100, []),
], ids=["amx-xeon", "avx512-bf16-epyc", "plain-cpu", "ampere-gpu", "older-gpu"])
def test_bf16_is_suggested_where_it_was_measured_faster(hardware, flags):
    lines = speed_hints(hardware, given=set(), steps=SHORT)
    assert suggested(lines) == flags
    if flags:
        assert lines[0].startswith("speed: ") and "nothing was changed" in lines[0]
    else:
        assert lines == []  # not even the heading


def test_the_lines_give_the_measured_reasons():
    amx, epyc, ampere = (speed_hints(hardware, set(), SHORT)[1] for hardware in (AMX_XEON, ZEN4_EPYC, A100))
    assert "AMX" in amx and "2.9x" in amx
    assert "AVX-512 BF16" in epyc and "2.0x" in epyc
    assert "NVIDIA A100-SXM4-80GB (compute capability 8.0)" in ampere and "tensor cores" in ampere


@pytest.mark.parametrize("hardware, measured_on", [
    (AMX_XEON, "on an AMX Xeon it raised"), (PLAIN_CPU, "on an AMD EPYC without AMX it made"),
    (A100, "not measured on GPUs"), (V100, "not measured on GPUs"),
], ids=["amx-xeon", "plain-cpu", "ampere", "older"])
def test_compile_is_suggested_for_long_runs_only(hardware, measured_on):
    threshold = LONG_RUN_STEPS[hardware.device_type]
    assert "--compile" not in suggested(speed_hints(hardware, {"amp"}, threshold - 1))
    long_run = speed_hints(hardware, {"amp"}, threshold)
    assert suggested(long_run) == ["--compile"] and f"{threshold:,} steps" in long_run[1]
    assert measured_on in long_run[1]  # the figure measured on hardware of its kind


@pytest.mark.parametrize("given, flags", [
    ({"amp"}, ["--compile"]), ({"compile"}, ["--amp bf16"]), ({"amp", "compile"}, []), ({"channels_last"}, None),
])
def test_flags_the_user_gave_get_no_hint(given, flags):
    lines = speed_hints(AMX_XEON, given, LONG)
    assert suggested(lines) == (["--amp bf16", "--compile"] if flags is None else flags)
    assert not any("--channels_last" in line for line in lines)  # slower on CPUs: never suggested


def test_the_hardware_is_read_from_the_machine(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512_bf16\n\n"
                       "processor\t: 1\nflags\t\t: fpu avx2 avx512_bf16\n")
    monkeypatch.setattr(device_module, "CPUINFO", str(cpuinfo))
    assert Machine().cpu_flags == {"fpu", "avx2", "avx512_bf16"}
    assert describe_hardware(torch.device("cpu")) == Hardware("cpu", frozenset({"fpu", "avx2", "avx512_bf16"}))
    monkeypatch.setattr(device_module, "CPUINFO", str(tmp_path / "missing"))  # not Linux
    assert Machine().cpu_flags == frozenset()

    gpu = SimpleNamespace(gpu=lambda index: ("NVIDIA H100", (9, 0)) if index == 1 else None)
    assert describe_hardware(torch.device("cuda:1"), gpu) == Hardware("cuda", gpu_name="NVIDIA H100",
                                                                      gpu_capability=(9, 0))


@pytest.mark.parametrize("hardware, given, amp, flags", [
    (AMX_XEON, set(), "none", ["--amp bf16", "--channels_last"]),
    (AMX_XEON, {"amp"}, "bf16", ["--channels_last"]),
    (AMX_XEON, {"amp"}, "none", []),  # fp32 chosen: channels-last was not measured faster there
    (AMX_XEON, {"channels_last"}, "none", ["--amp bf16"]),
    (ZEN4_EPYC, set(), "none", ["--amp bf16"]),  # channels-last not measured without AMX
    (ZEN4_EPYC, {"amp"}, "bf16", []),
    (PLAIN_CPU, set(), "none", []),
    (A100, set(), "none", ["--amp bf16"]),
    (A100, {"amp"}, "bf16", []),  # channels-last is a CPU finding here
    (V100, set(), "none", []),
], ids=["amx", "amx-bf16-given", "amx-fp32-given", "amx-channels-last-given", "epyc", "epyc-bf16-given",
        "plain-cpu", "ampere", "ampere-bf16-given", "older-gpu"])
def test_test_py_gets_the_flags_measured_faster_for_inference(hardware, given, amp, flags):
    lines = inference_hints(hardware, given, amp)
    assert suggested(lines) == flags
    assert lines == [] if not flags else lines[0].startswith("speed: flags you did not give that run faster")


def test_test_py_hints_give_inference_figures():
    amx = inference_hints(AMX_XEON, set(), "none")
    assert "test.py ran 1.95x" in amx[1] and "1.5x faster still" in amx[2]
    assert "test.py ran 1.5x" in inference_hints(ZEN4_EPYC, set(), "none")[1]
