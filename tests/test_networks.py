"""Networks: parameter names, counts and shapes as the original tool's, receptive fields, inits, norms."""
import pytest
import torch
from torch import nn

from models.discriminators import DISCRIMINATOR_CHOICES, define_D, receptive_field
from models.generators import GENERATOR_CHOICES, define_G
from models.initialization import INIT_CHOICES, init_weights
from models.norms import get_norm_layer


def count(net):
    return sum(p.numel() for p in net.parameters())


def test_parameter_counts_match_the_original():
    assert round(count(define_G(3, 3, 64, "resnet_9blocks", "instance")) / 1e6, 3) == 11.378
    assert round(count(define_D(3, 64, "basic", norm="instance")) / 1e6, 3) == 2.765
    assert round(count(define_G(3, 3, 64, "unet_256", "batch", True)) / 1e6, 3) == 54.414


def test_resnet_parameter_names_follow_the_original_layout():
    keys = list(define_G(3, 3, 8, "resnet_9blocks", "instance").state_dict())
    assert keys[:2] == ["model.1.weight", "model.1.bias"]
    assert "model.10.conv_block.1.weight" in keys and "model.18.conv_block.5.weight" in keys
    assert keys[-2:] == ["model.26.weight", "model.26.bias"]
    with_dropout = define_G(3, 3, 8, "resnet_9blocks", "instance", use_dropout=True).state_dict()
    assert "model.10.conv_block.6.weight" in with_dropout


def test_unet_and_discriminator_parameter_names():
    unet = define_G(3, 3, 8, "unet_128", "batch").state_dict()
    assert "model.model.0.weight" in unet and "model.model.1.model.2.running_mean" in unet
    assert list(define_D(3, 8, "basic", norm="batch").state_dict())[:2] == ["model.0.weight", "model.0.bias"]
    assert list(define_D(3, 8, "pixel", norm="batch").state_dict())[0] == "net.0.weight"


@pytest.mark.parametrize("net_g,size", [("resnet_9blocks", 32), ("resnet_6blocks", 36), ("unet_128", 128),
                                        ("unet_256", 256)])
def test_generator_output_shape(net_g, size):
    net = define_G(3, 1, 4, net_g, "batch")
    with torch.no_grad():
        out = net(torch.randn(2, 3, size, size))
    assert out.shape == (2, 1, size, size)
    assert out.abs().max() <= 1.0


@pytest.mark.parametrize("net_d,expected", [("basic", (2, 1, 6, 6)), ("n_layers", (2, 1, 2, 2)),
                                            ("pixel", (2, 1, 64, 64))])
def test_discriminator_output_shape(net_d, expected):
    net = define_D(3, 4, net_d, n_layers_D=4, norm="instance")
    with torch.no_grad():
        assert net(torch.randn(2, 3, 64, 64)).shape == expected


@pytest.mark.parametrize("n_layers,field", [(1, 16), (2, 34), (3, 70), (4, 142)])
def test_receptive_field(n_layers, field):
    assert receptive_field(define_D(3, 4, "n_layers", n_layers_D=n_layers)) == field


def test_receptive_field_of_basic_and_pixel():
    assert receptive_field(define_D(3, 4, "basic")) == 70
    assert receptive_field(define_D(3, 4, "pixel")) == 1


def test_receptive_field_matches_gradient_support():
    """Independent check: the input pixels that influence one output score span 70 pixels."""
    net = define_D(1, 2, "basic", norm="none")
    x = torch.randn(1, 1, 140, 140, requires_grad=True)
    out = net(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    assert rows.max() - rows.min() + 1 == 70


def test_bias_only_with_instance_norm():
    def conv_biases(net):
        return [m.bias is not None for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert all(conv_biases(define_G(3, 3, 4, "resnet_6blocks", "instance")))
    assert conv_biases(define_G(3, 3, 4, "resnet_6blocks", "batch")) == [False] * 15 + [True]
    assert conv_biases(define_G(3, 3, 4, "resnet_6blocks", "none")) == [False] * 15 + [True]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in define_G(3, 3, 4, "resnet_6blocks", "none").modules())
    instance = define_G(3, 3, 4, "resnet_6blocks", "instance")
    assert not any("running" in key for key in instance.state_dict())


def input_gradient(layer, x, grad_out, memory_format):
    x = x.clone(memory_format=memory_format).requires_grad_()
    layer(x).backward(grad_out.to(memory_format=memory_format))
    return x.grad


@pytest.mark.parametrize("batch", [1, 2])
def test_instance_norm_gradient_is_right_for_channels_last(batch):
    """torch's CPU instance norm gets the input gradient wrong for a channels-last gradient at batch size
    1; ours must match the contiguous computation (and print and save like torch's)."""
    torch.manual_seed(0)
    x, grad_out = torch.randn(batch, 8, 16, 16), torch.randn(batch, 8, 16, 16)
    norm = get_norm_layer("instance")(8)
    expected = input_gradient(nn.InstanceNorm2d(8), x, grad_out, torch.contiguous_format)
    got = input_gradient(norm, x, grad_out, torch.channels_last)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert repr(norm) == repr(nn.InstanceNorm2d(8)) and not norm.state_dict()


def test_channels_last_generator_trains_with_the_same_gradients():
    """A whole ResNet generator with instance norm: `--channels_last` must not change the gradients."""
    torch.manual_seed(0)
    net, x = define_G(3, 3, 4, "resnet_6blocks", "instance"), torch.randn(1, 3, 32, 32)

    def weight_gradients(memory_format):
        net.to(memory_format=memory_format).zero_grad()
        net(x.to(memory_format=memory_format)).square().mean().backward()
        return torch.cat([p.grad.flatten() for p in net.parameters()])

    expected = weight_gradients(torch.contiguous_format)
    got = weight_gradients(torch.channels_last)
    assert (got - expected).norm() <= 1e-3 * expected.norm()


def test_syncbatch_norm_builds_and_runs_without_a_process_group():
    net = define_D(3, 4, "basic", norm="syncbatch")
    assert any(isinstance(m, nn.SyncBatchNorm) for m in net.modules())
    assert set(net.state_dict()) == set(define_D(3, 4, "basic", norm="batch").state_dict())
    net.train()  # batch statistics without a process group fall back to plain batch norm
    assert net(torch.randn(2, 3, 64, 64)).shape == (2, 1, 6, 6)
    net.eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 64, 64)).shape == (1, 1, 6, 6)


@pytest.mark.parametrize("init_type", INIT_CHOICES)
def test_init_types(init_type):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(64, 64, 3), nn.BatchNorm2d(64), nn.Linear(64, 64))
    init_weights(net, init_type, init_gain=0.02)
    conv, bn, linear = net
    assert conv.bias.abs().sum() == 0 and linear.bias.abs().sum() == 0
    assert bn.bias.abs().sum() == 0 and abs(bn.weight.mean().item() - 1.0) < 0.01
    std = conv.weight.std().item()
    fan_in, fan_out = 64 * 9, 64 * 9
    expected = {"normal": 0.02, "xavier": 0.02 * (2.0 / (fan_in + fan_out)) ** 0.5,
                "kaiming": (2.0 / fan_in) ** 0.5, "orthogonal": None,
                # No nonlinearity follows the conv here: gain 1 (tests/test_generator_options.py tries others).
                "xavier_uniform": (2.0 / (fan_in + fan_out)) ** 0.5, "kaiming_uniform": fan_in ** -0.5}[init_type]
    if expected is not None:
        assert std == pytest.approx(expected, rel=0.05)
    else:
        rows = conv.weight.flatten(1)
        assert torch.allclose(rows @ rows.T, 0.02 ** 2 * torch.eye(64), atol=1e-6)


def test_choices_are_all_buildable():
    for name in GENERATOR_CHOICES:
        define_G(1, 1, 2, name)
    for name in DISCRIMINATOR_CHOICES:
        define_D(1, 2, name)
    with pytest.raises(ValueError):
        define_G(3, 3, 4, "resnet_12blocks")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_instance_norm_keeps_channels_last_in_inference_with_the_same_values(dtype):
    """Inference on a channels-last CPU batch runs as group norm, one group per channel: the layout is
    kept (no conversion to contiguous and back) and the values are instance norm's."""
    torch.manual_seed(0)
    x = (torch.randn(2, 8, 16, 16) * 3 + 1).to(dtype)
    norm = get_norm_layer("instance")(8)
    with torch.no_grad():
        got = norm(x.contiguous(memory_format=torch.channels_last))
        expected = nn.InstanceNorm2d(8)(x)
    assert got.is_contiguous(memory_format=torch.channels_last) and got.dtype == dtype
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(got.float(), expected.float(), rtol=tolerance, atol=tolerance)


def test_channels_last_generator_infers_as_the_contiguous_one():
    torch.manual_seed(0)
    net, x = define_G(3, 3, 4, "resnet_6blocks", "instance").eval(), torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = net(x)
        got = net.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
