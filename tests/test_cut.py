"""`--model cut` as a user runs it: CUT and FastCUT trained with train.py and run with test.py and the
exporter, a killed run resumed bit-identically, and the model's refusals."""
import functools
import math
import os
import re
import signal
import sys

import pytest
import torch

from conftest import (
    REPO_ROOT,
    assert_identical,
    run_script,
    side_by_side,
    start_process,
    unchanged_after_a_step,
    wait_for_stall,
    write_images,
)
from engine import train_state
from models import create_model
from options.train_options import TrainOptions
from util.errors import UserError

TINY = ["--model", "cut", "--ngf", "8", "--ndf", "8", "--netF_nc", "16", "--num_patches", "16", "--netG",
        "resnet_6blocks", "--load_size", "36", "--crop_size", "32", "--gpu_ids", "-1", "--display_id", "0",
        "--num_threads", "0", "--print_freq", "1", "--seed", "3"]
# The CUT run that is also resumed: 2 epochs of 3 images, a save after every image, flips on.
CUT_RUN = [*TINY, "--n_epochs", "1", "--n_epochs_decay", "1", "--deterministic", "--save_latest_freq", "1",
           "--flip_equivariance"]
# FastCUT with the official code's name of the cross-entropy GAN loss.
FASTCUT_RUN = [*TINY, "--CUT_mode", "FastCUT", "--n_epochs", "1", "--n_epochs_decay", "0", "--gan_mode", "nonsaturating"]


def train_args(top, name, flags):
    return ["--dataroot", top / "data", "--name", name, "--checkpoints_dir", top / "ck", *flags]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A dataset, and the finished CUT and FastCUT runs `cut` and `fastcut` (trained side by side)."""
    top = tmp_path_factory.mktemp("cut")
    for seed, (folder, count) in enumerate((("trainA", 3), ("trainB", 2), ("testA", 2), ("testB", 2))):
        write_images(top / "data" / folder, count, seed=seed)
    started = {name: side_by_side(run_script, "train.py", *train_args(top, name, flags), cwd=top)
               for name, flags in (("cut", CUT_RUN), ("fastcut", FASTCUT_RUN))}
    results = {name: future.result() for name, future in started.items()}
    for result in results.values():
        assert result.returncode == 0, result.stderr[-3000:]
    return top, results


def run_test(top, name, *flags):
    result = run_script("test.py", "--dataroot", top / "data", "--name", name, "--checkpoints_dir", top / "ck",
                        "--results_dir", top / "results", "--gpu_ids", "-1", "--num_threads", "0", *flags, cwd=top)
    assert result.returncode == 0, result.stderr[-3000:]
    return sorted(path.name for path in (top / "results" / name / "test_latest" / "images").iterdir())


def test_cut_trains_tests_and_exports(runs):
    top, results = runs
    out, folder = results["cut"].stdout, top / "ck" / "cut"
    assert re.search(r"\[Network G\] Total number of parameters : 0\.\d+ M\n\[Network F\] Total number of "
                     r"parameters : 0\.\d+ M\n\[Network D\] .*receptive field 84x84 pixels", out)
    assert re.search(r"^\(epoch: 1, iters: 1, .*\) G_GAN: \S+ D_real: \S+ D_fake: \S+ G: \S+ NCE: \S+ NCE_Y: \S+$",
                     out, re.MULTILINE)
    assert {f"latest_net_{net}.pth" for net in "GFD"} <= set(os.listdir(folder))
    state = torch.load(folder / "latest_state.pth", weights_only=True)["model"]
    assert list(state["networks"]) == ["G", "F", "D"] and len(state["optimizers"]) == 2
    # One Adam holds G and the head: its moments cover both (the head's 5 MLPs: 20 tensors).
    generator_tensors = len(state["networks"]["G"]) - sum(key.endswith(".filt") for key in state["networks"]["G"])
    assert len(state["optimizers"][0]["state"]) == generator_tensors + 20
    exporting = side_by_side(run_script, "scripts/export.py", "--name", "cut", "--checkpoints_dir", top / "ck",
                             "--out", top / "exported", "--formats", "torchscript", cwd=top)
    images = run_test(top, "cut", "--model", "cut", "--crop_size", "32")
    assert images == sorted(f"img_{i:03d}_{label}.png" for i in range(2) for label in ("real_A", "fake_B", "real_B"))
    exported = exporting.result()
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert re.search(r"torchscript: wrote .*cut_G\.pt; max abs difference from PyTorch 0 ", exported.stdout)


def test_fastcut_has_its_own_defaults_and_no_identity_term(runs):
    top, results = runs
    out = results["fastcut"].stdout
    assert re.search(r"^\(epoch: 1, iters: 1, .*\) G_GAN: \S+ D_real: \S+ D_fake: \S+ G: \S+ NCE: \S+$", out,
                     re.MULTILINE)
    saved = (top / "ck" / "fastcut" / "train_opt.txt").read_text()
    for line in ("CUT_mode: FastCUT", "lambda_NCE: 10.0", "nce_idt: False", "flip_equivariance: True",
                 "gan_mode: nonsaturating"):
        assert re.search(rf"^\s*{line}\s", saved, re.MULTILINE), line
    images = run_test(top, "fastcut", "--model", "cut", "--CUT_mode", "FastCUT", "--crop_size", "32")
    assert len(images) == 6


def test_a_killed_cut_run_resumes_bit_identically(runs, tmp_path):
    # Killed once its fourth save is complete (the first image of epoch 2), then resumed: the same
    # weights, head, optimiser moments, random streams and position as the run that never stopped.
    top, _ = runs
    process = start_process([sys.executable, REPO_ROOT / "train.py", *train_args(top, "killed", CUT_RUN)], tmp_path,
                            stall_at=",".join(["after:latest_state.pth"] * 4))
    wait_for_stall(process)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    assert torch.load(top / "ck" / "killed" / "latest_state.pth", weights_only=True)["progress"]["total_iters"] == 4
    resumed = run_script("train.py", *train_args(top, "killed", CUT_RUN), "--continue_train", cwd=top)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    straight, killed = (torch.load(top / "ck" / name / "latest_state.pth", weights_only=True) for name in ("cut", "killed"))
    for part in ("model", "progress", "data", "rng"):
        assert_identical(straight[part], killed[part], part)


def build(tmp_path, *flags):
    """The CUT model of `flags` (training), built in this process."""
    opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--checkpoints_dir", str(tmp_path / "ck"), *TINY, *flags])
    return create_model(opt)


@pytest.mark.parametrize("flags, message", [
    (["--input_nc", "1"], r"--model cut runs its generator on its own outputs \(PatchNCE\) and on B images, so it "
                          r"needs --input_nc equal to --output_nc \(here 1 -> 3\); make them equal"),
    (["--lambda_GAN", "0", "--lambda_NCE", "0"], r"--lambda_GAN 0 and --lambda_NCE 0 leave the generator nothing to "
                                                 r"learn; make at least one of them positive"),
    (["--nce_layers", "0,29"], r"--nce_layers 0,29 goes beyond the generator, whose layers are numbered 0 to 28; "
                               r"choose indices below 29"),
    (["--netG", "unet_128"], r"--model cut needs a ResNet or StyleGAN2 generator, not --netG unet_128; use --netG "
                             r"resnet_9blocks, resnet_6blocks, stylegan2 or smallstylegan2"),
    (["--netG", "stylegan2", "--normG", "batch", "--no_antialias_up"],
     r"--normG and --no_antialias_up apply to the ResNet generators only, not --netG stylegan2; leave them out"),
    (["--netD", "stylegan2", "--normD", "none"],
     r"--normD applies to the PatchGAN discriminators only, not --netD stylegan2; leave it out"),
    (["--netG", "smallstylegan2"], r"--nce_layers 0,4,8,12,16 goes beyond the generator, whose layers are numbered 0 "
                                   r"to 3; choose indices below 4"),
    (["--netD", "stylegan2", "--crop_size", "24"],
     r"--netD stylegan2 judges square images of its resolution, 32 px \(the power of two nearest to "
     r"min\(--load_size, --crop_size\)\), not those of --crop_size 24; train on crops of a power of two .*"),
    (["--netD", "stylegan2", "--preprocess", "scale_width"],
     r"--netD stylegan2 judges square images of its resolution, 32 px .*, not those of --preprocess scale_width; .*"),
    (["--preprocess", "zoom_and_patch"], r"--preprocess zoom_and_patch cuts patches of one picture per domain, for "
                                         r"--dataset_mode singleimage, not unaligned; .*"),
    (["--upsample", "resize", "--residual_output"], r"--upsample and --residual_output do not apply to --model cut, "
                                                    r"whose generator is the official CUT one; .*"),
])
def test_what_cut_cannot_do_is_refused_in_one_line(tmp_path, flags, message):
    with pytest.raises(UserError, match=f"^{message}$"):
        build(tmp_path, *flags)


def test_the_sample_head_has_no_weights_and_each_term_can_be_off(tmp_path):
    model = build(tmp_path, "--netF", "sample", "--lambda_GAN", "0", "--nce_idt", "False")
    assert model.model_names == ["G", "D"] and model.loss_names == ["G_GAN", "D_real", "D_fake", "G", "NCE"]
    model.set_input({"A": torch.rand(2, 3, 32, 32), "B": torch.rand(2, 3, 32, 32), "A_paths": ["a", "b"]})
    model.optimize_parameters()
    losses = model.get_current_losses()
    assert losses["G_GAN"] == 0 and losses["G"] == losses["NCE"] > 0


def test_resuming_with_other_cut_architecture_flags_is_refused(tmp_path):
    saved = train_state.plain_options(build(tmp_path).opt)
    opt = build(tmp_path, "--no_antialias", "--netF_nc", "8").opt
    with pytest.raises(UserError, match=r"trained with \(no --no_antialias\) --netF_nc 16, not --no_antialias "
                                        r"--netF_nc 8; repeat the saved flags"):
        train_state.check_same_architecture(saved, opt, "latest_state.pth")


def test_a_and_b_of_other_sizes_train_with_the_identity_term(tmp_path):
    # --preprocess none with --batch_size 1: G then runs on A and on B in two passes, not one batch.
    model = build(tmp_path, "--preprocess", "none", "--flip_equivariance")
    model.set_input({"A": torch.rand(1, 3, 32, 36), "B": torch.rand(1, 3, 28, 44), "A_paths": ["a"]})
    model.optimize_parameters()
    assert model.fake_B.shape[-2:] == (32, 36) and model.idt_B.shape[-2:] == (28, 44)
    assert all(value > 0 for value in model.get_current_losses().values())


@pytest.mark.parametrize("flags", [[], ["--CUT_mode", "FastCUT", "--flip_equivariance", "False"],
                                   ["--nce_layers", "2,5", "--norm", "none"]], ids=["CUT", "FastCUT", "in-place"])
def test_keys_kept_from_the_forward_pass_give_the_losses_of_a_second_encoding(tmp_path, flags):
    # With --nce_layers 2,5 each layer is followed by an in-place ReLU, which encode() runs after
    # layer 2 but not after its last layer, 5. The weights are drawn with --init_gain 1, as the
    # official 0.02 leaves all of PatchNCE's logits equal (the loss log(16) whatever the keys).
    model = build(tmp_path, *flags, "--init_gain", "1")
    generator = torch.Generator().manual_seed(1)
    model.set_input({"A": torch.rand(2, 3, 32, 32, generator=generator), "B": torch.rand(2, 3, 32, 32,
                     generator=generator), "A_paths": ["a0", "a1"]})
    model.training_forward()
    assert set(model.keys) == ({"A", "B"} if model.nce_idt else {"A"})
    keys, random_state = model.keys, torch.get_rng_state()
    losses = {}
    for path, given in (("kept", keys), ("encoded again", {})):
        torch.set_rng_state(random_state)  # the same sampled patches
        model.keys = given
        model.generator_loss_terms()
        losses[path] = [getattr(model, "loss_" + name).item() for name in model.loss_names if "NCE" in name]
    assert losses["kept"][0] != pytest.approx(math.log(16))
    assert losses["kept"] == pytest.approx(losses["encoded again"], rel=1e-6)


@pytest.mark.parametrize("flags", [["--normG", "batch"], ["--flip_equivariance"]])
def test_keys_are_encoded_again_where_the_forward_pass_differs(tmp_path, flags):
    assert not build(tmp_path, "--compile").keys_from_forward
    model = build(tmp_path, *flags)
    model.set_input({"A": torch.rand(1, 3, 32, 32), "B": torch.rand(1, 3, 32, 32), "A_paths": ["a"]})
    torch.manual_seed(0)  # its first draw mirrors the inputs (torch.rand(()) < 0.5)
    model.training_forward()
    assert model.keys == {}


@pytest.mark.parametrize("flags", [["--amp", "bf16", "--channels_last"], ["--compile"]], ids=["bf16", "compile"])
def test_bf16_and_compile_train_every_weight(tmp_path, monkeypatch, flags):
    # Inductor's C++ code for CUT's dozen graphs takes minutes on a small CPU: here the aot_eager
    # backend traces the same graphs (forward and backward) and runs them eagerly. Inductor itself is
    # tried on the blur-upsampling (tests/test_cut_networks.py) and on CycleGAN
    # (tests/test_performance_flags.py).
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    model = build(tmp_path, *flags)
    assert unchanged_after_a_step(model) == []
    assert bool(model.losses_finite()) and all(getattr(model, "loss_" + name).dtype == torch.float32
                                               for name in model.loss_names)
    assert not any("_orig_mod" in key for net in model.networks().values() for key in net.state_dict())
