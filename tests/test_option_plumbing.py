"""Flags that only change numbers inside the model reach it: init, Adam's betas, --eval at test time."""
import contextlib
import io

import torch

from conftest import run_script
from models import create_model
from options.train_options import TrainOptions

TINY = ["--ngf", "4", "--ndf", "4", "--netG", "resnet_6blocks", "--gpu_ids", "-1", "--display_id", "0",
        "--num_threads", "0", "--load_size", "36", "--crop_size", "32", "--seed", "0"]


def test_init_type_gain_and_adams_betas_reach_the_model(tmp_path):
    with contextlib.redirect_stdout(io.StringIO()):
        opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--checkpoints_dir", str(tmp_path), *TINY,
                                    "--init_type", "orthogonal", "--init_gain", "0.5", "--beta1", "0.9",
                                    "--beta2", "0.99"])
    model = create_model(opt)
    rows = model.netD_A.model[0].weight.detach().flatten(1)  # 4 x 48: orthogonal rows of norm 0.5
    assert torch.allclose(rows @ rows.T, 0.25 * torch.eye(4), atol=1e-5)
    assert all(group["betas"] == (0.9, 0.99) for optimizer in model.optimizers for group in optimizer.param_groups)


def test_eval_makes_test_outputs_deterministic(tmp_path, aligned_root):
    common = ["--dataroot", aligned_root, "--name", "p", "--checkpoints_dir", tmp_path / "ck", "--model", "pix2pix",
              "--netG", "unet_128", "--ngf", "4", "--gpu_ids", "-1", "--num_threads", "0"]
    result = run_script("train.py", *common, *TINY[2:], "--netG", "unet_128", "--n_epochs", "1",
                        "--n_epochs_decay", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]

    def fake_image(run, *flags):
        out = tmp_path / f"results{run}"
        result = run_script("test.py", *common, "--crop_size", "32", "--results_dir", out, *flags, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        return (out / "p" / "test_latest" / "images" / "img_000_fake_B.png").read_bytes()

    assert fake_image(1, "--eval") == fake_image(2, "--eval")  # dropout off, running batch-norm statistics
    assert fake_image(3) != fake_image(4)  # the pix2pix paper's test mode: dropout stays on
