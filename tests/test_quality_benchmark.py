"""scripts/quality_benchmark.py: on a tiny task it writes the table, the JSON file and the picture with
sane numbers (the do-nothing baseline is the metrics package's own PSNR of input vs truth); a
--seconds budget stops training by the clock; every mistake in its options is one error line."""
import json
import math
import re

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT, entry_point, run_script
from engine.metric_collector import to_unit_tensor
from metrics.registry import METRICS

TINY_NETS = "--ngf 8 --ndf 8 --netG resnet_6blocks --num_threads 0"
TINY = ["--tasks", "warm", "--size", "32", "--n_train", "4", "--n_test", "3", "--show", "2"]


benchmark = entry_point("scripts/quality_benchmark.py")  # it puts scripts/ and datasets/ on the path
from quality_bench import report, runs, tasks  # noqa: E402  (importable once the script has set the path)


def pictures(folder):
    return {path.name: np.array(Image.open(path).convert("RGB")) for path in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Two configurations trained for 4 images on a 32 px warm-tone task: (process, out folder, JSON)."""
    out = tmp_path_factory.mktemp("qbench") / "out"
    process = run_script("scripts/quality_benchmark.py", *TINY, "--iters", "4", "--out", out, "--configs",
                         f"small={TINY_NETS}", f"vanilla={TINY_NETS} --gan_mode vanilla", cwd=out.parent)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    return process, out, json.loads((out / "quality_benchmark.json").read_text())


def test_task_truth_is_the_transform_of_each_test_input_under_the_same_name(tiny_run):
    _, out, _ = tiny_run
    inputs, truths = pictures(out / "tasks" / "warm" / "testA"), pictures(out / "tasks" / "warm" / "testB")
    assert len(inputs) == 3 and inputs.keys() == truths.keys()
    for name, picture in inputs.items():
        assert np.array_equal(np.asarray(tasks.warm_tone(Image.fromarray(picture))), truths[name])
    assert len(list((out / "tasks" / "warm" / "trainB").iterdir())) == 4


def test_baseline_is_the_metrics_package_score_of_input_vs_truth(tiny_run):
    _, out, result = tiny_run
    baseline = result["rows"][0]
    assert baseline["config"] == report.BASELINE and baseline["baseline"]
    inputs, truths = pictures(out / "tasks" / "warm" / "testA"), pictures(out / "tasks" / "warm" / "testB")
    real, fake = to_unit_tensor(list(truths.values())), to_unit_tensor(list(inputs.values()))
    assert baseline["psnr"] == pytest.approx(np.mean(METRICS["psnr"].function(real, fake)), rel=1e-12)
    assert baseline["ssim"] == pytest.approx(np.mean(METRICS["ssim"].function(real, fake)), rel=1e-12)
    assert 15 < baseline["psnr"] < 40 and 0.5 < baseline["ssim"] <= 1 and baseline["fid"] >= 0


def test_each_configuration_is_trained_tested_and_scored(tiny_run):
    _, out, result = tiny_run
    assert result["settings"]["budget"] == {"iters": 4} and result["settings"]["size"] == 32
    rows = result["rows"][1:]
    assert [row["config"] for row in rows] == ["small", "vanilla"]
    for row in rows:
        assert row["status"] == "ok" and row["images"] == 4 and row["seconds_per_iter"] > 0
        assert 0 < row["psnr"] < 100 and -1 <= row["ssim"] <= 1 and row["fid"] >= 0 and math.isfinite(row["kid"])
        assert row["psnr_gain"] == pytest.approx(row["psnr"] - result["rows"][0]["psnr"])
        assert row["metrics"]["psnr"]["fake_B vs real_B"] == row["psnr"]  # from test.py's metrics.json
        options = (out / "checkpoints" / row["name"] / "train_opt.txt").read_text()
        assert ("gan_mode: vanilla" in options) == (row["config"] == "vanilla")
        assert not list((out / "checkpoints" / row["name"]).glob("*.pth"))  # weights removed after testing


def test_table_is_printed_and_saved(tiny_run):
    process, out, result = tiny_run
    table = (out / "quality_benchmark.md").read_text()
    assert table in process.stdout
    lines = table.splitlines()
    assert lines[0].startswith("| task | configuration | PSNR dB |") and len(lines) == 2 + 3
    assert lines[2].startswith(f"| warm | {report.BASELINE} | {result['rows'][0]['psnr']:.2f} |")
    assert lines[3].startswith(f"| warm | small | {result['rows'][1]['psnr']:.2f} | {result['rows'][1]['psnr_gain']:+.2f} |")


def test_picture_shows_input_truth_and_outputs_side_by_side(tiny_run):
    _, out, result = tiny_run
    canvas = np.array(Image.open(out / "warm.png").convert("RGB"))
    columns, shown = 4, 32 * 4  # input, truth, two configurations; 32 px enlarged 4 times
    assert canvas.shape[0] == report.HEADER + 2 * (shown + report.PAD) and canvas.shape[1] % columns == 0
    width = canvas.shape[1] // columns
    folder = result["rows"][2]["images_folder"]
    expected = {0: out / "tasks" / "warm" / "testA" / "0001.png", 1: out / "tasks" / "warm" / "testB" / "0001.png",
                3: f"{folder}/0001_fake_B.png"}
    top = report.HEADER + shown + report.PAD  # the second test image's row
    for column, path in expected.items():
        left = column * width + (width - shown) // 2
        enlarged = np.array(Image.open(path).convert("RGB").resize((shown, shown), Image.NEAREST))
        assert np.array_equal(canvas[top:top + shown, left:left + shown], enlarged), column


def test_fastcut_is_scored_on_its_a_to_b_outputs_at_the_benchmarks_schedule(tmp_path):
    # (CUT, and a budget of --seconds: test_seconds_budget_and_a_failing_run.)
    out = tmp_path / "out"
    process = run_script("scripts/quality_benchmark.py", *TINY, "--iters", "3", "--out", out, "--configs",
                         f"fastcut={TINY_NETS} --model cut --CUT_mode FastCUT --netF_nc 8", cwd=tmp_path)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    row = json.loads((out / "quality_benchmark.json").read_text())["rows"][1]
    assert row["config"] == "fastcut" and row["status"] == "ok" and row["images"] == 3 and 0 < row["psnr"] < 100
    assert list(row["metrics"]["psnr"]) == ["fake_B vs real_B"]
    assert (out / "results" / row["name"] / "test_latest" / "images" / "0001_fake_B.png").is_file()
    options = (out / "checkpoints" / row["name"] / "train_opt.txt").read_text()
    # The benchmark's schedule (3 images: 1 epoch of 3), not FastCUT's default 150 + 50 epochs.
    for line in ("model: cut", "CUT_mode: FastCUT", "n_epochs: 1 ", "n_epochs_decay: 0 "):
        assert re.search(rf"^\s*{line}", options, re.MULTILINE), line
    assert "| warm | fastcut |" in process.stdout


def test_seconds_budget_and_a_failing_run(tmp_path):
    """--seconds: train.py is stopped with SIGTERM (it saves) that long after its first iteration;
    configurations come from a JSON file; --keep_checkpoints keeps the weights test.py used. A
    configuration train.py refuses (a crop too small for its discriminator) becomes a 'failed' row
    with train.py's error line, the others go on, and the benchmark ends with status 1. FastCUT is
    CUT is stopped by the clock too."""
    config_file = tmp_path / "configs.json"
    config_file.write_text(json.dumps({"small": TINY_NETS, "bad": f"{TINY_NETS} --netD n_layers --n_layers_D 4",
                                       "cut": f"{TINY_NETS} --model cut --netF_nc 8"}))
    out = tmp_path / "out"
    process = run_script("scripts/quality_benchmark.py", *TINY, "--seconds", "2", "--configs", config_file,
                         "--keep_checkpoints", "--out", out, cwd=tmp_path)
    assert process.returncode == 1, process.stdout[-3000:] + process.stderr[-3000:]
    assert process.stderr.strip().splitlines()[-1].startswith("error: 1 run(s) failed: warm-bad")
    result = json.loads((out / "quality_benchmark.json").read_text())
    small, bad, cut = result["rows"][1:]
    assert result["settings"]["budget"] == {"seconds": 2.0} and small["status"] == "ok" and small["images"] >= 1
    assert cut["status"] == "ok" and cut["images"] >= 1 and cut["psnr"] > 0
    for name in ("small", "cut"):
        assert "stopped by SIGTERM" in (out / "logs" / f"warm-{name}_train.log").read_text()
    assert (out / "checkpoints" / "warm-small" / "latest_net_G_A.pth").is_file()
    assert bad["status"] == "failed" and bad["error"].startswith("train.py: error: --crop_size 32 is too small")
    assert "| warm | bad | failed |" in process.stdout and (out / "warm.png").is_file()


def test_schedule_covers_the_budget_in_equal_epochs_half_constant_half_decaying():
    args = benchmark.parse_args(["--iters", "1500", "--n_train", "200"])
    flags = runs.schedule_flags(args)
    value = {flag: int(flags[flags.index(flag) + 1]) for flag in ("--n_epochs", "--n_epochs_decay",
                                                                    "--max_dataset_size", "--save_epoch_freq")}
    assert value == {"--n_epochs": 4, "--n_epochs_decay": 4, "--max_dataset_size": 188, "--save_epoch_freq": 8}
    assert "--max_dataset_size" not in runs.schedule_flags(benchmark.parse_args(["--seconds", "60"]))


def test_training_clock_counts_images_across_epochs_and_times_the_steps():
    clock = runs.TrainingClock()
    lines = ["(epoch: 1, iters: 1, time: 0.1, data: 0.0) D_A: 1", "noise", "(epoch: 1, iters: 2, time: 0.1, data: 0.0)",
             "(epoch: 2, iters: 1, time: 0.1, data: 0.0)", "(epoch: 2, iters: 2, time: 0.1, data: 0.0)"]
    read = [clock.read(line, now) for now, line in enumerate(lines)]
    assert read == [True, False, True, True, True]
    assert clock.images == 4 and clock.seconds_per_iter() == pytest.approx((4 - 0) / 3)


def test_overwrite_replaces_only_the_benchmarks_own_outputs(tmp_path):
    for name in ("tasks", "logs"):
        (tmp_path / name).mkdir()
    (tmp_path / "quality_benchmark.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("mine")
    benchmark.prepare_out(str(tmp_path), overwrite=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


def write_bad_json(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    return [str(tmp_path / "bad.json")]


def write_list_json(tmp_path):
    (tmp_path / "list.json").write_text('["--ngf 8"]')
    return [str(tmp_path / "list.json")]


def earlier_benchmark(tmp_path):
    (tmp_path / "quality_benchmark.json").write_text("{}")
    return ["default="]


def file_in_the_way(tmp_path):
    (tmp_path / "file").write_text("")
    return ["default="]


# (what is wrong, --configs entries (or a function of tmp_path giving them), other options, start of the message)
BAD_INPUTS = [
    ("entry without =", ["resize"], [], "--configs entry 'resize' has no '='"),
    ("name used twice", ["a=", "a=--ngf 8"], [], "--configs: the name 'a' is given twice"),
    ("name unusable in files", ["a/b=--ngf 8"], [], "--configs: the name 'a/b' cannot name files"),
    ("unknown flag", ["a=--no_such_flag 3"], [], "--configs a: train.py has no flag '--no_such_flag'"),
    ("bad choice", ["a=--netG nonsense"], [], "--configs a: train.py refuses '--netG nonsense' (argument --netG"),
    ("value out of range", ["a=--batch_size 0"], [], "--configs a: --batch_size 0 is out of range"),
    ("unclosed quote", ["a=--name 'x"], [], "--configs a: cannot split"),
    ("benchmark's own flag", ["a=--crop_size 128"], [], "--configs a: it sets --crop_size, which the benchmark sets"),
    ("benchmark's own flag, old name", ["a=--niter 3"], [], "--configs a: it sets --n_epochs"),
    ("model without unpaired A -> B", ["a=--model pix2pix"], [], "--configs a: --model pix2pix does not learn"),
    ("missing JSON file", ["missing.json"], [], "--configs 'missing.json' cannot be read"),
    ("invalid JSON", write_bad_json, [], "--configs"),
    ("JSON of the wrong shape", write_list_json, [], "--configs"),
    ("unknown task", ["a="], ["--tasks", "warm,zebra"], "--tasks: unknown task 'zebra'; choose from warm, winter, sepia"),
    ("output not writable", file_in_the_way, ["--out", "{tmp}/file/out"], "cannot write to --out"),
    ("earlier benchmark in --out", earlier_benchmark, ["--out", "{tmp}"], "--out"),
    ("budget out of range", ["a="], ["--iters", "0"], "--iters 0 is out of range; it must be an integer >= 1"),
    ("crops too small", ["a="], ["--size", "8"], "--size 8 is out of range"),
]


@pytest.mark.parametrize("entries, options, message", [case[1:] for case in BAD_INPUTS],
                         ids=[case[0] for case in BAD_INPUTS])
def test_bad_options_give_one_error_line_and_status_2(entries, options, message, tmp_path, capfd):
    entries = entries(tmp_path) if callable(entries) else entries
    options = [option.replace("{tmp}", str(tmp_path)) for option in options]
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(["--configs", *entries, *options] + ([] if "--out" in options else ["--out", str(tmp_path / "o")]))
    assert exit_info.value.code == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), lines
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_a_mistake_is_one_line_from_the_command_line_too(tmp_path):
    process = run_script("scripts/quality_benchmark.py", "--configs", "resize", cwd=tmp_path)
    assert process.returncode == 2 and "Traceback" not in process.stderr
    assert process.stderr.strip().splitlines() == ["error: --configs entry 'resize' has no '='; write each entry as "
                                                   "name=flags (e.g. default= small='--ngf 32'), or pass one .json file"]


def test_help_names_the_tasks_and_shows_configurations_with_the_new_options():
    process = run_script("scripts/quality_benchmark.py", "--help", cwd=REPO_ROOT)
    assert process.returncode == 0
    for text in ("warm:", "winter:", "sepia:", "--upsample resize", "--resblock gated", "--spectral_norm",
                 "--r1_gamma", "--diffaug", "--ema_decay", "--residual_output"):
        assert text in process.stdout, text
