"""scripts/benchmark.py runs its configurations side by side, alone or under torchrun, and reports sound numbers
(smoke tests, no timing asserts)."""
import itertools
import json
import os
import re
import subprocess
import sys
import time

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from conftest import REPO_ROOT, run_script, side_by_side
from models.cut_networks import define_cut_G
from models.generators import define_G
from scripts.benchmark import parse_arguments
from scripts.benchmarks import scaling
from scripts.benchmarks.configurations import Config, configurations
from scripts.benchmarks.flops import counted_work_seconds, is_counted_work
from util.errors import UserError

TINY = ["--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--crop_size", "32", "--warmup", "1", "--iters", "1",
        "--rounds", "2", "--inference_iters", "1", "--device", "cpu"]
NUMBERS = ["train_it_s", "train_img_s", "infer_img_s", "speedup_vs_first", "peak_mem_bytes", "train_flops_per_iter",
           "infer_flops_per_image", "achieved_flop_s", "first_iteration_s", "threads"]
SETTINGS = ["config", "model", "netG", "ngf", "ndf", "crop_size", "batch_size", "device", "amp", "channels_last",
            "compile", "warmup", "iters", "rounds", "inference_iters", "torch", "device_name", "peak_mem_kind"]


def bench_records(stdout):
    return [json.loads(line[len("BENCH "):]) for line in stdout.splitlines() if line.startswith("BENCH ")]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Four CPU configurations (amp x channels_last) with --peak and --json: (process, records, json file)."""
    folder = tmp_path_factory.mktemp("bench")
    json_path = folder / "bench.jsonl"
    process = run_script("scripts/benchmark.py", *TINY, "--amp", "none", "bf16", "--channels_last", "0", "1",
                         "--peak", "--json", json_path, cwd=folder, timeout=120)
    assert process.returncode == 0, process.stderr
    return process, bench_records(process.stdout), json_path


def test_four_configurations_give_positive_numbers_and_their_settings(tiny_run):
    process, records, json_path = tiny_run
    assert len(records) == 4
    assert [(r["amp"], r["channels_last"]) for r in records] == list(itertools.product(["none", "bf16"], [False, True]))
    for record in records:
        assert set(NUMBERS + SETTINGS) <= set(record)
        assert all(record[key] > 0 for key in NUMBERS), record
        assert len(record["train_it_s_rounds"]) == len(record["infer_img_s_rounds"]) == 2
        assert record["train_img_s"] == pytest.approx(record["train_it_s"] * record["batch_size"])
        assert record["achieved_flop_s"] == pytest.approx(record["train_flops_per_iter"] * record["train_it_s"])
        assert (record["model"], record["netG"], record["ngf"], record["crop_size"], record["device"]) == \
            ("cycle_gan", "resnet_6blocks", 4, 32, "cpu")
        assert record["compile"] is False and record["peak_mem_kind"] == "process_rss_high_water_mark"
    assert records[0]["speedup_vs_first"] == 1.0
    assert len({r["train_flops_per_iter"] for r in records}) == 1  # counted once, fp32 eager
    table = process.stdout.split("BENCH ")[0]
    assert "train it/s" in table and "process-wide" in table
    assert all(record["config"] in table for record in records)
    assert bench_records(json_path.read_text()) == [] and \
        [json.loads(line) for line in json_path.read_text().splitlines()] == records


def test_inference_flops_are_four_generator_passes_per_image(tiny_run):
    _, records, _ = tiny_run
    generator = define_G(3, 3, 4, "resnet_6blocks", "instance")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        generator(torch.zeros(1, 3, 32, 32))
    # CycleGAN's test(): A -> fake B -> rec A and B -> fake A -> rec B.
    assert records[0]["infer_flops_per_image"] == 4 * counter.get_total_flops()
    # Training runs six generator passes forward alone (identity terms included), then backward.
    assert records[0]["train_flops_per_iter"] > 6 * counter.get_total_flops()


def test_peak_gives_each_precision_its_own_positive_peak(tiny_run):
    process, records, _ = tiny_run
    peaks = {record["amp"]: record["peak_flop_s"] for record in records}
    assert len(peaks) == 2 and all(value > 0 for value in peaks.values())
    assert all(record["peak_flop_s"] == peaks[record["amp"]] for record in records)
    assert all(0 < record["fraction_of_peak"] for record in records)
    assert "% of peak:" in process.stdout and "fp32" in process.stdout


def test_peak_reports_the_time_in_conv_and_matmul_and_the_share_of_peak_it_bounds(tiny_run):
    process, records, _ = tiny_run
    for record in records:
        assert 0 < record["conv_matmul_share_of_step"] <= 1
        assert record["conv_matmul_bound_of_peak"] > 0
    assert "conv+mm % of step" in process.stdout and "bound % of peak:" in process.stdout


class ConvThenSleep:
    """A model whose training step runs a convolution forward and backward and a matrix product,
    then waits 50 ms (time that is neither)."""

    def __init__(self):
        self.conv, self.linear = torch.nn.Conv2d(3, 8, 3), torch.nn.Linear(8, 8)

    def set_input(self, batch):
        self.batch = batch

    def optimize_parameters(self):
        features = self.conv(self.batch).mean((2, 3))
        self.linear(features).sum().backward()
        time.sleep(0.05)


def test_the_profile_counts_conv_and_matmul_operators_and_nothing_else():
    step_s, work_s = counted_work_seconds(ConvThenSleep(), torch.randn(2, 3, 16, 16), 2, "cpu")
    assert step_s >= 0.05 and 0 < work_s < step_s - 0.045
    assert all(map(is_counted_work, ["aten::mkldnn_convolution", "aten::convolution_backward", "aten::_convolution",
                                     "aten::slow_conv_transpose2d", "aten::cudnn_convolution", "aten::mm",
                                     "aten::addmm", "aten::bmm", "aten::conv2d", "aten::conv_depthwise2d"]))
    assert not any(map(is_counted_work, ["aten::add_", "aten::native_batch_norm", "aten::copy_", "aten::linear",
                                         "Optimizer.step#Adam.step", "aten::reflection_pad2d",
                                         "aten::_convert_indices_from_coo_to_csr"]))


def test_pix2pix_unet_and_fp16_skipped_on_the_cpu(tmp_path):
    process = run_script("scripts/benchmark.py", "--model", "pix2pix", "--netG", "unet_128", "--crop_size", "128",
                         "--ngf", "4", "--ndf", "4", "--warmup", "1", "--iters", "1", "--rounds", "1",
                         "--inference_iters", "1", "--device", "cpu", "--config", "amp=none", "--config", "amp=fp16",
                         cwd=tmp_path, timeout=120)
    assert process.returncode == 0, process.stderr
    assert "note: skipping amp=fp16" in process.stdout
    records = bench_records(process.stdout)
    assert len(records) == 1
    record = records[0]
    assert (record["model"], record["netG"], record["amp"], record["crop_size"]) == ("pix2pix", "unet_128", "none", 128)
    assert all(record[key] > 0 for key in NUMBERS)
    assert record["fraction_of_peak"] is None  # no --peak
    assert record["conv_matmul_share_of_step"] is None and record["conv_matmul_bound_of_peak"] is None


def test_cut_in_both_modes_and_without_antialiasing_one_generator_pass_per_test_image(tmp_path):
    variants = {"CUT": ["--CUT_mode", "CUT"], "fastcut": ["--CUT_mode", "fastcut"],
                "plain": ["--no_antialias", "--no_antialias_up"]}
    runs = {name: side_by_side(run_script, "scripts/benchmark.py", *TINY, "--model", "cut", *flags,
                               "--config", "amp=none", "--rounds", "1", "--threads", "1", cwd=tmp_path, timeout=120)
            for name, flags in variants.items()}
    records = {}
    for name, future in runs.items():
        process = future.result()
        assert process.returncode == 0, process.stderr
        [records[name]] = bench_records(process.stdout)
    assert [(r["model"], r["CUT_mode"], r["no_antialias"], r["no_antialias_up"]) for r in records.values()] == [
        ("cut", "CUT", False, False), ("cut", "FastCUT", False, False), ("cut", "CUT", True, True)]
    assert all(record[key] > 0 for record in records.values() for key in NUMBERS)
    for name, plain in (("CUT", False), ("plain", True)):
        generator = define_cut_G(3, 3, 4, "resnet_6blocks", "instance", False, "xavier", 0.02, no_antialias=plain,
                                 no_antialias_up=plain)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            generator(torch.zeros(1, 3, 32, 32))
        assert records[name]["infer_flops_per_image"] == counter.get_total_flops()  # A -> B only
    assert records["CUT"]["infer_flops_per_image"] == records["fastcut"]["infer_flops_per_image"]
    # FastCUT has no identity pass: G runs on A alone, and PatchNCE once. Strided and transposed
    # convolutions work on a quarter of the pixels that the anti-aliased layers' convolutions see.
    assert records["fastcut"]["train_flops_per_iter"] < records["CUT"]["train_flops_per_iter"]
    assert records["plain"]["train_flops_per_iter"] < records["CUT"]["train_flops_per_iter"]


def test_configurations_from_lists_or_explicit_configs():
    default = configurations(parse_arguments([]))
    assert [config.label for config in default] == [
        "amp=none,channels_last=0,compile=0", "amp=none,channels_last=1,compile=0",
        "amp=bf16,channels_last=0,compile=0", "amp=bf16,channels_last=1,compile=0"]
    explicit = configurations(parse_arguments(["--config", "amp=bf16,compile=1", "--config", "channels_last=1",
                                               "--config", "amp=bf16,compile=1"]))
    assert explicit == [Config("bf16", False, True), Config("none", True, False)]
    assert len(configurations(parse_arguments(["--amp", "none", "--compile", "0", "1"]))) == 4


@pytest.mark.parametrize("argv", [["--config", "amp=bf17"], ["--config", "compile=yes"], ["--config", "speed=1"],
                                  ["--config", "amp=bf16", "--amp", "none"], ["--iters", "0"],
                                  ["--CUT_mode", "FastCUT"], ["--no_antialias"], ["--no_antialias_up"]])
def test_bad_benchmark_flags_are_user_errors(argv):
    with pytest.raises(UserError):
        configurations(parse_arguments(argv))


def test_two_processes_report_per_process_rates_and_efficiency_once(tiny_run, tmp_path):
    _, single_records, single_json = tiny_run
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(REPO_ROOT / "scripts" / "benchmark.py"), *TINY, "--config", "amp=none",
               "--config", "amp=none,channels_last=1", "--config", "amp=fp16", "--baseline", str(single_json)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr[-4000:]
    records = bench_records(process.stdout)
    assert [record["config"] for record in records] == [  # once: rank 0 alone prints
        "amp=none,channels_last=0,compile=0", "amp=none,channels_last=1,compile=0"]
    assert process.stdout.count("under torchrun only training is timed") == 1
    assert process.stdout.count("note: skipping amp=fp16") == 1  # every rank skips it, rank 0 alone says so
    baselines = {record["config"]: record["train_img_s"] for record in single_records}
    for record in records:
        assert record["world_size"] == 2 and record["backend"] == "gloo"
        assert len(record["per_rank_img_s"]) == 2 and all(rate > 0 for rate in record["per_rank_img_s"])
        assert all(len(rounds) == 2 for rounds in record["per_rank_img_s_rounds"])
        assert record["total_img_s"] == pytest.approx(sum(record["per_rank_img_s"]))
        assert record["baseline_img_s"] == baselines[record["config"]]
        assert record["efficiency"] > 0
        assert record["efficiency"] == pytest.approx(record["total_img_s"] / (2 * record["baseline_img_s"]))
        assert record["config"] in process.stdout.split("BENCH ")[0]


def test_baselines_match_the_workload_of_single_process_lines(tmp_path):
    workload = {"config": "amp=none,channels_last=0,compile=0", "model": "cycle_gan", "netG": "resnet_6blocks",
                "ngf": 4, "ndf": 4, "crop_size": 32, "batch_size": 1, "device": "cpu"}
    lines = [dict(workload, train_img_s=1.0), dict(workload, train_img_s=2.0),  # the later line wins
             dict(workload, crop_size=64, train_img_s=3.0),
             dict(workload, world_size=2, total_img_s=9.0, train_img_s=9.0)]  # a torchrun line is no baseline
    path = tmp_path / "single.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    baselines = scaling.read_baselines(path)
    assert baselines == {scaling.workload(workload): 2.0, scaling.workload(dict(workload, crop_size=64)): 3.0}
    path.write_text("not json\n")
    with pytest.raises(UserError):
        scaling.read_baselines(path)
    with pytest.raises(UserError):
        scaling.read_baselines(tmp_path / "missing.jsonl")


def test_baseline_without_torchrun_is_a_user_error(tiny_run, tmp_path):
    _, _, single_json = tiny_run
    process = run_script("scripts/benchmark.py", *TINY, "--config", "amp=none", "--baseline", single_json,
                         cwd=tmp_path, timeout=120)
    assert process.returncode == 2 and "--baseline" in process.stderr and "Traceback" not in process.stderr


def test_testpy_speed_times_whole_test_runs_and_compares_their_pictures(tmp_path):
    work = tmp_path / "work"
    process = run_script("scripts/benchmarks/testpy_speed.py", "--images", "3", "--size", "32", "--netG",
                         "resnet_6blocks", "--ngf", "4", "--rounds", "1", "--threads", "1", "--workdir", work,
                         "--configs", "serial=--num_threads 0", "bf16=--amp bf16 --batch_size 2", cwd=tmp_path,
                         timeout=600)
    assert process.returncode == 0, process.stderr
    records = bench_records(process.stdout)
    assert [(r["config"], r["code"]) for r in records] == [("serial", "now"), ("bf16", "now")]
    for record in records:
        assert len(record["wall_s_rounds"]) == 1 and record["cpu_s"] > 0 and record["threads"] == 1
        assert record["img_s"] == pytest.approx(3 / record["wall_s"])
        assert (record["images"], record["size"], record["netG"], record["ngf"]) == (3, 32, "resnet_6blocks", 4)
    assert records[0]["speedup_vs_first"] == 1.0
    assert records[0]["max_level_difference"] == 0 < records[1]["max_level_difference"]  # bf16 rounds differently
    assert len(list((work / "photos").glob("*.jpg"))) == 3 and "img/s" in process.stdout.split("BENCH ")[0]


def test_testpy_speed_exports_an_earlier_revision_and_refuses_unknown_ones(tmp_path):
    from scripts.benchmarks import whole_runs
    whole_runs.export_revision("HEAD", str(tmp_path / "head"))
    assert (tmp_path / "head" / "test.py").is_file() and (tmp_path / "head" / "engine").is_dir()
    with pytest.raises(UserError, match="--before no-such-revision: git archive failed"):
        whole_runs.export_revision("no-such-revision", str(tmp_path / "none"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_testpy_speed_on_cuda_without_cuda_is_one_error_line(capsys):
    from scripts.benchmarks import testpy_speed
    with pytest.raises(SystemExit) as exit_info:
        testpy_speed.main(["--device", "cuda"])
    assert exit_info.value.code == 2 and "error: --device cuda: CUDA is not available here" in capsys.readouterr().err


def test_train_memory_reports_the_peak_memory_of_whole_training_runs(tmp_path):
    work = tmp_path / "work"
    process = run_script("scripts/benchmarks/train_memory.py", "--images", "2", "--load_size", "36", "--crop_size",
                         "32", "--ngf", "4", "--ndf", "4", "--workdir", work, "--before", "HEAD", "--configs", "fp32=",
                         "eval=--eval_freq 1 --metrics psnr", cwd=tmp_path, timeout=600)
    assert process.returncode == 0, process.stderr
    records = bench_records(process.stdout)
    # Each code version trains its own run (the second would otherwise be refused: the run exists).
    assert sorted((record["config"], record["code"]) for record in records) == [
        ("eval", "HEAD"), ("eval", "now"), ("fp32", "HEAD"), ("fp32", "now")]
    for record in records:
        # train.py and its two loader workers (one per core at most; more with the evaluation's loader).
        assert record["main_peak_rss_bytes"] > 100 * 2 ** 20 and record["tree_peak_pss_bytes"] > 0
        assert record["processes"] >= 2 and record["main_vs_original"] == pytest.approx(
            record["main_peak_rss_bytes"] / 2 ** 30 / 4.14)
    assert (work / "checkpoints" / "eval-now" / "bench" / "best_score.json").is_file()  # the evaluation ran
    assert "main GiB" in process.stdout.split("BENCH ")[0]


def test_train_memory_names_the_failing_run_in_one_line(tmp_path):
    process = run_script("scripts/benchmarks/train_memory.py", "--images", "1", "--load_size", "36", "--crop_size",
                         "32", "--ngf", "4", "--ndf", "4", "--workdir", tmp_path / "work", "--configs",
                         "bad=--netG no_such_net", cwd=tmp_path, timeout=300)
    assert process.returncode == 2 and "train.py of configuration bad failed: " in process.stderr and "Traceback" not in process.stderr


def test_train_speed_times_iterations_as_the_difference_of_two_whole_training_runs(tmp_path):
    work = tmp_path / "work"
    process = run_script("scripts/benchmarks/train_speed.py", "--short", "1", "--long", "3", "--load_size", "36",
                         "--crop_size", "32", "--ngf", "4", "--ndf", "4", "--threads", "1", "--peak", "--rounds",
                         "2", "--workdir", work, "--configs", "fp32=", "bf16=--amp bf16", cwd=tmp_path, timeout=600)
    assert process.returncode == 0, process.stderr
    records = bench_records(process.stdout)
    assert [record["config"] for record in records] == ["fp32", "bf16"]
    for record in records:
        walls = record["wall_s"]
        per_round = [(long - short) / 2 for short, long in zip(walls["short"], walls["long"])]
        assert len(per_round) == 2 and record["seconds_per_iteration_rounds"] == pytest.approx(per_round)
        assert record["seconds_per_iteration"] == pytest.approx(sum(per_round) / 2)  # the median of two
        assert record["iterations_per_second"] == pytest.approx(1 / record["seconds_per_iteration"])
        assert record["train_flops"] > 0 and record["bf16_peak_flops"] > 0 and record["threads"] == 1
        assert record["share_of_bf16_peak"] == pytest.approx(
            record["train_flops"] / record["seconds_per_iteration"] / record["bf16_peak_flops"])
        for run, images in (("warmup", 1), ("short1", 1), ("long1", 3), ("short2", 1), ("long2", 3)):
            log = (work / f"{record['config']}-{run}.log").read_text()  # train.py prints its options
            assert re.search(rf"max_dataset_size: {images}(\.0)?\s", log)
    assert not list((work / "checkpoints").iterdir())  # each run's checkpoints are removed after it
    assert "of bf16 peak" in process.stdout.split("BENCH ")[0]


@pytest.mark.parametrize("arguments, message", [
    (["--short", "3", "--long", "3"], "--short 3 is not below --long 3"),
    (["--short", "1", "--long", "2", "--configs", "bad=--netG no_such_net"],
     "train.py of configuration bad (warmup run) failed: "),
])
def test_train_speed_refuses_what_it_cannot_time_in_one_line(tmp_path, arguments, message):
    process = run_script("scripts/benchmarks/train_speed.py", "--load_size", "36", "--crop_size", "32", "--ngf", "4",
                         "--ndf", "4", "--workdir", tmp_path / "work", *arguments, cwd=tmp_path, timeout=300)
    assert process.returncode == 2 and message in process.stderr and "Traceback" not in process.stderr


def test_sincut_with_its_own_sizes_and_the_r1_penalty_counted(tmp_path):
    # The sizes not given are sincut's (ngf 10, ndf 8); its R1 penalty takes an input gradient inside the
    # FLOP count, which FlopCounterMode's module tracking cannot follow (scripts/benchmarks/flops.py).
    process = run_script("scripts/benchmark.py", "--model", "sincut", "--crop_size", "16", "--batch_size", "2",
                         "--config", "amp=none", "--warmup", "1", "--iters", "1", "--rounds", "1",
                         "--inference_iters", "1", "--device", "cpu", cwd=tmp_path, timeout=120)
    assert process.returncode == 0, process.stderr
    [record] = bench_records(process.stdout)
    assert (record["model"], record["netG"], record["ngf"], record["ndf"], record["crop_size"], record["batch_size"]) \
        == ("sincut", "stylegan2", 10, 8, 16, 2)
    assert all(record[key] > 0 for key in NUMBERS)
