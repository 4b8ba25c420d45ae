"""Layers that waste no work under --amp bf16 on the CPU (models/reflection_pad.py, models/norms.py): in
fp32 they compute what torch's own layers compute, bit for bit; under autocast the same forward values
and gradients within bf16's rounding, without converting activations between dtypes or copying
gradients."""
import copy

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from models.blocks import ResizeConv2d
from models.generators import define_G
from models.norms import InstanceNorm2d
from models.reflection_pad import ReflectionPad2d


def with_torch_layers(net):
    """A copy of `net` whose reflection pads and instance norms are torch's own (the layers before ours)."""
    net = copy.deepcopy(net)
    for module in list(net.modules()):
        for name, child in module.named_children():
            if isinstance(child, ReflectionPad2d):
                setattr(module, name, nn.ReflectionPad2d(child.padding))
            elif isinstance(child, InstanceNorm2d):
                setattr(module, name, nn.InstanceNorm2d(child.num_features))
    return net


def training_pass(net, x, amp=False, biases=True):
    """[output, input gradient, every parameter's gradient] of one forward and backward pass, with
    the forward under bf16 autocast when `amp`; without the biases' gradients unless `biases`."""
    net.zero_grad()
    x = x.clone().requires_grad_()  # as in the cycle pass G_B(G_A(A)), where the input needs a gradient
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        out = net(x)
    out.float().square().mean().backward()
    return [out.detach(), x.grad] + [p.grad for p in net.parameters() if biases or p.dim() > 1]


def relative_distance(got, expected):
    return ((got.float() - expected.float()).norm() / expected.float().norm()).item()


class RecordedOps(TorchDispatchMode):
    """Records the name and first argument of every aten operation run inside it."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls.append((func.overloadpacket.__name__, args[0] if args else None))
        return func(*args, **(kwargs or {}))


@pytest.fixture
def generator():
    torch.manual_seed(0)
    return define_G(3, 3, 4, "resnet_6blocks", "instance")


@pytest.mark.parametrize("batch", [1, 2])
def test_in_fp32_the_generator_computes_what_torch_layers_compute_bit_for_bit(generator, batch):
    x = torch.rand(batch, 3, 32, 32) * 2 - 1
    ours, torchs = training_pass(generator, x), training_pass(with_torch_layers(generator), x)
    assert all(torch.equal(a, b) for a, b in zip(ours, torchs))


def test_resize_upsampling_pads_like_a_reflect_padded_conv():
    torch.manual_seed(0)
    layer = ResizeConv2d(4, 2, use_bias=True)
    reference = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(4, 2, 3, padding=1, padding_mode="reflect"))
    reference[1].load_state_dict(layer.conv.state_dict())
    x = torch.randn(1, 4, 8, 8)
    assert torch.equal(layer(x), reference(x))
    assert list(layer.state_dict()) == ["conv.weight", "conv.bias"]  # --upsample resize checkpoints still load


def test_under_bf16_autocast_the_forward_is_torch_layers_and_gradients_stay_within_bf16_rounding(generator):
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    # (The biases before instance norm are left out: their exact gradient is zero, nothing to compare with.)
    ours = training_pass(generator, x, amp=True, biases=False)
    torchs = training_pass(with_torch_layers(generator), x, amp=True, biases=False)
    fp32 = training_pass(generator, x, biases=False)
    # Padding copies values, so padding in bf16 gives exactly what fp32 padding and the cast after it give.
    assert ours[0].dtype == torch.bfloat16 and torch.equal(ours[0], torchs[0])
    for got, before, exact in zip(ours[1:], torchs[1:], fp32[1:]):
        # Only the gradients at the borders, summed in bf16, round differently: a few percent of how far
        # bf16 gradients are from fp32 ones (20-30% here), and no further from fp32 than before.
        assert relative_distance(got, before) < 0.05
        assert relative_distance(got, exact) < 1.1 * relative_distance(before, exact)


def converted_feature_maps(net, x):
    """The shapes of the feature maps (one image of more channels than the 3 of a picture) converted
    between dtypes in a bf16 autocast training pass of `net`."""
    with RecordedOps() as recorded:
        training_pass(net, x, amp=True)
    shapes = {tuple(tensor.shape) for name, tensor in recorded.calls if name == "_to_copy"}
    return {shape for shape in shapes if len(shape) == 4 and shape[0] == 1 and shape[1] > 3}


def test_under_bf16_autocast_no_feature_map_changes_dtype(generator):
    """Torch's CPU autocast pads in fp32: before each 3x3 and 7x7 conv the feature map went to fp32 and back,
    and so did its gradient. Now only the fp32 weights (autocast keeps them in fp32) and the picture are cast."""
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert converted_feature_maps(generator, x) == set()
    assert converted_feature_maps(with_torch_layers(generator), x)  # the conversions that are gone


def test_under_autocast_the_padding_gradient_is_pytorchs_in_fewer_passes():
    """The folded gradient adds what PyTorch's kernel adds (exactly so for small whole numbers, whose sums
    bf16 holds exactly), for unequal paddings on every side, and can be differentiated again."""
    x = torch.zeros(2, 3, 9, 8, dtype=torch.bfloat16, requires_grad=True)
    grad = torch.randint(-8, 9, (2, 3, 13, 11)).to(torch.bfloat16)
    padding = [2, 1, 1, 3]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        padded = ReflectionPad2d(padding)(x)
    (folded,) = torch.autograd.grad(padded, x, grad)
    expected = torch.ops.aten.reflection_pad2d_backward(grad, x.detach(), padding)
    assert padded.dtype == torch.bfloat16 and torch.equal(folded, expected)
    x64 = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.autograd.gradgradcheck(lambda t: ReflectionPad2d(padding)(t), (x64,))


@pytest.mark.parametrize("norm, copies", [(InstanceNorm2d, False), (nn.InstanceNorm2d, True)])
def test_instance_norm_of_one_image_lets_the_inplace_relu_after_it_copy_no_gradient(norm, copies):
    """Torch's instance norm returns a view, and an in-place ReLU on a view makes autograd copy the
    gradient in backward (clone, as_strided); ours returns batch norm's own tensor when training on one image."""
    layers = nn.Sequential(norm(8), nn.ReLU(inplace=True))
    x = torch.randn(1, 8, 16, 16, requires_grad=True)
    with RecordedOps() as recorded:
        layers(x).sum().backward()
    names = {name for name, _ in recorded.calls}
    assert bool(names & {"clone", "copy_", "as_strided"}) == copies


def in_original_order(net):
    """A copy of `net` with each ReLU before the reflection pad that ours puts it after (the original
    tool's order; models.blocks.padded_relu)."""
    net = copy.deepcopy(net)
    for module in list(net.modules()):
        if isinstance(module, nn.Sequential):
            layers = list(module)
            for index in range(len(layers) - 1):
                if isinstance(layers[index], nn.ReflectionPad2d) and isinstance(layers[index + 1], nn.ReLU):
                    module[index], module[index + 1] = layers[index + 1], layers[index]
    return net


def saved_bytes(net, x, amp=False):
    """Bytes of the distinct tensors autograd keeps for the backward pass of one forward pass of `net`
    (parameters included)."""
    kept = {}

    def keep(tensor):
        kept[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        training_pass(net, x, amp)
    return sum(kept.values())


@pytest.mark.parametrize("upsample, resblock, memory_format, amp", [
    ("transpose", "original", torch.contiguous_format, False), ("resize", "bottleneck", torch.contiguous_format, False),
    ("transpose", "basic", torch.channels_last, False), ("resize", "original", torch.contiguous_format, True)])
def test_the_relu_after_the_padding_trains_bit_for_bit_as_before_and_keeps_less(upsample, resblock, memory_format, amp):
    torch.manual_seed(0)
    net = define_G(3, 3, 4, "resnet_6blocks", "instance", upsample=upsample, resblock=resblock)
    # Under autocast the reference keeps our bf16 padding (torch's converts to fp32 and back).
    original = in_original_order(net if amp else with_torch_layers(net))
    assert isinstance(original.model[-4], nn.ReLU) and isinstance(original.model[-3], nn.ReflectionPad2d)
    net, original = net.to(memory_format=memory_format), original.to(memory_format=memory_format)
    x = (torch.rand(1, 3, 32, 32) * 2 - 1).to(memory_format=memory_format)
    ours, before = training_pass(net, x, amp), training_pass(original, x, amp)
    assert all(torch.equal(a, b) for a, b in zip(ours, before))
    # Per resnet_6blocks pass at ngf 4: an unpadded feature map less for each padded ReLU, and (fp32)
    # no input of any padding.
    assert saved_bytes(net, x, amp) < 0.95 * saved_bytes(original, x, amp)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_fp32_padding_keeps_only_the_shape_and_gives_torchs_gradient_in_its_layout(memory_format):
    x = torch.randn(2, 3, 9, 8).to(memory_format=memory_format).requires_grad_()
    grad = torch.randn(2, 3, 13, 11).to(memory_format=memory_format)
    kept = []
    with torch.autograd.graph.saved_tensors_hooks(lambda tensor: kept.append(tensor) or tensor, lambda tensor: tensor):
        padded = ReflectionPad2d([2, 1, 1, 3])(x)
    (ours,) = torch.autograd.grad(padded, x, grad)
    (torchs,) = torch.autograd.grad(nn.ReflectionPad2d([2, 1, 1, 3])(x), x, grad)
    assert kept == [] and torch.equal(padded, nn.ReflectionPad2d([2, 1, 1, 3])(x))
    assert torch.equal(ours, torchs) and ours.stride() == torchs.stride()
