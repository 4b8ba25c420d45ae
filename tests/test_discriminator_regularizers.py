"""Discriminator regularisers: R1 (value, gradients, lazy schedule), spectral norm, DiffAugment, and
train.py/test.py runs with --spectral_norm, --r1_gamma/--r1_every and --diffaug."""
import re

import pytest
import torch
from torch import nn

from conftest import LinearCritic, run_script, training_model
from engine.train_state import check_same_architecture
from models.diffaug import DiffAugment, parse_policy
from models.discriminators import define_D
from models.generators import define_G
from models.losses import LazyR1, r1_penalty
from options.train_options import TrainOptions
from util.errors import UserError

# --- R1 -------------------------------------------------------------------------------------------

def test_r1_of_a_linear_critic_is_gamma_half_the_squared_weight_norm():
    weight = torch.randn(2, 3, 3)
    critic = LinearCritic(weight.clone())
    penalty = r1_penalty(critic, torch.randn(4, 2, 3, 3), gamma=3.0)
    assert penalty.item() == pytest.approx(1.5 * weight.pow(2).sum().item(), rel=1e-5)
    penalty.backward()
    assert torch.allclose(critic.weight.grad, 3.0 * weight, atol=1e-5)  # d/dw gamma/2 |w|^2


def test_r1_of_a_patch_discriminator_matches_a_direct_computation():
    torch.manual_seed(0)
    netD = define_D(3, 4, "basic", norm="instance")
    real = torch.randn(3, 3, 32, 32)
    expected = 0.0
    for image in real:  # one sample at a time, plain autograd on the sum of its patch scores
        x = image.unsqueeze(0).requires_grad_(True)
        (grad,) = torch.autograd.grad(netD(x).sum(), x)
        expected += grad.pow(2).sum().item() / len(real)
    assert r1_penalty(netD, real, gamma=10.0).item() == pytest.approx(5.0 * expected, rel=1e-4)


def test_r1_gradients_reach_the_discriminator_only():
    torch.manual_seed(0)
    netG, netD = define_G(3, 3, 4, "resnet_6blocks", "instance"), define_D(3, 4, "basic", norm="instance")
    source = torch.randn(2, 3, 32, 32, requires_grad=True)
    real = netG(source)  # an input that carries a graph: the penalty must not differentiate into it
    r1_penalty(netD, real, gamma=1.0).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in netD.parameters() if p.dim() > 1)
    assert all(p.grad is None for p in netG.parameters()) and source.grad is None


def test_r1_under_bf16_autocast_is_the_fp32_penalty():
    torch.manual_seed(0)
    netD = define_D(3, 4, "basic", norm="instance", spectral_norm=True)
    netD.eval()  # no power iteration: both calls see the same weights
    real = torch.randn(2, 3, 32, 32)
    expected = r1_penalty(netD, real, gamma=1.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        penalty = r1_penalty(netD, real, gamma=1.0)
    assert penalty.dtype == torch.float32 and torch.equal(penalty, expected)


def test_lazy_r1_is_due_every_k_steps_and_weighted_by_k():
    assert [LazyR1(1.0, 4).due(step) for step in range(9)] == [True, False, False, False, True, False, False,
                                                                False, True]
    assert not any(LazyR1(0.0, 1).due(step) for step in range(3))
    critic = LinearCritic(torch.ones(1, 2, 2))
    penalty, weighted = LazyR1(2.0, 4)(critic, torch.randn(2, 1, 2, 2))
    assert penalty.item() == pytest.approx(4.0) and weighted.item() == pytest.approx(16.0)


def build_model(tmp_path, *flags):
    return training_model(tmp_path, "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netG", "resnet_6blocks",
                          "--crop_size", "32", "--seed", "0", "--pool_size", "0", *flags)


def batch(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    channels = {"A": model.opt.input_nc, "B": model.opt.output_nc}
    images = {domain: torch.rand(1, nc, 32, 32, generator=generator) * 2 - 1 for domain, nc in channels.items()}
    return {**images, "A_paths": ["a"], "B_paths": ["b"]}


@pytest.mark.parametrize("model_name, loss_name", [("cycle_gan", "D_A_R1"), ("pix2pix", "D_R1")])
def test_lazy_r1_in_training_runs_every_k_discriminator_steps(tmp_path, capsys, model_name, loss_name):
    model = build_model(tmp_path, "--model", model_name, "--r1_gamma", "1", "--r1_every", "2")
    computed = []
    for step in range(4):
        model.set_input(batch(model, step))
        model.optimize_parameters()
        computed.append(float(getattr(model, "loss_" + loss_name)))
    # Steps 0 and 2 compute it; the value shown stays the last computed one in between.
    assert computed[0] > 0 and computed[1] == computed[0] and computed[2] != computed[1] == computed[0]
    assert computed[3] == computed[2] and model.steps_of(model.optimizer_D) == 4
    assert loss_name in model.get_current_losses()


def test_bf16_autocast_with_r1_gives_finite_losses(tmp_path, capsys):
    model = build_model(tmp_path, "--amp", "bf16", "--r1_gamma", "10", "--spectral_norm", "--diffaug", "color,cutout")
    for step in range(2):
        model.set_input(batch(model, step))
        model.optimize_parameters()
        assert bool(model.losses_finite())
    assert model.get_current_losses()["D_A_R1"] > 0


def test_help_explains_the_flags_and_their_ranges(capsys):
    with pytest.raises(SystemExit):
        TrainOptions().parse(["--help", "--model", "pix2pix"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--spectral_norm" in text and "--diffaug DIFFAUG" in text and "color, translation, cutout" in text
    assert "R1 penalty" in text and "[a number >= 0] (default: 0.0)" in text and "[an integer >= 1] (default: 1)" in text


# --- spectral norm --------------------------------------------------------------------------------

@pytest.mark.parametrize("net_d", ["basic", "pixel"])
def test_spectral_norm_keeps_every_convs_largest_singular_value_near_one(net_d):
    torch.manual_seed(0)
    netD = define_D(3, 8, net_d, norm="batch", init_gain=1.0, spectral_norm=True)
    for _ in range(30):  # each training-mode forward pass runs one power iteration
        netD(torch.randn(2, 3, 32, 32))
    convs = [m for m in netD.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(hasattr(conv.parametrizations, "weight") for conv in convs)
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        unnormalised = torch.linalg.matrix_norm(conv.parametrizations.weight.original.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.02) and unnormalised > 2  # really rescaled


def test_spectral_norm_names_and_gradients():
    netD = define_D(3, 4, "basic", norm="instance", spectral_norm=True)
    keys = list(netD.state_dict())
    assert keys[:4] == ["model.0.bias", "model.0.parametrizations.weight.original",
                        "model.0.parametrizations.weight.0._u", "model.0.parametrizations.weight.0._v"]
    netD(torch.randn(1, 3, 32, 32)).sum().backward()
    assert netD.model[0].parametrizations.weight.original.grad.abs().sum() > 0
    # Same parameter count as without it: only the names change.
    plain = define_D(3, 4, "basic", norm="instance")
    assert sum(p.numel() for p in netD.parameters()) == sum(p.numel() for p in plain.parameters())


def test_resume_compares_spectral_norm_and_reads_older_states_as_without_it(tmp_path, capsys):
    opt = build_model(tmp_path, "--spectral_norm").opt
    saved = {name: getattr(opt, name) for name in ("model", "netG", "netD", "ngf", "ndf", "n_layers_D", "norm",
                                                   "no_dropout", "input_nc", "output_nc")}
    with pytest.raises(UserError, match=r"trained with \(no --spectral_norm\), not --spectral_norm"):
        check_same_architecture(saved, opt, "state.pth")  # a state saved before the flag existed
    check_same_architecture({**saved, "spectral_norm": True}, opt, "state.pth")
    opt.spectral_norm = False
    check_same_architecture(saved, opt, "state.pth")


# --- DiffAugment ----------------------------------------------------------------------------------

def images(seed=0, n=4, channels=3, size=16):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=generator) * 2 - 1


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_each_policy_changes_images_keeps_their_shape_and_is_differentiable(policy):
    x = images().requires_grad_(True)
    torch.manual_seed(1)
    out = DiffAugment(policy)(x)
    assert out.shape == x.shape and out.dtype == x.dtype and out.isfinite().all()
    changed = [not torch.equal(a, b) for a, b in zip(out.detach(), x.detach())]
    assert sum(changed) >= 3  # a shift of 0 can leave one image as it was
    # Translation and cutout keep the images' range [-1, 1]. Colour, as in the paper, may leave it, as far
    # as its draws allow: brightness +-0.5 gives 1.5, saturation x2 at most 2 * 1.5 + 1.5 = 4.5 (a mean of
    # 1.5 pulled away from), contrast x1.5 at most 1.5 * 4.5 + 0.5 * 4.5 = 9.
    assert out.abs().max() <= (9 if "color" in policy else 1)
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_shifts_each_image_by_whole_pixels_filling_with_zero():
    x = images(size=16)
    torch.manual_seed(3)
    out = DiffAugment("translation")(x)
    for image, shifted in zip(x, out):
        padded = nn.functional.pad(image, (2, 2, 2, 2))  # shifts of up to 0.125 * 16 = 2 pixels
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if torch.equal(padded[:, 2 + dy:18 + dy, 2 + dx:18 + dx], shifted)]
        assert len(matches) == 1


def test_cutout_zeroes_one_square_of_half_the_side():
    x = images(size=16) * 0.5 + 0.75  # no zeros of their own
    torch.manual_seed(4)
    out = DiffAugment("cutout")(x)
    for image, cut in zip(x, out):
        zero = (cut == 0).all(0)
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert 0 < len(rows) <= 8 and 0 < len(cols) <= 8  # a square of 8, clipped where it overhangs
        assert zero.sum() == len(rows) * len(cols) and torch.equal(cut[:, ~zero], image[:, ~zero])


def test_reals_and_fakes_go_through_the_same_transforms_and_each_call_draws_afresh():
    reals, fakes = images(1), images(2)
    augment = DiffAugment("translation,cutout")

    def seeded(x):
        torch.manual_seed(5)  # the draws come from torch's generator, so a seeded run repeats them
        return augment(x)
    # Given the same draws, the spatial transforms are one linear map, whatever the batch holds.
    assert torch.allclose(seeded(reals + 2 * fakes), seeded(reals) + 2 * seeded(fakes), atol=1e-6)
    assert not torch.equal(augment(reals), augment(reals))


def test_pairs_are_coloured_per_picture_with_the_same_draws():
    picture = images(channels=3)
    torch.manual_seed(6)
    pair = DiffAugment("color", pictures=(3, 3))(torch.cat((picture, picture), 1))
    assert torch.equal(pair[:, :3], pair[:, 3:])
    torch.manual_seed(6)
    assert torch.allclose(DiffAugment("color")(picture), pair[:, :3])


def test_no_policy_changes_nothing_and_draws_nothing():
    x = images()
    state = torch.random.get_rng_state()
    assert DiffAugment("")(x) is x and torch.equal(torch.random.get_rng_state(), state)


def test_policy_names_are_checked_and_canonical():
    assert parse_policy(" Color, cutout,color ") == "color,cutout" and parse_policy("") == ""
    with pytest.raises(UserError, match=r"--diffaug: unknown policy 'blur'; choose from color, translation, cutout"):
        parse_policy("color,blur")


def test_every_discriminator_input_is_augmented(tmp_path, capsys):
    model = build_model(tmp_path, "--diffaug", "translation")
    seen = []
    augment = model.augment
    model.augment = lambda x: seen.append(x) or augment(x)
    model.set_input(batch(model))
    model.optimize_parameters()
    # G step: both fakes; D step: real and fake of D_A, then of D_B.
    assert seen[0] is model.fake_B and seen[1] is model.fake_A and len(seen) == 6
    assert seen[2] is model.real_B and torch.equal(seen[3], model.fake_B)
    assert seen[4] is model.real_A and torch.equal(seen[5], model.fake_A)


# --- end to end -----------------------------------------------------------------------------------

TINY = ["--ngf", "8", "--ndf", "8", "--gpu_ids", "-1", "--display_id", "0", "--num_threads", "0", "--seed", "0",
        "--load_size", "36", "--crop_size", "32", "--n_epochs", "1", "--n_epochs_decay", "0", "--print_freq", "2"]


@pytest.mark.parametrize("model, flags, losses", [
    # Lazy R1 under bf16 autocast, spectral norm and every DiffAugment policy, then test.py (generators only).
    ("cycle_gan", ["--spectral_norm", "--r1_gamma", "1", "--r1_every", "2", "--diffaug", "color,translation,cutout",
                   "--amp", "bf16"], ["D_A_R1", "D_B_R1"]),
    ("pix2pix", ["--spectral_norm", "--r1_gamma", "1", "--diffaug", "color,translation,cutout"], ["D_R1"]),
], ids=["cycle_gan", "pix2pix"])
def test_training_with_the_regularisers(tmp_path, unaligned_root, aligned_root, model, flags, losses):
    root = unaligned_root if model == "cycle_gan" else aligned_root
    netG = ["--netG", "resnet_6blocks"] if model == "cycle_gan" else ["--netG", "unet_128"]
    common = ["--dataroot", root, "--name", "run", "--checkpoints_dir", tmp_path / "ck", "--model", model, *netG]
    result = run_script("train.py", *common, *TINY, *flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    loss_lines = [line for line in result.stdout.splitlines() if line.startswith("(epoch:")]
    assert loss_lines and all(f" {name}: " in loss_lines[-1] for name in losses)
    values = [float(value) for value in re.findall(r": (-?[\d.]+|nan|inf)(?= |$)", loss_lines[-1].split(")", 1)[1])]
    assert len(values) >= 5 and all(abs(value) < 1e4 for value in values)
    assert "spectral_norm: True" in (tmp_path / "ck" / "run" / "train_opt.txt").read_text()
    if model == "cycle_gan":
        result = run_script("test.py", *common, "--gpu_ids", "-1", "--crop_size", "32", "--results_dir",
                            tmp_path / "results", cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        assert len(list((tmp_path / "results" / "run" / "test_latest" / "images").glob("*fake_B.png"))) == 3
