"""Generator options of issue 12: --resblock, --upsample, --residual_output, --affine_output (with --affine_smooth)
and the uniform inits.

Unit tests for the blocks' arithmetic, parameter counts and shapes, then train.py/test.py/export.py
runs with each option on tiny data, as a user runs them.
"""
import re
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from conftest import run_script, write_images
from engine.train_state import check_same_architecture
from models.blocks import (
    BasicBlock,
    BottleneckBlock,
    GatedBlock,
    ResizeConv2d,
    ResnetBlock,
    apply_change,
    apply_color_transform,
    fold_weight_norm,
    smooth_color_transform,
    upsampling_layer,
)
from models.discriminators import define_D
from models.generators import define_G, infer_generator_flags
from models.initialization import following_nonlinearities, init_weights
from models.norms import get_norm_layer
from util.errors import UserError


def count(net):
    return sum(p.numel() for p in net.parameters())


def meta_generator(*args, **kwargs):
    """A generator built on the meta device: shapes and counts without memory or time."""
    with torch.device("meta"):
        return define_G(*args, **kwargs)


# --- blocks: parameter counts, shapes, arithmetic -------------------------------------------------

C = 16


@pytest.mark.parametrize("block,expected", [
    (ResnetBlock(C, get_norm_layer("instance"), False, True), 2 * (9 * C * C + C)),
    (BasicBlock(C, get_norm_layer("instance"), False, True), 2 * (9 * C * C + C)),
    # 1x1 C -> C/4, 3x3 C/4 -> C/4, 1x1 C/4 -> C, each with a bias; identity shortcut.
    (BottleneckBlock(C, C // 4, get_norm_layer("instance"), False, True),
     C * C // 4 + C // 4 + 9 * (C // 4) ** 2 + C // 4 + C * C // 4 + C),
    # Batch norm adds a scale and a shift per channel: C/4 + C/4 + C channels.
    (BottleneckBlock(C, C // 4, get_norm_layer("batch"), False, False),
     C * C // 4 + 9 * (C // 4) ** 2 + C * C // 4 + 2 * (C // 4 + C // 4 + C)),
    # 3x3 C -> C and 3x3 C -> 2C, each with a bias and a weight-norm scale g per output channel.
    (GatedBlock(C, False), 9 * C * C + 2 * C + 9 * C * 2 * C + 2 * 2 * C),
])
def test_block_parameter_counts(block, expected):
    assert count(block) == expected


@pytest.mark.parametrize("block", [ResnetBlock(C, get_norm_layer("batch"), True, False),
                                   BasicBlock(C, get_norm_layer("batch"), True, False),
                                   BottleneckBlock(C, C // 4, get_norm_layer("batch"), True, False),
                                   GatedBlock(C, True)], ids=["original", "basic", "bottleneck", "gated"])
def test_blocks_keep_the_shape(block):
    assert block(torch.randn(2, C, 5, 7)).shape == (2, C, 5, 7)


def test_bottleneck_projects_the_shortcut_where_widths_differ():
    block = BottleneckBlock(8, 4, get_norm_layer("batch"), False, False)  # 8 channels in, 4 * 4 = 16 out
    assert isinstance(block.shortcut, nn.Sequential) and block.shortcut[0].kernel_size == (1, 1)
    assert isinstance(block.shortcut[1], nn.BatchNorm2d) and block(torch.randn(2, 8, 6, 6)).shape == (2, 16, 6, 6)
    assert count(block.shortcut) == 8 * 16 + 2 * 16
    assert isinstance(BottleneckBlock(16, 4, get_norm_layer("batch"), False, False).shortcut, nn.Identity)


def test_basic_block_puts_a_relu_after_the_addition_and_the_original_does_not():
    torch.manual_seed(0)
    x = torch.randn(2, C, 6, 6)
    basic, original = BasicBlock(C, get_norm_layer("none"), False, True), ResnetBlock(C, get_norm_layer("none"), False, True)
    original.conv_block.load_state_dict(basic.basic_block.state_dict())  # the same branch
    assert torch.equal(basic(x), torch.relu(original(x)))
    assert original(x).min() < 0


def test_bottleneck_adds_its_branch_to_the_shortcut_then_applies_relu():
    block = BottleneckBlock(C, C // 4, get_norm_layer("none"), False, True)
    nn.init.zeros_(block.bottleneck_block[-2].weight)  # the expanding conv: its output is its bias
    nn.init.constant_(block.bottleneck_block[-2].bias, -0.5)
    x = torch.randn(2, C, 6, 6)
    assert torch.equal(block(x), torch.relu(x - 0.5))


def test_gated_block_adds_a_times_sigmoid_b_to_its_input():
    block = GatedBlock(C, False)
    gate = block.gated_block[-1]
    with torch.no_grad():
        gate.parametrizations.weight.original0.zero_()  # the weight-norm scale g: the output is the bias alone
        gate.bias.copy_(torch.cat([torch.full((C,), 0.8), torch.full((C,), 2.0)]))  # a = 0.8, b = 2
    x = torch.randn(2, C, 6, 6)
    assert torch.allclose(block(x), x + 0.8 * torch.sigmoid(torch.tensor(2.0)))
    with torch.no_grad():
        gate.bias[C:] = -100.0  # a closed gate: the block is the identity
    assert torch.allclose(block(x), x)


def test_gated_block_is_weight_normalised_and_its_gate_starts_small():
    block = init_weights(GatedBlock(64, False), "normal", 0.02)
    first, gate = block.gated_block[2], block.gated_block[-1]
    for conv in (first, gate):
        g, v = conv.parametrizations.weight.original0, conv.parametrizations.weight.original1
        assert torch.allclose(conv.weight, g * v / v.flatten(1).norm(dim=1).view(-1, 1, 1, 1))
    assert first.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert gate.weight.std().item() == pytest.approx(0.002, rel=0.05)  # the seed's init_scale 0.1
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) for m in block.modules())


def test_folding_weight_norm_keeps_the_outputs():
    block = init_weights(GatedBlock(C, False), "kaiming_uniform").eval()
    x = torch.randn(1, C, 6, 6)
    before = block(x)
    fold_weight_norm(block)
    assert set(block.state_dict()) == {"gated_block.2.weight", "gated_block.2.bias",
                                       "gated_block.5.weight", "gated_block.5.bias"}
    assert torch.allclose(block(x), before, atol=1e-6)


def test_resize_upsampling_has_no_checkerboard_and_transpose_does():
    torch.manual_seed(0)
    flat = torch.ones(1, 4, 8, 8)
    resize, transpose = upsampling_layer("resize", 4, 4, 3, True), upsampling_layer("transpose", 4, 4, 3, True)
    assert isinstance(resize, ResizeConv2d) and isinstance(transpose, nn.ConvTranspose2d)
    with torch.no_grad():
        smooth, patterned = resize(flat), transpose(flat)
    assert smooth.shape == patterned.shape == (1, 4, 16, 16)
    # A flat input stays flat through nearest x2 + conv; the strided transpose alternates every other pixel.
    assert torch.allclose(smooth, smooth[:, :, :1, :1].expand_as(smooth))
    interior = patterned[:, :, 2:-2, 2:-2]
    assert (interior[:, :, 0::2, 0::2] - interior[:, :, 1::2, 1::2]).abs().max() > 1e-3


def test_apply_change_returns_the_input_for_no_change_and_stays_in_range():
    image = torch.linspace(-1, 1, 256).view(1, 1, 16, 16)
    same = apply_change(image, torch.zeros_like(image))
    assert torch.equal(torch.round((same + 1) * 127.5), torch.round((image + 1) * 127.5))  # 8-bit values kept
    moved = apply_change(image, torch.full_like(image, 50.0))
    assert moved.max() <= 1 and moved.min() > 0.99


SEPIA = torch.tensor([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])


def constant_transform(matrix, offset, size=8):
    """The last-layer output of an --affine_output generator that applies colour matrix `matrix` (3x3)
    and offset `offset` (3) at every pixel: M = matrix - I, c = offset."""
    params = torch.cat([(matrix - torch.eye(3)).flatten(), offset])
    return params.view(1, 12, 1, 1).expand(1, 12, size, size).clone()


def test_affine_output_applies_the_colour_matrix_and_offset_at_every_pixel():
    image = torch.rand(1, 3, 8, 8) * 1.8 - 0.9
    offset = torch.tensor([0.1, 0.0, -0.2])
    toned = apply_color_transform(image, constant_transform(SEPIA * 0.5, offset))
    expected = torch.einsum("ij,bjhw->bihw", SEPIA * 0.5, torch.atanh(image)) + offset.view(1, 3, 1, 1)
    assert torch.allclose(toned, torch.tanh(expected), atol=1e-6)
    same = apply_color_transform(image, torch.zeros(1, 12, 8, 8))
    assert torch.equal(torch.round((same + 1) * 127.5), torch.round((image + 1) * 127.5))  # 8-bit values kept


def test_affine_output_stays_in_range_with_a_gradient_everywhere():
    image = torch.linspace(-1, 1, 48).view(1, 3, 4, 4)
    params = constant_transform(torch.eye(3) * 3, torch.tensor([4.0, 0.0, -4.0]), size=4).requires_grad_()
    output = apply_color_transform(image, params)
    assert output.abs().max() < 1
    output.sum().backward()
    assert params.grad[:, 9:].gt(0).all()  # every offset still learns, however far it pushed its pixels


def test_smoothing_reproduces_a_linear_transform_and_removes_pixel_noise():
    ramp = torch.arange(64.0).view(1, 1, 1, 64).expand(1, 12, 64, 64)
    smooth = smooth_color_transform(ramp, 8)
    # Cell means of a linear field are its values at the cell centres, and bilinear interpolation between
    # the centres gives the field back; only the half cells at the edges, beyond the outer centres, flatten.
    assert torch.allclose(smooth[..., 4:60], ramp[..., 4:60], atol=1e-4)
    assert torch.allclose(smooth[..., :4], torch.full_like(smooth[..., :4], 3.5))
    checkerboard = (torch.arange(64).view(64, 1) + torch.arange(64)).remainder(2).float().expand(1, 12, 64, 64) * 2 - 1
    assert smooth_color_transform(checkerboard, 8).abs().max() < 1e-6
    assert smooth_color_transform(checkerboard, 1) is checkerboard  # 1 = the transform of every pixel


def test_smoothing_averages_partial_cells_over_what_they_hold():
    constant = torch.full((2, 12, 20, 13), 0.3)
    smooth = smooth_color_transform(constant, 8)  # cells of 8 px: the last ones hold 4 and 5 px
    assert smooth.shape == constant.shape and torch.allclose(smooth, constant)


def test_smoothed_generator_applies_the_smoothed_transform():
    torch.manual_seed(0)
    net = define_G(3, 3, 4, "resnet_6blocks", "instance", upsample="resize", affine_output=True, affine_smooth=4)
    assert net.option_flags == ["--upsample resize", "--affine_output", "--affine_smooth 4"]
    with torch.no_grad():
        net.model[-1].weight.normal_(0, 0.1)  # a transform that varies from pixel to pixel
        x = torch.rand(1, 3, 36, 44) * 2 - 1
        out = net(x)
        params = net.model(x)
        assert torch.allclose(out, apply_color_transform(x, smooth_color_transform(params, 4)), atol=1e-6)
        assert not torch.allclose(out, apply_color_transform(x, params), atol=1e-3)
        assert torch.equal(torch.jit.script(net)(x), out)


# --- generators ---------------------------------------------------------------------------------

@pytest.mark.parametrize("resblock,millions", [("original", 11.378), ("basic", 11.378), ("bottleneck", 1.387),
                                               ("gated", 16.696)])
def test_resnet_parameter_counts_per_block(resblock, millions):
    for upsample in ("transpose", "resize"):  # a 3x3 resize conv has the 3x3 transposed conv's count
        net = meta_generator(3, 3, 64, "resnet_9blocks", "instance", upsample=upsample, resblock=resblock)
        assert round(count(net) / 1e6, 3) == millions


def test_unet_resize_parameter_count():
    assert round(count(meta_generator(3, 3, 64, "unet_256", "batch", True, upsample="resize")) / 1e6, 3) == 39.158


def test_default_choices_keep_the_original_parameter_names():
    default = define_G(3, 3, 4, "resnet_6blocks", "instance").state_dict()
    explicit = define_G(3, 3, 4, "resnet_6blocks", "instance", upsample="transpose", resblock="original",
                        residual_output=False).state_dict()
    assert list(default) == list(explicit) and "model.16.weight" in default
    resized = define_G(3, 3, 4, "resnet_6blocks", "instance", upsample="resize").state_dict()
    # The resize layer sits where the transposed conv sat: every later index is unchanged.
    assert "model.16.conv.weight" in resized and "model.23.weight" in resized and "model.23.weight" in default


@pytest.mark.parametrize("net_g,size,resblock", [("resnet_6blocks", 36, "original"), ("resnet_6blocks", 36, "basic"),
                                                  ("resnet_6blocks", 36, "bottleneck"), ("resnet_6blocks", 36, "gated"),
                                                  ("unet_128", 128, "original")])
@pytest.mark.parametrize("upsample", ["transpose", "resize"])
def test_generator_output_shapes(net_g, size, resblock, upsample):
    net = define_G(3, 3, 4, net_g, "batch", True, upsample=upsample, resblock=resblock, residual_output=True)
    with torch.no_grad():
        out = net(torch.rand(2, 3, size, size) * 2 - 1)
    assert out.shape == (2, 3, size, size) and out.abs().max() < 1


@pytest.mark.parametrize("net_g", ["resnet_6blocks", "unet_128"])
@pytest.mark.parametrize("init_type", ["normal", "kaiming_uniform"])
@pytest.mark.parametrize("output", ["residual_output", "affine_output"])
def test_residual_and_affine_outputs_start_from_the_input(net_g, init_type, output):
    net = define_G(3, 3, 4, net_g, "instance", init_type=init_type, upsample="resize", **{output: True})
    assert not isinstance(list(net.modules())[-1], nn.Tanh)
    x = torch.rand(1, 3, 128, 128) * 1.8 - 0.9
    with torch.no_grad():
        assert torch.allclose(net(x), x, atol=1e-6)


@pytest.mark.parametrize("net_g,upsample", [("resnet_6blocks", "transpose"), ("unet_128", "transpose"),
                                             ("unet_128", "resize")])
def test_affine_output_last_layer_shapes_and_scripting(net_g, upsample):
    net = define_G(3, 3, 4, net_g, "instance", upsample=upsample, affine_output=True)
    last = [module for module in net.modules() if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d))][-1]
    assert last.out_channels == 12 and net.option_flags[-1] == "--affine_output"
    with torch.no_grad():
        last.bias.normal_()  # a transform that is no longer the identity
        x = torch.rand(2, 3, 128, 128) * 2 - 1
        out = net(x)
        assert out.shape == x.shape and out.abs().max() <= 1 and not torch.allclose(out, x)
        assert torch.equal(torch.jit.script(net)(x), out)  # the exporter scripts generators


def test_options_that_do_not_fit_are_user_errors():
    with pytest.raises(UserError, match=r"--residual_output .* needs as many input as output channels \(here 1 -> 2\)"):
        define_G(1, 2, 4, "resnet_6blocks", residual_output=True)
    with pytest.raises(UserError, match=r"--affine_output .* needs as many input as output channels \(here 3 -> 1\)"):
        define_G(3, 1, 4, "unet_128", affine_output=True)
    with pytest.raises(UserError, match=r"--residual_output and --affine_output .* choose one of them"):
        define_G(3, 3, 4, "resnet_6blocks", residual_output=True, affine_output=True)
    with pytest.raises(UserError, match=r"--resblock gated applies to the ResNet generators only, not --netG unet_128"):
        define_G(3, 3, 4, "unet_128", resblock="gated")
    with pytest.raises(UserError, match=r"--affine_smooth 8 smooths the colour transform of --affine_output; add"):
        define_G(3, 3, 4, "resnet_6blocks", residual_output=True, affine_smooth=8)


@pytest.mark.parametrize("resblock", ["original", "basic", "bottleneck", "gated"])
@pytest.mark.parametrize("dropout", [False, True])
@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_saved_resnet_generators_name_their_flags(resblock, dropout, norm):
    net = define_G(3, 3, 4, "resnet_6blocks", norm, dropout, upsample="resize", resblock=resblock)
    block = "" if resblock == "original" else f" --resblock {resblock}"
    assert infer_generator_flags(net.state_dict()) == (f"--netG resnet_6blocks --ngf 4 --norm {norm}{block} "
                                                       "--upsample resize" + (" (without --no_dropout)" if dropout else ""))


def test_saved_unet_with_resize_names_its_flags():
    net = define_G(3, 3, 4, "unet_128", "batch", upsample="resize")
    assert infer_generator_flags(net.state_dict()) == "--netG unet_128 --ngf 4 --norm batch --upsample resize"


@pytest.mark.parametrize("net_g,upsample", [("resnet_6blocks", "resize"), ("unet_128", "transpose"),
                                             ("unet_128", "resize")])
def test_saved_affine_output_generators_name_the_flag(net_g, upsample):
    net = define_G(3, 3, 4, net_g, "instance", upsample=upsample, affine_output=True)
    resize = " --upsample resize" if upsample == "resize" else ""
    assert infer_generator_flags(net.state_dict()) == f"--netG {net_g} --ngf 4 --norm instance{resize} --affine_output"
    # L -> ab colorization's two output channels are not mistaken for a one-channel colour transform.
    assert "--affine_output" not in infer_generator_flags(define_G(1, 2, 4, net_g, "instance").state_dict())


# --- initialisation -----------------------------------------------------------------------------

def test_each_layer_knows_the_nonlinearity_after_it():
    net = define_G(3, 3, 4, "resnet_6blocks", "instance")
    found = following_nonlinearities(net)
    layers = net.model
    assert found[layers[1]] == ("relu", None)  # 7x7 conv, norm, ReLU
    assert found[layers[10].conv_block[1]] == ("relu", None)
    assert found[layers[10].conv_block[5]] == ("linear", None)  # added to the block's input
    assert found[layers[16]] == ("relu", None)  # transposed conv, norm, ReLU
    assert found[layers[-2]] == ("tanh", None)
    unet = define_G(3, 3, 4, "unet_128", "batch")
    assert found_for(unet, unet.model.model[0]) == ("leaky_relu", 0.2)  # the next level starts with LeakyReLU
    disc = define_D(3, 4, "basic")
    assert found_for(disc, disc.model[0]) == ("leaky_relu", 0.2) and found_for(disc, disc.model[-1]) == ("linear", None)
    gated = GatedBlock(C, False)
    assert found_for(gated, gated.gated_block[2]) == ("linear", None)  # ELU: no gain of its own


def found_for(net, layer):
    return following_nonlinearities(net)[layer]


@pytest.mark.parametrize("init_type", ["xavier_uniform", "kaiming_uniform"])
def test_uniform_inits_use_the_gain_of_the_following_nonlinearity(init_type):
    torch.manual_seed(0)
    relu_conv, leaky_conv, tanh_conv = nn.Conv2d(64, 64, 3), nn.Conv2d(64, 64, 3), nn.Conv2d(64, 64, 3)
    net = nn.Sequential(relu_conv, nn.BatchNorm2d(64), nn.ReLU(), leaky_conv, nn.LeakyReLU(0.2), tanh_conv, nn.Tanh())
    init_weights(net, init_type, init_gain=0.02)  # --init_gain does not apply
    fan = 64 * 9
    for conv, gain in ((relu_conv, 2 ** 0.5), (leaky_conv, (2 / (1 + 0.2 ** 2)) ** 0.5), (tanh_conv, 5 / 3)):
        std = gain * (2 / (fan + fan)) ** 0.5 if init_type == "xavier_uniform" else gain / fan ** 0.5
        assert conv.weight.std().item() == pytest.approx(std, rel=0.03)
        assert conv.weight.abs().max().item() <= std * 3 ** 0.5  # uniform on [-std * sqrt(3), std * sqrt(3)]
        assert conv.bias.abs().sum() == 0


# --- resume ---------------------------------------------------------------------------------------

def test_resume_refuses_another_block_and_accepts_runs_saved_before_the_options():
    opt = SimpleNamespace(model="cycle_gan", netG="resnet_6blocks", netD="basic", ngf=8, ndf=8, n_layers_D=3,
                          norm="instance", no_dropout=True, input_nc=3, output_nc=3, upsample="transpose",
                          resblock="original", residual_output=False)
    older = {key: value for key, value in vars(opt).items() if key not in ("upsample", "resblock", "residual_output")}
    check_same_architecture(older, opt, "latest_state.pth")
    with pytest.raises(UserError, match=r"trained with --resblock original \(no --residual_output\), not "
                                        r"--resblock gated --residual_output"):
        check_same_architecture(older, SimpleNamespace(**{**vars(opt), "resblock": "gated", "residual_output": True}),
                                "latest_state.pth")
    affine = {**vars(opt), "affine_output": True, "affine_smooth": 8}
    check_same_architecture({**affine, "affine_smooth": 8}, SimpleNamespace(**affine), "latest_state.pth")
    with pytest.raises(UserError, match=r"--affine_smooth 8.*, not .*--affine_smooth 4"):
        check_same_architecture(affine, SimpleNamespace(**{**affine, "affine_smooth": 4}), "latest_state.pth")


# --- end to end -----------------------------------------------------------------------------------

TINY = ["--ngf", "4", "--ndf", "4", "--n_epochs", "1", "--n_epochs_decay", "0", "--crop_size", "32",
        "--load_size", "36", "--gpu_ids", "-1", "--display_id", "0", "--num_threads", "0", "--seed", "0"]
GATED = ["--netG", "resnet_6blocks", "--resblock", "gated", "--upsample", "resize", "--residual_output",
         "--init_type", "xavier_uniform"]
GATED_SUMMARY = "Total number of parameters : 0.046 M, built with --resblock gated --upsample resize --residual_output"


@pytest.fixture(scope="module")
def gated_run(tmp_path_factory):
    """A folder with checkpoints/gated: one epoch of a tiny CycleGAN with gated blocks, resize
    upsampling and residual output, and its stdout."""
    root = tmp_path_factory.mktemp("gated")
    for folder, seed in (("trainA", 1), ("trainB", 2), ("testA", 3)):
        write_images(root / "data" / folder, 2, seed=seed)
    result = run_script("train.py", "--dataroot", root / "data", "--name", "gated", "--checkpoints_dir",
                        root / "checkpoints", *TINY, *GATED, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result.stdout


def test_train_and_test_read_the_options_back(gated_run):
    root, train_stdout = gated_run
    assert f"[Network G_A] {GATED_SUMMARY}" in train_stdout
    result = run_script("test.py", "--dataroot", root / "data" / "testA", "--name", "gated", "--model", "test",
                        "--model_suffix", "_A", "--checkpoints_dir", root / "checkpoints", "--results_dir",
                        root / "results", "--gpu_ids", "-1", "--num_threads", "0", "--crop_size", "32", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"note: using .*--upsample resize, --resblock gated, --residual_output True from", result.stderr)
    assert f"[Network G_A] {GATED_SUMMARY}" in result.stdout
    assert len(list((root / "results" / "gated" / "test_latest" / "images").glob("*_fake.png"))) == 2


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_export_of_a_gated_generator(gated_run):
    pytest.importorskip("onnxruntime")
    root, _ = gated_run
    result = run_script("scripts/export.py", "--name", "gated", "--checkpoints_dir", root / "checkpoints",
                        "--out", root / "out", "--sample_images", root / "data" / "testA", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    differences = re.findall(r"^(torchscript|onnx): wrote .*; max abs difference from PyTorch (\S+)", result.stdout,
                             re.MULTILINE)
    assert {fmt for fmt, _ in differences} == {"torchscript", "onnx"}
    assert all(float(value) < 1e-4 for _, value in differences), result.stdout


@pytest.mark.parametrize("flags,summary", [
    (["--netG", "resnet_6blocks", "--resblock", "basic", "--init_type", "kaiming_uniform"],
     "0.032 M, built with --resblock basic"),
    (["--netG", "resnet_6blocks", "--resblock", "bottleneck"], "0.006 M, built with --resblock bottleneck"),
    (["--netG", "unet_128", "--upsample", "resize", "--residual_output"],
     "0.119 M, built with --upsample resize --residual_output"),
    (["--netG", "resnet_6blocks", "--upsample", "resize", "--affine_output"],
     "0.034 M, built with --upsample resize --affine_output"),
    (["--netG", "resnet_6blocks", "--affine_output", "--affine_smooth", "4"],
     "0.034 M, built with --affine_output --affine_smooth 4"),
], ids=["basic", "bottleneck", "unet-resize-residual", "resnet-resize-affine", "resnet-affine-smooth"])
def test_pix2pix_trains_and_tests_with_each_option(tmp_path, aligned_root, flags, summary):
    common = ["--dataroot", aligned_root, "--name", "p", "--checkpoints_dir", tmp_path / "ck", "--model", "pix2pix"]
    result = run_script("train.py", *common, *TINY, *flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"[Network G] Total number of parameters : {summary}" in result.stdout
    result = run_script("test.py", *common, "--results_dir", tmp_path / "results", "--gpu_ids", "-1",
                        "--num_threads", "0", "--crop_size", "32", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"[Network G] Total number of parameters : {summary}" in result.stdout  # flags from train_opt.txt
    assert len(list((tmp_path / "results" / "p" / "test_latest" / "images").glob("*_fake_B.png"))) == 2


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_export_reads_affine_smooth_back(tmp_path, aligned_root):
    """--affine_smooth holds no weights, so the exporter must read it from train_opt.txt."""
    common = ["--name", "p", "--checkpoints_dir", tmp_path / "ck"]
    flags = ["--netG", "resnet_6blocks", "--norm", "instance", "--affine_output", "--affine_smooth", "4", "--no_dropout"]
    result = run_script("train.py", "--dataroot", aligned_root, *common, "--model", "pix2pix", *TINY, *flags,
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    weights_file = tmp_path / "ck" / "p" / "latest_net_G.pth"
    weights = torch.load(weights_file)
    last = [key for key, value in weights.items() if value.dim() == 4][-1]
    weights[last] = torch.randn_like(weights[last]) * 0.1  # one epoch leaves the transform near the identity
    torch.save(weights, weights_file)
    result = run_script("scripts/export.py", *common, "--formats", "torchscript", "--out", tmp_path / "out",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    exported = torch.jit.load(str(tmp_path / "out" / "p_G.pt"))
    x = torch.rand(1, 3, 36, 44) * 2 - 1
    outputs = {}
    for cell in (1, 4):
        net = define_G(3, 3, 4, "resnet_6blocks", "instance", affine_output=True, affine_smooth=cell)
        net.load_state_dict(weights)
        with torch.no_grad():
            outputs[cell] = net.eval()(x)
    with torch.no_grad():
        assert torch.allclose(exported(x), outputs[4], atol=1e-5)
        assert not torch.allclose(exported(x), outputs[1], atol=1e-3)  # the test can tell the cells apart
