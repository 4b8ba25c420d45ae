"""Tests of the visualisation layer: HTML pages, loss logs and curves, the training page, visdom."""
import json
import os
import re
import socket
import subprocess
import sys
import time
import warnings
from argparse import Namespace
from collections import OrderedDict
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO_ROOT, run_script
from engine.curve_plot import average_down, estimate_progress, plot_loss_curves
from engine.html import HTML, save_result_images
from engine.visualizer import Visualizer
from util.util import tensor2im

LABELS = ["real_A", "fake_B", "rec_A"]


class PageParser(HTMLParser):
    """Collects img sources, link targets, headers, meta tags and every start tag of a page."""

    def __init__(self):
        super().__init__()
        self.sources, self.links, self.headers, self.metas, self.tags = [], [], [], [], []
        self._in_header = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.sources.append(attrs["src"])
        elif tag == "a":
            self.links.append(attrs["href"])
        elif tag == "meta":
            self.metas.append(attrs)
        self._in_header = tag == "h3"

    def handle_data(self, data):
        if self._in_header:
            self.headers.append(data)
            self._in_header = False


def parse_page(page_path):
    parser = PageParser()
    parser.feed(Path(page_path).read_text(encoding="utf-8"))
    return parser


def assert_no_refresh(parser):
    assert not any(meta.get("http-equiv", "").lower() == "refresh" for meta in parser.metas)


def make_opt(tmp_path, **overrides):
    options = dict(name="exp", checkpoints_dir=str(tmp_path / "checkpoints"), isTrain=True,
                   display_id=0, display_server="http://127.0.0.1", display_port=8097,
                   display_env="main", display_ncols=4, display_winsize=64, no_html=False,
                   epoch_count=1, use_tensorboard=False, use_wandb=False, wandb_project="test",
                   continue_train=False)
    options.update(overrides)
    return Namespace(**options)


def make_visuals(seed, batch=2, size=32):
    generator = torch.Generator().manual_seed(seed)
    return OrderedDict((label, torch.rand(batch, 3, size, size, generator=generator) * 2 - 1)
                       for label in LABELS)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------- HTML pages


def test_results_page_with_awkward_file_names(tmp_path):
    web_dir = tmp_path / "results"
    page = HTML(web_dir, "results <b>&</b>")
    page.add_text("<script>alert(1)</script>")
    sources = ["a b.png", "x#1.png", "r&d?.png", "50%20off.png", "zebra_\u00fc\u00df.png",
               "<b>.png"]
    tensors = {}
    for index, source in enumerate(sources):
        visuals = {"real": torch.rand(1, 3, 32, 40) * 2 - 1, "fake": torch.rand(3, 32, 40) * 2 - 1}
        written = save_result_images(page, visuals, f"/data/testA/{source}", width=48)
        stem = os.path.splitext(source)[0]
        assert [Path(path).name for path in written] == [f"{stem}_real.png", f"{stem}_fake.png"]
        tensors[index] = (written, visuals)
    page.save()

    for written, visuals in tensors.values():
        for path, tensor in zip(written, visuals.values()):
            assert np.array_equal(np.asarray(Image.open(path)), tensor2im(tensor))
    parser = parse_page(web_dir / "index.html")
    assert len(parser.sources) == 2 * len(sources)
    for address in parser.sources + parser.links:
        assert (web_dir / unquote(urlsplit(address).path)).is_file(), address
    assert parser.headers == [os.path.splitext(source)[0] for source in sources]
    text = (web_dir / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;" in text and "<script>" not in text
    assert "script" not in parser.tags and "b" not in parser.tags
    assert "results &lt;b&gt;&amp;&lt;/b&gt;" in text
    assert_no_refresh(parser)


def test_results_page_aspect_ratio(tmp_path):
    page = HTML(tmp_path / "web", "ratio")
    wide, = save_result_images(page, {"fake": torch.zeros(3, 32, 32)}, "img.png", aspect_ratio=2.0)
    tall, = save_result_images(page, {"fake": torch.zeros(3, 32, 32)}, "tall.jpg", aspect_ratio=0.5)
    assert Image.open(wide).size == (64, 32)
    assert Image.open(tall).size == (32, 64)


# ---------------------------------------------------------------- loss logs and curves


def test_loss_log_lines_jsonl_and_curve(tmp_path, capfd):
    visualizer = Visualizer(make_opt(tmp_path))
    line = visualizer.print_current_losses(1, 100, {"D_A": 0.25, "G_A": 0.3014}, 0.0941, 0.0021)
    assert line == "(epoch: 1, iters: 100, time: 0.094, data: 0.002) D_A: 0.250 G_A: 0.301"
    visualizer.print_current_losses(1, 200, {"D_A": torch.tensor(0.2), "G_A": 0.5}, 0.1, 0.0,
                                    progress=1.5)
    assert capfd.readouterr().out == ""

    run_dir = tmp_path / "checkpoints" / "exp"
    log_lines = (run_dir / "loss_log.txt").read_text().splitlines()
    assert re.fullmatch(r"================ Training Loss \(.+\) ================", log_lines[0])
    assert log_lines[1] == line
    assert log_lines[2] == "(epoch: 1, iters: 200, time: 0.100, data: 0.000) D_A: 0.200 G_A: 0.500"
    records = [json.loads(text) for text in (run_dir / "loss_log.jsonl").read_text().splitlines()]
    assert records[0]["losses"] == {"D_A": 0.25, "G_A": 0.3014}
    assert records[0]["epoch"] == 1 and records[0]["iters"] == 100
    assert {"time", "data", "timestamp"} <= set(records[0])
    assert records[1]["progress"] == 1.5

    visualizer.write_web_page()
    picture = run_dir / "web" / "loss_curves.png"
    with Image.open(picture) as image:
        image.verify()
    assert Image.open(picture).format == "PNG"


def test_loss_curves_long_run_is_cheap(tmp_path):
    records = [{"epoch": 1 + step // 100, "iters": step % 100 + 1, "progress": 1 + step / 100,
                "losses": {"G_A": 1.0 / (step + 1), "D_A": 0.25}} for step in range(20000)]
    started = time.perf_counter()
    out = plot_loss_curves(records, tmp_path / "curves.png")
    assert time.perf_counter() - started < 10
    assert Image.open(out).size[0] > 100
    assert plot_loss_curves([], tmp_path / "none.png") is None


def test_average_down_and_progress_estimate():
    xs, ys = np.arange(1000, dtype=float), np.arange(1000, dtype=float) * 2
    small_x, small_y = average_down(xs, ys, 100)
    assert len(small_x) == 100
    assert small_x[0] == pytest.approx(4.5) and np.allclose(small_y, 2 * small_x)
    assert len(average_down(xs[:10], ys[:10], 100)[0]) == 10
    records = [{"epoch": 1, "iters": 50}, {"epoch": 1, "iters": 100}, {"epoch": 2, "iters": 50,
                                                                       "progress": 2.4}]
    assert estimate_progress(records) == [1.5, 2.0, 2.4]


# ---------------------------------------------------------------- training page


def test_training_page_keeps_every_epoch_newest_first(tmp_path):
    opt = make_opt(tmp_path)
    visualizer = Visualizer(opt)
    first, later = make_visuals(1), make_visuals(2)
    visualizer.reset()
    visualizer.print_current_losses(1, 2, {"G_A": 0.5, "D_A": 0.2}, 0.1, 0.0, progress=1.5)
    visualizer.display_current_results(first, 1, True)
    visualizer.display_current_results(later, 1, True)  # already saved this epoch: ignored
    visualizer.reset()
    visualizer.print_current_losses(2, 2, {"G_A": 0.4, "D_A": 0.2}, 0.1, 0.0, progress=2.5)
    visualizer.display_current_results(later, 2, False)  # not a save step
    visualizer.display_current_results(later, 2, True)

    web_dir = tmp_path / "checkpoints" / "exp" / "web"
    for label in LABELS:
        saved = np.asarray(Image.open(web_dir / "images" / f"epoch001_{label}.png"))
        assert np.array_equal(saved, tensor2im(first[label]))
        assert (web_dir / "images" / f"epoch002_{label}.png").is_file()
    parser = parse_page(web_dir / "index.html")
    assert_no_refresh(parser)
    assert parser.headers == ["epoch [2]", "epoch [1]"]
    expected = ["loss_curves.png"] + [f"images/epoch{epoch:03d}_{label}.png"
                                      for epoch in (2, 1) for label in LABELS]
    assert parser.sources == expected
    assert all((web_dir / unquote(urlsplit(source).path)).is_file() for source in parser.sources)

    # --continue_train: a new run in the same folder keeps the earlier epochs on the page.
    resumed = Visualizer(opt)
    resumed.display_current_results(first, 3, True)
    assert parse_page(web_dir / "index.html").headers == ["epoch [3]", "epoch [2]", "epoch [1]"]
    log_text = (tmp_path / "checkpoints" / "exp" / "loss_log.txt").read_text()
    assert log_text.count("================ Training Loss") == 2


def test_no_html_writes_no_page(tmp_path):
    visualizer = Visualizer(make_opt(tmp_path, no_html=True))
    visualizer.print_current_losses(1, 10, {"G_A": 0.5}, 0.1, 0.0)
    visualizer.display_current_results(make_visuals(1), 1, True)
    visualizer.write_web_page()
    assert not (tmp_path / "checkpoints" / "exp" / "web").exists()


def test_visdom_and_loggers_not_imported_unless_asked():
    code = ("import sys, tempfile, argparse; from engine.visualizer import Visualizer; "
            "opt = argparse.Namespace(name='e', checkpoints_dir=tempfile.mkdtemp(), isTrain=True, "
            "display_id=0, display_server='http://localhost', display_port=8097, "
            "display_env='main', display_ncols=4, display_winsize=64, use_tensorboard=False, use_wandb=False, "
            "wandb_project='p', continue_train=False); Visualizer(opt); "
            "print(any(m in sys.modules for m in ('visdom', 'wandb', 'tensorboard', 'torch.utils.tensorboard')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


# ---------------------------------------------------------------- visdom


def test_visdom_without_server_warns_once_and_carries_on(tmp_path, capfd):
    port = free_port()
    visualizer = Visualizer(make_opt(tmp_path, display_id=1, display_port=port))
    captured = capfd.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.strip()]
    assert lines == [f'warning: visdom: no server at http://127.0.0.1:{port}; start one with '
                     '"python -m visdom.server" or pass --display_id 0; continuing without visdom']
    visualizer.display_current_results(make_visuals(1), 1, True)
    visualizer.plot_current_losses(1, 0.5, {"G_A": 0.5})
    visualizer.print_current_losses(1, 10, {"G_A": 0.5}, 0.1, 0.0)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
    assert (tmp_path / "checkpoints" / "exp" / "web" / "images" / "epoch001_fake_B.png").is_file()


@pytest.fixture
def visdom_server(tmp_path):
    """A real visdom server on a free loopback port; yields (port, process), killed at the end."""
    port = free_port()
    log = open(tmp_path / "visdom_server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-c", "from visdom.server.run_server import main; main()",
         "-port", str(port), "-bind_local", "-env_path", str(tmp_path / "visdom_env"),
         "-logging_level", "WARNING"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not _port_open(port):
            assert process.poll() is None, (tmp_path / "visdom_server.log").read_text()
            assert time.monotonic() < deadline, "visdom server did not start in 30 s"
            time.sleep(0.1)
        yield port, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def window(client, win, env):
    return json.loads(client.get_window_data(win, env=env))


def test_visdom_real_server_shows_pictures_and_losses(tmp_path, visdom_server, capfd):
    import visdom

    port, process = visdom_server
    opt = make_opt(tmp_path, display_id=1, display_port=port, display_env="cyclegan_test",
                   display_ncols=2)
    visualizer = Visualizer(opt)
    visualizer.display_current_results(make_visuals(1, size=32), 1, True)
    for step, ratio in enumerate((0.0, 0.5, 1.0)):
        visualizer.plot_current_losses(1, ratio, {"D_A": 0.1 * step, "G_A": 1.0 - 0.1 * step})
    opt_each = make_opt(tmp_path, name="each", display_id=1, display_port=port,
                        display_env="cyclegan_test", display_ncols=0)
    Visualizer(opt_each).display_current_results(make_visuals(2), 1, False)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""

    with warnings.catch_warnings():  # the client's own deprecated logger.warn calls
        warnings.simplefilter("ignore", DeprecationWarning)
        client = visdom.Visdom(server="http://127.0.0.1", port=port, env="cyclegan_test",
                               use_incoming_socket=False, raise_exceptions=True)
    images = window(client, "exp_images", "cyclegan_test")
    assert images["content"]["src"].startswith("data:image/png;base64,")
    assert (images["width"], images["height"]) == (2 * (32 + 4), 2 * (32 + 4))  # 2x2 grid
    labels = window(client, "exp_labels", "cyclegan_test")
    assert all(f"<td>{label}</td>" in labels["content"] for label in LABELS)
    losses = window(client, "exp_losses", "cyclegan_test")
    traces = {trace["name"]: trace for trace in losses["content"]["data"]}
    assert set(traces) == {"D_A", "G_A"}
    assert traces["G_A"]["x"] == [1.0, 1.5, 2.0]
    assert traces["G_A"]["y"] == pytest.approx([1.0, 0.9, 0.8])
    assert traces["D_A"]["y"] == pytest.approx([0.0, 0.1, 0.2])
    assert all(client.win_exists(f"each_{label}", env="cyclegan_test") for label in LABELS)

    # The server goes away mid-run: one warning, then visdom stays off.
    process.terminate()
    process.wait(timeout=10)
    visualizer.plot_current_losses(1, 1.0, {"D_A": 0.3, "G_A": 0.7})
    visualizer.reset()
    visualizer.display_current_results(make_visuals(3), 2, True)
    visualizer.plot_current_losses(2, 0.0, {"D_A": 0.3, "G_A": 0.7})
    captured = capfd.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith(f"warning: visdom: sending to http://127.0.0.1:{port} failed")
    assert "Traceback" not in captured.err
    assert (tmp_path / "checkpoints" / "exp" / "web" / "images" / "epoch002_real_A.png").is_file()


def test_visdom_windows_after_a_training_run(tmp_path, visdom_server, unaligned_root):
    """A short train.py run with --eval_freq leaves the picture, loss and metric windows on the server,
    holding what loss_log.jsonl holds."""
    import visdom

    port, _ = visdom_server
    result = run_script("train.py", "--dataroot", unaligned_root, "--name", "live", "--checkpoints_dir",
                        tmp_path / "ck", "--load_size", "36", "--crop_size", "32", "--ngf", "8", "--ndf", "8",
                        "--num_threads", "0", "--gpu_ids", "-1", "--seed", "0", "--n_epochs", "2",
                        "--n_epochs_decay", "0", "--print_freq", "2", "--display_freq", "2", "--display_port", port,
                        "--display_server", "http://127.0.0.1", "--display_env", "run_env", "--eval_freq", "1",
                        "--metrics", "kid", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "visdom" not in result.stderr  # connected: no warning
    records = [json.loads(line) for line in (tmp_path / "ck" / "live" / "loss_log.jsonl").read_text().splitlines()]
    losses = [record for record in records if "losses" in record]
    evaluations = [record for record in records if record.get("kind") == "evaluation"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client = visdom.Visdom(server="http://127.0.0.1", port=port, env="run_env",
                               use_incoming_socket=False, raise_exceptions=True)
    assert window(client, "live_images", "run_env")["content"]["src"].startswith("data:image/png;base64,")
    loss_traces = {trace["name"]: trace for trace in window(client, "live_losses", "run_env")["content"]["data"]}
    assert set(loss_traces) == set(losses[0]["losses"])
    assert loss_traces["G_A"]["x"] == pytest.approx([record["progress"] for record in losses])
    assert loss_traces["G_A"]["y"] == pytest.approx([record["losses"]["G_A"] for record in losses], abs=1e-6)
    metric_traces = {trace["name"]: trace for trace in window(client, "live_metrics", "run_env")["content"]["data"]}
    assert set(metric_traces) == {"kid fake_B vs real_B", "kid fake_A vs real_A"}
    assert metric_traces["kid fake_B vs real_B"]["x"] == pytest.approx([record["progress"] for record in evaluations])
    assert metric_traces["kid fake_B vs real_B"]["y"] == pytest.approx(
        [record["metrics"]["kid"]["fake_B vs real_B"] for record in evaluations])
