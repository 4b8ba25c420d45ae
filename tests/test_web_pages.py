"""The training page and the test result page, opened in headless Chromium the way a reader opens them.

Screenshots go to $TEST_ARTIFACTS/web_pages/ (default <repo>/test-artifacts/web_pages/). Without a
browser these tests skip, unless REQUIRE_BROWSER=1 (set by scripts/run_tests.sh when it has one).
"""
import json
import os
import shutil
from argparse import Namespace
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import torch
from browser import browser_problem, check_pages
from PIL import Image

from conftest import REPO_ROOT, run_script, write_images
from engine.html import HTML, add_result_row, write_result_images
from engine.training_page import EPOCHS_PER_PAGE
from engine.visualizer import Visualizer
from metrics.report import report_lines

TINY = ["--ngf", "8", "--num_threads", "0", "--gpu_ids", "-1"]
EPOCHS = 3


@pytest.fixture(scope="module")
def browser():
    """Skip (or fail, under REQUIRE_BROWSER=1) when no headless Chromium can be driven here."""
    problem = browser_problem()
    if problem and os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {problem}")
    if problem:
        pytest.skip(f"browser tests skipped: {problem}")


@pytest.fixture(scope="module")
def artifacts():
    """This file's screenshot folder, emptied first so no old screenshot passes for a new one."""
    folder = Path(os.environ.get("TEST_ARTIFACTS") or REPO_ROOT / "test-artifacts") / "web_pages"
    shutil.rmtree(folder, ignore_errors=True)
    return folder


@pytest.fixture(scope="module")
def trained_run(browser, tmp_path_factory):
    """A tiny CycleGAN trained for EPOCHS epochs; returns the folder the runs share."""
    root = tmp_path_factory.mktemp("web_pages")
    for folder, seed in (("trainA", 1), ("trainB", 2), ("testA", 3), ("testB", 4)):
        write_images(root / "data" / folder, 3 if folder.startswith("train") else 2, seed=seed)
    result = run_script("train.py", "--dataroot", root / "data", "--name", "run", "--checkpoints_dir", root / "ck",
                        "--load_size", "36", "--crop_size", "32", "--ndf", "8", "--display_id", "0", "--seed", "0",
                        "--n_epochs", str(EPOCHS - 1), "--n_epochs_decay", "1", "--print_freq", "1",
                        "--eval_freq", "1", "--metrics", "kid", *TINY, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def file_names(urls):
    """The file names of file:// addresses."""
    return [Path(unquote(urlparse(url).path)).name for url in urls]


def assert_real_screenshots(report):
    """Every page's screenshot is a PNG of a real page: window-wide, tall enough, not one flat colour."""
    for page in report.pages:
        assert page.screenshot.stat().st_size > 2000, page.screenshot
        with Image.open(page.screenshot) as shot:
            assert shot.format == "PNG" and shot.width >= 1000 and shot.height >= 200, page.screenshot
            darkest, brightest = shot.convert("L").getextrema()
            assert brightest - darkest > 50, f"{page.screenshot} is blank"


def test_training_page_shows_the_loss_curves_and_every_epoch(trained_run, artifacts):
    web = trained_run / "ck" / "run" / "web"
    report = check_pages(web / "index.html", artifacts / "training")
    assert report.ok, str(report)
    shown = file_names(report.loaded_images)
    assert "loss_curves.png" in shown and "metric_curves.png" in shown
    assert "best kid:" in (web / "index.html").read_text(encoding="utf-8")
    for epoch in range(1, EPOCHS + 1):
        assert any(name.startswith(f"epoch{epoch:03d}_") for name in shown), f"epoch {epoch} missing: {shown}"
    saved = {path.name for path in (web / "images").glob("epoch*.png")}
    assert saved <= set(shown), f"saved but on no page: {sorted(saved - set(shown))}"
    assert_real_screenshots(report)


def test_result_page_shows_the_metrics_first_then_every_picture(trained_run, artifacts):
    result = run_script("test.py", "--dataroot", trained_run / "data", "--name", "run", "--checkpoints_dir",
                        trained_run / "ck", "--results_dir", trained_run / "results", "--model", "cycle_gan",
                        "--metrics", "fid,psnr", *TINY, cwd=trained_run)
    assert result.returncode == 0, result.stderr[-3000:]
    out = trained_run / "results" / "run" / "test_latest"
    report = check_pages(out / "index.html", artifacts / "results")
    assert report.ok, str(report)
    page = report.pages[0]
    assert sorted(file_names(page.loaded_images)) == sorted(path.name for path in (out / "images").iterdir())
    top = page.text_before_first_image
    lines = report_lines(json.loads((out / "metrics.json").read_text(encoding="utf-8")))
    assert "Quality metrics" in top and "FID fake_B vs real_B" in top
    assert all(line in top for line in lines), f"metric lines not above the pictures:\n{top}"
    assert_real_screenshots(report)


def test_training_pages_stay_light_after_many_epochs(browser, tmp_path, artifacts):
    """45 epochs of pictures: index.html holds the newest EPOCHS_PER_PAGE, older ones are one click away."""
    opt = Namespace(name="long", checkpoints_dir=str(tmp_path), isTrain=True, display_id=0, display_ncols=4,
                    display_winsize=64, no_html=False, use_tensorboard=False, use_wandb=False,
                    wandb_project="p", continue_train=False)
    visualizer = Visualizer(opt)
    for epoch in range(1, 46):
        visualizer.reset()
        visuals = {label: torch.full((1, 3, 16, 16), epoch / 45.0 - (label == "fake_B")) for label in ("real_A", "fake_B")}
        visualizer.display_current_results(visuals, epoch, True)
    report = check_pages(tmp_path / "long" / "web" / "index.html", artifacts / "long_run")
    assert report.ok, str(report)
    assert [page.path.name for page in report.pages] == ["index.html", "index_2.html", "index_3.html"]
    per_page = [len(page.loaded_images) for page in report.pages]
    assert per_page == [2 * EPOCHS_PER_PAGE, 2 * EPOCHS_PER_PAGE, 2 * (45 - 2 * EPOCHS_PER_PAGE)]
    assert len(set(report.loaded_images)) == 90  # every epoch's pictures kept, each on exactly one page
    assert "epoch045_real_A.png" in file_names(report.pages[0].loaded_images)
    assert "epoch001_real_A.png" in file_names(report.pages[2].loaded_images)


def test_16_bit_result_pictures_show_in_the_browser(browser, tmp_path, artifacts):
    """test.py --output_bits 16 writes 16-bit grey and RGB PNGs; the result page shows them like 8-bit ones."""
    page = HTML(tmp_path, "deep")
    for channels in (1, 3):
        ramp = torch.linspace(-1, 1, channels * 48 * 64).reshape(channels, 48, 64)
        add_result_row(page, write_result_images(page.image_dir, {"fake": ramp}, f"x{channels}.png", bits=16))
    page.save()
    with Image.open(tmp_path / "images" / "x1_fake.png") as grey, Image.open(tmp_path / "images" / "x3_fake.png") as rgb:
        assert grey.mode.startswith("I;16") and rgb.mode == "RGB"  # Pillow shows 16-bit RGB as 8-bit RGB
    report = check_pages(tmp_path / "index.html", artifacts / "sixteen_bit")
    assert report.ok, str(report)
    assert sorted(file_names(report.loaded_images)) == ["x1_fake.png", "x3_fake.png"]


def test_checker_reports_broken_pictures_and_dead_links(browser, tmp_path, artifacts):
    first, second = HTML(tmp_path, "first"), HTML(tmp_path, "second")
    write_images(first.image_dir, 1, prefix="odd name #")  # quoted in the address; must still load
    shown = "images/odd name #_000.png"
    first.add_images([shown, "images/missing.png"], ["ok", "missing"], [shown, "index_2.html"])
    second.add_images([shown], ["ok"], ["nowhere.html"])
    first.save()
    second.save("index_2.html")
    report = check_pages(tmp_path / "index.html", artifacts / "negative")
    assert not report.ok
    assert [page.path.name for page in report.pages] == ["index.html", "index_2.html"]
    assert report.pages[0].broken_images == ["images/missing.png"]
    assert any("missing.png" in error for error in report.pages[0].console_errors)
    assert report.pages[0].dead_links == [] and report.pages[1].dead_links == [str(tmp_path / "nowhere.html")]
    assert file_names(report.loaded_images) == ["odd name #_000.png"] * 2
    assert "broken image images/missing.png" in str(report)
    assert_real_screenshots(report)
