"""train.py and test.py run as a user runs them, on tiny generated datasets and tiny networks."""
import json
import re

import numpy as np
import torch
from PIL import Image

from conftest import run_script, write_images
from runtime.speed_hints import describe_hardware, inference_hints, speed_hints

TINY = ["--ngf", "8", "--ndf", "8", "--num_threads", "0", "--gpu_ids", "-1", "--display_id", "0", "--seed", "0"]
CYCLE_LABELS = ["real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"]
NETS = ["G_A", "G_B", "D_A", "D_B"]


def train(tmp_path, dataroot, name, *flags):
    args = ["--dataroot", dataroot, "--name", name, "--checkpoints_dir", tmp_path / "ck", "--load_size", "36",
            "--crop_size", "32", *TINY, *flags]
    result = run_script("train.py", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def run_test(tmp_path, dataroot, name, *flags):
    args = ["--dataroot", dataroot, "--name", name, "--checkpoints_dir", tmp_path / "ck",
            "--results_dir", tmp_path / "results", "--ngf", "8", "--num_threads", "0", "--gpu_ids", "-1", *flags]
    result = run_script("test.py", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def assert_valid_images(paths):
    for path in paths:
        with Image.open(path) as image:
            image.verify()


def test_cyclegan_train_then_test(tmp_path, unaligned_root):
    result = train(tmp_path, unaligned_root, "cg", "--n_epochs", "1", "--n_epochs_decay", "1", "--save_epoch_freq", "1",
                   "--print_freq", "2", "--display_freq", "2", "--update_html_freq", "4", "--save_latest_freq", "6",
                   "--save_by_iter")
    ck = tmp_path / "ck" / "cg"
    for prefix in ("latest", "1", "2", "iter_6"):
        for net in NETS:
            assert (ck / f"{prefix}_net_{net}.pth").is_file()
    state = torch.load(ck / "latest_net_G_A.pth", weights_only=True)
    assert "model.1.weight" in state and all(t.device.type == "cpu" for t in state.values())
    assert (ck / "train_opt.txt").is_file()
    log_lines = [line for line in (ck / "loss_log.txt").read_text().splitlines() if line.startswith("(")]
    assert len(log_lines) == 4
    assert re.fullmatch(r"\(epoch: 1, iters: 2, time: \d+\.\d{3}, data: \d+\.\d{3}\) D_A: -?\d+\.\d{3} G_A: .* idt_B: \d+\.\d{3}",
                        log_lines[0])
    records = [json.loads(line) for line in (ck / "loss_log.jsonl").read_text().splitlines()]
    assert len(records) == 4 and set(records[0]["losses"]) == {"D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B",
                                                               "cycle_B", "idt_B"}
    page = (ck / "web" / "index.html").read_text()
    assert page.index("epoch [2]") < page.index("epoch [1]") and "refresh" not in page
    sources = re.findall(r'<img[^>]*src="([^"]+)"', page)
    assert "loss_curves.png" in sources and len(sources) == 1 + 2 * 8  # 8 visuals with the identity loss
    assert_valid_images(ck / "web" / src for src in sources)
    assert "[Network D_A] Total number of parameters : 0.045 M, receptive field 70x70 pixels" in result.stdout
    # The faster-flags hint of this machine's CPU (no --amp, no --compile given; 2 epochs of 4 steps), once.
    hints = speed_hints(describe_hardware(torch.device("cpu")), given=set(), steps=8)
    assert all(result.stderr.count(line) == 1 for line in hints) and result.stderr.count("speed:") == bool(hints)
    # Progress bars without a terminal: plain lines, no carriage returns.
    assert "\r" not in result.stderr and re.search(r"epoch 2/2: 100%.*4/4", result.stderr)

    result = run_test(tmp_path, unaligned_root, "cg", "--model", "cycle_gan")
    hints = inference_hints(describe_hardware(torch.device("cpu")), given=set(), amp="none")
    assert all(result.stdout.count(line) == 1 for line in hints) and result.stdout.count("speed:") == bool(hints)
    out = tmp_path / "results" / "cg" / "test_latest"
    images = sorted(p.name for p in (out / "images").iterdir())
    assert images == sorted(f"img_{i:03d}_{label}.png" for i in range(3) for label in CYCLE_LABELS)
    assert_valid_images((out / "images").iterdir())
    assert len(re.findall(r"<img", (out / "index.html").read_text())) == 18

    result = run_test(tmp_path, unaligned_root / "testA", "cg", "--model", "test", "--model_suffix", "_A",
                      "--load_iter", "6", "--verbose")
    assert "ResnetBlock(" in result.stdout  # --verbose prints the network
    assert len(list((tmp_path / "results" / "cg" / "test_latest_iter6" / "images").glob("*_fake.png"))) == 3


def test_test_model_on_a_cyclegan_checkpoint_at_full_resolution(tmp_path, unaligned_root):
    train(tmp_path, unaligned_root, "cg", "--n_epochs", "1", "--n_epochs_decay", "0", "--netG", "resnet_6blocks")
    folder = tmp_path / "mixed"
    write_images(folder, 2, size=(50, 30), prefix="wide")
    write_images(folder / "nested", 1, size=(23, 41), prefix="tall")
    result = run_test(tmp_path, folder, "cg", "--model", "test", "--model_suffix", "_A", "--preprocess", "none",
                  "--batch_size", "2")
    assert "--netG resnet_6blocks" in result.stderr  # taken from train_opt.txt
    out = tmp_path / "results" / "cg" / "test_latest" / "images"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{stem}_{label}.png" for stem in ("wide_000", "wide_001", "tall_000") for label in ("real", "fake"))
    assert Image.open(out / "wide_000_fake.png").size == (50, 30)
    assert Image.open(out / "tall_000_fake.png").size == (23, 41)


def test_num_test_epoch_and_aspect_ratio(tmp_path, unaligned_root):
    train(tmp_path, unaligned_root, "cg", "--n_epochs", "2", "--n_epochs_decay", "0", "--save_epoch_freq", "1")
    run_test(tmp_path, unaligned_root / "testA", "cg", "--model", "test", "--model_suffix", "_B", "--epoch", "1",
         "--num_test", "2", "--aspect_ratio", "2.0", "--crop_size", "32")
    out = tmp_path / "results" / "cg" / "test_1" / "images"
    assert sorted(p.name for p in out.iterdir()) == ["img_000_fake.png", "img_000_real.png", "img_001_fake.png",
                                                    "img_001_real.png"]
    assert Image.open(out / "img_000_fake.png").size == (64, 32)


def test_continue_train_picks_up_the_weights(tmp_path, unaligned_root):
    train(tmp_path, unaligned_root, "cg", "--n_epochs", "1", "--n_epochs_decay", "0")
    ck = tmp_path / "ck" / "cg"
    before = torch.load(ck / "latest_net_G_A.pth", weights_only=True)
    result = train(tmp_path, unaligned_root, "cg", "--continue_train", "--epoch_count", "2", "--n_epochs", "2",
                   "--n_epochs_decay", "0", "--lr", "0", "--seed", "7")
    after = torch.load(ck / "latest_net_G_A.pth", weights_only=True)
    assert all(torch.equal(before[k], after[k]) for k in before)  # loaded, then not moved (lr 0)
    assert (ck / "2_net_G_A.pth").is_file() and "epoch 2/2" in result.stderr


def test_pix2pix_train_and_test(tmp_path, aligned_root):
    train(tmp_path, aligned_root, "p2p", "--model", "pix2pix", "--netG", "unet_128", "--n_epochs", "1",
          "--n_epochs_decay", "0", "--direction", "BtoA", "--print_freq", "1")
    ck = tmp_path / "ck" / "p2p"
    assert sorted(p.name for p in ck.glob("latest_*")) == ["latest_net_D.pth", "latest_net_G.pth", "latest_state.pth"]
    assert "G_GAN" in (ck / "loss_log.jsonl").read_text()
    run_test(tmp_path, aligned_root, "p2p", "--model", "pix2pix", "--direction", "BtoA", "--crop_size", "32", "--eval")
    out = tmp_path / "results" / "p2p" / "test_latest" / "images"
    assert len(list(out.glob("*_fake_B.png"))) == 2 and Image.open(out / "img_000_fake_B.png").size == (32, 32)


def test_wgangp_plateau_grayscale_and_template(tmp_path, unaligned_root, aligned_root):
    train(tmp_path, unaligned_root, "gray", "--gan_mode", "wgangp", "--lr_policy", "plateau", "--input_nc", "1",
          "--output_nc", "1", "--n_epochs", "1", "--n_epochs_decay", "0", "--display_freq", "1")
    weight = torch.load(tmp_path / "ck" / "gray" / "latest_net_G_A.pth", weights_only=True)["model.1.weight"]
    assert weight.shape[1] == 1
    # Tested without repeating --input_nc/--output_nc: they come from train_opt.txt like --netG.
    result = run_test(tmp_path, unaligned_root / "testA", "gray", "--model", "test", "--model_suffix", "_A",
                      "--crop_size", "32")
    assert "--input_nc 1, --output_nc 1" in result.stderr
    fake = np.asarray(Image.open(tmp_path / "results" / "gray" / "test_latest" / "images" / "img_000_fake.png"))
    assert fake.shape == (32, 32, 3) and (fake[..., 0] == fake[..., 2]).all()  # one channel, shown grey
    train(tmp_path, aligned_root, "tmpl", "--model", "template", "--netG", "resnet_6blocks", "--n_epochs", "1",
          "--n_epochs_decay", "0")
    assert (tmp_path / "ck" / "tmpl" / "latest_net_G.pth").is_file()


def test_dead_visdom_server_costs_one_line(tmp_path, unaligned_root):
    result = train(tmp_path, unaligned_root, "vis", "--n_epochs", "1", "--n_epochs_decay", "0", "--display_id", "1",
                   "--display_port", "1", "--display_freq", "1")
    assert len([line for line in result.stderr.splitlines() if "visdom" in line]) == 1
    assert "Traceback" not in result.stderr


def test_user_errors_exit_2_without_traceback(tmp_path, unaligned_root):
    for args in (["--dataroot", unaligned_root, "--model", "cyclegan"],
                 ["--dataroot", tmp_path / "missing"],
                 ["--name", "x"]):
        result = run_script("train.py", *args, "--gpu_ids", "-1", "--checkpoints_dir", tmp_path / "ck", cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith(("error:", "train.py: error:"))
    result = run_script("test.py", "--dataroot", unaligned_root / "testA", "--name", "never_trained",
                        "--checkpoints_dir", tmp_path / "ck", "--gpu_ids", "-1", cwd=tmp_path)
    assert result.returncode == 2 and "no checkpoint" in result.stderr and "Traceback" not in result.stderr
