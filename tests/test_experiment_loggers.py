"""Tests of the optional TensorBoard and W&B trackers: what they write, resuming, lazy imports, errors."""
import io
import json
import struct
import subprocess
import sys
from argparse import Namespace

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT
from engine.experiment_loggers import ExperimentLoggers
from util.errors import UserError

WANDB_BLOCK_SIZE = 32768  # .wandb files are LevelDB-style logs: 32 KiB blocks of framed records
WANDB_FILE_HEADER_SIZE = 7  # ":W&B", a 2-byte magic number, a 1-byte version
WANDB_CHUNK_HEADER = struct.Struct("<IHB")  # checksum, length, kind
WANDB_CHUNK_ENDS_RECORD = (1, 4)  # FULL, LAST


def make_options(checkpoints_dir, tensorboard=False, wandb=False, continue_train=False):
    """Training options as the lead's parser will hand them over, plus a few the W&B config must skip."""
    return Namespace(name="exp", checkpoints_dir=str(checkpoints_dir), use_tensorboard=tensorboard,
                     use_wandb=wandb, wandb_project="CycleGAN-and-pix2pix", continue_train=continue_train,
                     lr=0.0002, gpu_ids=[0], max_dataset_size=float("inf"), isTrain=True,
                     parser_object=object())


def picture(height=32, width=48, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def read_png(data_or_path):
    source = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path
    return np.asarray(Image.open(source).convert("RGB"))


def tensorboard_events(log_dir):
    from tensorboard.backend.event_processing import event_accumulator
    accumulator = event_accumulator.EventAccumulator(
        str(log_dir), size_guidance={event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0})
    return accumulator.Reload()


def test_tensorboard_writes_scalars_and_images(tmp_path):
    fake_b = picture()
    with ExperimentLoggers(make_options(tmp_path, tensorboard=True)) as loggers:
        loggers.log_scalars({"loss/G_A": 0.5, "metrics/fid fake_B vs real_B": 120.0}, step=10)
        loggers.log_scalars({"loss/G_A": 0.25}, step=20)
        loggers.log_images({"fake_B": fake_b}, step=20)

    events = tensorboard_events(tmp_path / "exp" / "tensorboard")
    assert set(events.Tags()["scalars"]) == {"loss/G_A", "metrics/fid fake_B vs real_B"}
    assert [(e.step, e.value) for e in events.Scalars("loss/G_A")] == [(10, 0.5), (20, 0.25)]
    assert [(e.step, e.value) for e in events.Scalars("metrics/fid fake_B vs real_B")] == [(10, 120.0)]
    (image,) = events.Images("fake_B")
    assert (image.step, image.width, image.height) == (20, 48, 32)
    np.testing.assert_array_equal(read_png(image.encoded_image_string), fake_b)


def test_tensorboard_resumed_run_replaces_replayed_steps(tmp_path):
    with ExperimentLoggers(make_options(tmp_path, tensorboard=True)) as first:
        for step in (10, 20, 30):
            first.log_scalars({"loss/G_A": float(step)}, step)
    # resumed from a checkpoint taken at 15 images: the old points at 20 and 30 were never kept
    with ExperimentLoggers(make_options(tmp_path, tensorboard=True, continue_train=True)) as resumed:
        for step in (20, 40):
            resumed.log_scalars({"loss/G_A": -float(step)}, step)

    events = tensorboard_events(tmp_path / "exp" / "tensorboard")
    assert [(e.step, e.value) for e in events.Scalars("loss/G_A")] == [(10, 10.0), (20, -20.0), (40, -40.0)]


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    """W&B in offline mode with its home and settings inside tmp_path; a fresh wandb singleton."""
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "home" / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "home" / "wandb-cache"))
    monkeypatch.delenv("WANDB_DIR", raising=False)  # our dir= argument decides where runs go
    wandb.teardown()  # the singleton reads the environment once; start it from ours
    yield wandb
    wandb.teardown()


def wandb_records(path):
    """Every record of a .wandb file, parsed (wandb 0.31 has no public reader for offline runs)."""
    from wandb.proto import wandb_internal_pb2
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, pending = WANDB_FILE_HEADER_SIZE, b""
    while position + WANDB_CHUNK_HEADER.size <= len(data):
        block_left = WANDB_BLOCK_SIZE - position % WANDB_BLOCK_SIZE
        if block_left < WANDB_CHUNK_HEADER.size:  # a block's tail too short for a header is padding
            position += block_left
            continue
        _, length, kind = WANDB_CHUNK_HEADER.unpack_from(data, position)
        position += WANDB_CHUNK_HEADER.size
        pending += data[position:position + length]
        position += length
        if kind in WANDB_CHUNK_ENDS_RECORD:
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def wandb_history_and_config(run_file):
    """The rows passed to run.log (user keys only, JSON-decoded) and the run's config."""
    history, config = [], {}
    for record in wandb_records(run_file):
        if record.HasField("history"):
            row = {}
            for item in record.history.item:
                *parents, leaf = list(item.nested_key) or [item.key]  # an image is a nested dict
                if not parents and leaf.startswith("_"):
                    continue  # W&B's own _step, _runtime, _timestamp
                target = row
                for parent in parents:
                    target = target.setdefault(parent, {})
                target[leaf] = json.loads(item.value_json)
            history.append(row)
        elif record.HasField("run"):
            config.update({item.key: json.loads(item.value_json) for item in record.run.config.update})
    return history, config


def test_wandb_offline_run_records_values_and_resumes_by_id(tmp_path, offline_wandb):
    run_dir = tmp_path / "exp"
    fake_b = picture(seed=1)
    with ExperimentLoggers(make_options(tmp_path, wandb=True)) as loggers:
        loggers.log_scalars({"loss/G_A": 0.5, "loss/D_A": 0.125}, step=10)
        loggers.log_scalars({"loss/G_A": 0.25, "loss/D_A": 0.0625}, step=20)
        loggers.log_images({"fake_B": fake_b}, step=20)
    offline_wandb.teardown()  # run.finish() may return before W&B's service has written the file

    run_id = (run_dir / "wandb_run_id.txt").read_text().strip()
    (run_file,) = (run_dir / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")
    history, config = wandb_history_and_config(run_file)
    scalars = [row for row in history if "loss/G_A" in row]
    assert scalars == [{"loss/G_A": 0.5, "loss/D_A": 0.125, "images_seen": 10},
                       {"loss/G_A": 0.25, "loss/D_A": 0.0625, "images_seen": 20}]
    (image_row,) = [row for row in history if "fake_B" in row]
    assert image_row["images_seen"] == 20
    assert (image_row["fake_B"]["width"], image_row["fake_B"]["height"]) == (48, 32)
    np.testing.assert_array_equal(read_png(run_file.parent / "files" / image_row["fake_B"]["path"]), fake_b)
    assert config["name"] == "exp" and config["gpu_ids"] == [0]
    assert config["lr"] == 0.0002
    assert "max_dataset_size" not in config and "parser_object" not in config  # not JSON-safe

    with ExperimentLoggers(make_options(tmp_path, wandb=True, continue_train=True)) as resumed:
        assert resumed._backends[0].run.id == run_id
    assert (run_dir / "wandb_run_id.txt").read_text().strip() == run_id

    with ExperimentLoggers(make_options(tmp_path, wandb=True)) as fresh:
        fresh_id = fresh._backends[0].run.id
    assert fresh_id != run_id
    assert (run_dir / "wandb_run_id.txt").read_text().strip() == fresh_id


def test_wandb_without_login_is_a_user_error(tmp_path, offline_wandb, monkeypatch):
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "home" / ".netrc"))
    offline_wandb.teardown()
    with pytest.raises(UserError, match=r"^W&B could not start \(.*API key.*\); run `wandb login`, "
                                        r"or set WANDB_MODE=offline to log locally$"):
        ExperimentLoggers(make_options(tmp_path, wandb=True))


def test_a_failing_tracker_costs_one_warning_and_is_switched_off(tmp_path, caplog):
    loggers = ExperimentLoggers(make_options(tmp_path, tensorboard=True))
    loggers.log_scalars({"loss/G_A": 0.5}, step=1)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    loggers._backends[0].writer.add_scalar = disk_full
    from util.log import logger
    logger.addHandler(caplog.handler)
    try:
        loggers.log_scalars({"loss/G_A": 0.25}, step=2)
        loggers.log_scalars({"loss/G_A": 0.125}, step=3)
    finally:
        logger.removeHandler(caplog.handler)
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 1 and "TensorBoard logging failed" in warnings[0]
    assert "No space left on device" in warnings[0] and "off for the rest of this run" in warnings[0]
    assert not loggers.enabled
    loggers.close()


LAZY_IMPORT_PROGRAM = """
import json, sys
from argparse import Namespace
import numpy as np
from engine.experiment_loggers import ExperimentLoggers
opt = Namespace(name="exp", checkpoints_dir=sys.argv[1], use_tensorboard=False, use_wandb=False,
                wandb_project="CycleGAN-and-pix2pix", continue_train=False)
with ExperimentLoggers(opt) as loggers:
    loggers.log_scalars({"loss/G_A": 0.5}, 10)
    loggers.log_images({"fake_B": np.zeros((8, 8, 3), np.uint8)}, 10)
print(json.dumps({"loaded": [name for name in ("wandb", "tensorboard", "torch.utils.tensorboard")
                             if name in sys.modules], "enabled": loggers.enabled}))
"""


def test_without_flags_nothing_is_imported_or_written(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    done = subprocess.run([sys.executable, "-c", LAZY_IMPORT_PROGRAM, str(checkpoints)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"loaded": [], "enabled": False}
    assert not checkpoints.exists()


@pytest.mark.parametrize("flags, hidden_module, message", [
    ({"tensorboard": True}, "torch.utils.tensorboard",
     "--use_tensorboard needs the tensorboard package: pip install tensorboard==2.21.0"),
    ({"wandb": True}, "wandb", "--use_wandb needs the wandb package: pip install wandb==0.31.0"),
])
def test_missing_package_is_a_user_error(tmp_path, monkeypatch, flags, hidden_module, message):
    monkeypatch.setitem(sys.modules, hidden_module, None)  # makes `import` fail as if not installed
    with pytest.raises(UserError) as raised:
        ExperimentLoggers(make_options(tmp_path, **flags))
    assert str(raised.value) == message


def test_train_py_sends_losses_metrics_and_pictures_to_both_trackers(tmp_path, unaligned_root, offline_wandb):
    from conftest import run_script
    result = run_script("train.py", "--dataroot", unaligned_root, "--name", "tracked", "--checkpoints_dir",
                        tmp_path / "ck", "--load_size", "36", "--crop_size", "32", "--ngf", "8", "--ndf", "8",
                        "--num_threads", "0", "--gpu_ids", "-1", "--display_id", "0", "--n_epochs", "2",
                        "--n_epochs_decay", "0", "--print_freq", "2", "--eval_freq", "1", "--metrics", "kid",
                        "--use_tensorboard", "--use_wandb", "--wandb_project", "my_project", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "ck" / "tracked"
    records = [json.loads(line) for line in (run_dir / "loss_log.jsonl").read_text().splitlines()]
    evaluations = [record for record in records if record.get("kind") == "evaluation"]
    expected = {record["total_iters"]: record["metrics"]["kid"]["fake_B vs real_B"] for record in evaluations}
    assert sorted(expected) == [4, 8]

    events = tensorboard_events(run_dir / "tensorboard")
    assert {"loss/G_A", "loss/D_B", "metrics/kid fake_B vs real_B"} <= set(events.Tags()["scalars"])
    logged = {event.step: event.value for event in events.Scalars("metrics/kid fake_B vs real_B")}
    assert logged == pytest.approx(expected)
    assert {"real_A", "fake_B"} <= set(events.Tags()["images"])

    run_id = (run_dir / "wandb_run_id.txt").read_text().strip()
    (run_file,) = (run_dir / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")
    history, config = wandb_history_and_config(run_file)
    metric_rows = {row["images_seen"]: row["metrics/kid fake_B vs real_B"]
                   for row in history if "metrics/kid fake_B vs real_B" in row}
    assert metric_rows == pytest.approx(expected)
    assert any("loss/G_A" in row for row in history) and any("fake_B" in row for row in history)
    assert config["eval_freq"] == 1 and config["name"] == "tracked"
    run_records = [record.run for record in wandb_records(run_file) if record.HasField("run")]
    assert {run.project for run in run_records} == {"my_project"}
    assert {run.display_name for run in run_records} == {"tracked"}
