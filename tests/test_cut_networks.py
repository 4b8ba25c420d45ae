"""CUT's networks and PatchNCE: the official parameter names and shapes (weights files written by the
official code load and compute what its layers compute), the anti-aliased resampling and the PatchNCE
loss against direct computations, and the projection head's shapes."""
import pytest
import torch
import torch.nn.functional as F

from models import checkpoint
from models.antialias import BlurDownsample, BlurUpsample
from models.cut_networks import define_cut_D, define_cut_G
from models.discriminators import receptive_field
from models.patchnce import MASKED_LOGIT, PatchSampleF, l2_normalise, patch_nce_loss, sample_patch_ids


def conv(key, out_channels, in_channels, kernel):
    return [(f"{key}.weight", (out_channels, in_channels, kernel, kernel)), (f"{key}.bias", (out_channels,))]


def transposed(key, in_channels, out_channels, kernel):
    return [(f"{key}.weight", (in_channels, out_channels, kernel, kernel)), (f"{key}.bias", (out_channels,))]


def blur(key, channels, kernel):
    return [(f"{key}.filt", (channels, 1, kernel, kernel))]


def blocks(first, count, width):
    return [entry for index in range(first, first + count) for inner in (1, 5)
            for entry in conv(f"model.{index}.conv_block.{inner}", width, width, 3)]


# The state dicts of the official code (taesungp/contrastive-unpaired-translation) at its defaults:
# resnet_9blocks, basic, ngf = ndf = 64, instance norm (so every conv has a bias), 3 channels.
OFFICIAL_G = (conv("model.1", 64, 3, 7) + conv("model.4", 128, 64, 3) + blur("model.7", 128, 3)
              + conv("model.8", 256, 128, 3) + blur("model.11", 256, 3) + blocks(12, 9, 256)
              + blur("model.21", 256, 4) + conv("model.22", 128, 256, 3) + blur("model.25", 128, 4)
              + conv("model.26", 64, 128, 3) + conv("model.30", 3, 64, 7))
OFFICIAL_G_NO_ANTIALIAS = (conv("model.1", 64, 3, 7) + conv("model.4", 128, 64, 3) + conv("model.7", 256, 128, 3)
                           + blocks(10, 9, 256) + transposed("model.19", 256, 128, 3)
                           + transposed("model.22", 128, 64, 3) + conv("model.26", 3, 64, 7))
OFFICIAL_D = (conv("model.0", 64, 3, 4) + blur("model.2", 64, 3) + conv("model.3", 128, 64, 4) + blur("model.6", 128, 3)
              + conv("model.7", 256, 128, 4) + blur("model.10", 256, 3) + conv("model.11", 512, 256, 4)
              + conv("model.14", 1, 512, 4))
OFFICIAL_D_NO_ANTIALIAS = (conv("model.0", 64, 3, 4) + conv("model.2", 128, 64, 4) + conv("model.5", 256, 128, 4)
                           + conv("model.8", 512, 256, 4) + conv("model.11", 1, 512, 4))
# The blur kernels the official files hold: outer products of binomial rows, summing to 1 (down) and to
# 4, the stride squared (up).
BLUR_DOWN = torch.tensor([1.0, 2.0, 1.0]).outer(torch.tensor([1.0, 2.0, 1.0])) / 16
BLUR_UP = torch.tensor([1.0, 3.0, 3.0, 1.0]).outer(torch.tensor([1.0, 3.0, 3.0, 1.0])) / 16


def build_G(no_antialias=False, ngf=64):
    return define_cut_G(3, 3, ngf, "resnet_9blocks", "instance", False, "xavier", 0.02, no_antialias, no_antialias)


def build_D(no_antialias=False):
    return define_cut_D(3, 64, "basic", 3, "instance", "xavier", 0.02, no_antialias)


def layout(net):
    return [(key, tuple(value.shape)) for key, value in net.state_dict().items()]


@pytest.mark.parametrize("build, expected", [
    (lambda: build_G(), OFFICIAL_G), (lambda: build_G(no_antialias=True), OFFICIAL_G_NO_ANTIALIAS),
    (lambda: build_D(), OFFICIAL_D), (lambda: build_D(no_antialias=True), OFFICIAL_D_NO_ANTIALIAS),
], ids=["G", "G --no_antialias --no_antialias_up", "D", "D --no_antialias"])
def test_parameter_names_and_shapes_are_the_official_ones(build, expected):
    net = build()
    assert layout(net) == expected
    for key, value in net.state_dict().items():  # the fixed blur kernels, one copy per channel
        if key.endswith(".filt"):
            assert torch.equal(value, (BLUR_DOWN if value.shape[-1] == 3 else BLUR_UP).expand_as(value))


def test_parameter_counts_and_receptive_fields():
    assert sum(p.numel() for p in build_G().parameters()) == 11_378_179  # as CycleGAN's resnet_9blocks
    assert receptive_field(build_D()) == 84 and receptive_field(build_D(no_antialias=True)) == 70


def blur_down(x):
    """Reflection padding by 1, then the [1, 2, 1]^2 / 16 weighted sum of the 3x3 neighbourhood at every
    other pixel, written as a sum of shifted slices."""
    padded, (height, width) = F.pad(x, (1, 1, 1, 1), mode="reflect"), x.shape[-2:]
    taps = (1.0, 2.0, 1.0)
    return sum(taps[i] * taps[j] * padded[..., i:i + height:2, j:j + width:2] for i in range(3) for j in range(3)) / 16


def blur_up_1d(x, dim):
    """Each value becomes two: (previous + 3 * itself) / 4 and (3 * itself + next) / 4, edges repeated."""
    count = x.shape[dim]
    previous = torch.cat([x.narrow(dim, 0, 1), x.narrow(dim, 0, count - 1)], dim)
    following = torch.cat([x.narrow(dim, 1, count - 1), x.narrow(dim, count - 1, 1)], dim)
    return torch.stack([(previous + 3 * x) / 4, (3 * x + following) / 4], dim + 1).flatten(dim, dim + 1)


def blur_up(x):
    return blur_up_1d(blur_up_1d(x, 2), 3)


def test_blur_layers_match_direct_computations():
    x = torch.randn(2, 3, 7, 10)
    torch.testing.assert_close(BlurDownsample(3)(x), blur_down(x))
    assert BlurDownsample(3)(x).shape[-2:] == (4, 5)  # ceil(side / 2)
    torch.testing.assert_close(BlurUpsample(3)(x), blur_up(x))
    constant = torch.full((1, 3, 6, 6), 0.7)
    torch.testing.assert_close(BlurUpsample(3)(constant), torch.full((1, 3, 12, 12), 0.7))


def test_blur_upsampling_compiles_with_its_backward():
    # (Written with F.pad's replicate mode and a transposed conv, its backward failed under inductor.)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), BlurUpsample(4))
    x = torch.randn(1, 2, 8, 8, requires_grad=True)
    torch.compile(net)(x).sum().backward()
    eager = x.grad.clone()
    x.grad = None
    net(x).sum().backward()
    torch.testing.assert_close(x.grad, eager, atol=1e-5, rtol=1e-4)


def official_generator(weights, x):
    """The official anti-aliased resnet_9blocks generator (instance norm), written out with
    torch.nn.functional from the weights of its state dict."""
    def conv2d(x, key, padding=0):
        return F.conv2d(x, weights[key + ".weight"], weights[key + ".bias"], padding=padding)

    def norm_relu(x):
        return F.relu(F.instance_norm(x))

    x = norm_relu(conv2d(F.pad(x, (3, 3, 3, 3), mode="reflect"), "model.1"))
    x = blur_down(norm_relu(conv2d(x, "model.4", 1)))
    x = blur_down(norm_relu(conv2d(x, "model.8", 1)))
    for index in range(12, 21):
        inner = norm_relu(conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), f"model.{index}.conv_block.1"))
        x = x + F.instance_norm(conv2d(F.pad(inner, (1, 1, 1, 1), mode="reflect"), f"model.{index}.conv_block.5"))
    x = norm_relu(conv2d(blur_up(x), "model.22", 1))
    x = norm_relu(conv2d(blur_up(x), "model.26", 1))
    return torch.tanh(conv2d(F.pad(x, (3, 3, 3, 3), mode="reflect"), "model.30"))


def official_discriminator(weights, x):
    """The official anti-aliased basic PatchGAN (instance norm), written out from its state dict."""
    def conv2d(x, key):
        return F.conv2d(x, weights[key + ".weight"], weights[key + ".bias"], padding=1)

    x = blur_down(F.leaky_relu(conv2d(x, "model.0"), 0.2))
    for key in ("model.3", "model.7"):
        x = blur_down(F.leaky_relu(F.instance_norm(conv2d(x, key)), 0.2))
    x = F.leaky_relu(F.instance_norm(conv2d(x, "model.11")), 0.2)
    return conv2d(x, "model.14")


def official_file(expected, path):
    """A weights file with the official layout `expected`: random weights, the true blur kernels."""
    generator = torch.Generator().manual_seed(0)
    weights = {key: torch.randn(shape, generator=generator) * 0.05 for key, shape in expected}
    for key, shape in expected:
        if key.endswith(".filt"):
            weights[key] = (BLUR_DOWN if shape[-1] == 3 else BLUR_UP).expand(shape).clone()
    torch.save(weights, path)
    return weights


@pytest.mark.parametrize("build, expected, reference", [
    (build_G, OFFICIAL_G, official_generator), (build_D, OFFICIAL_D, official_discriminator)], ids=["G", "D"])
def test_a_weights_file_of_the_official_layout_loads_and_computes_the_official_layers(tmp_path, build, expected,
                                                                                        reference):
    weights = official_file(expected, tmp_path / "latest_net.pth")
    net = build()
    checkpoint.load_network(net, str(tmp_path / "latest_net.pth"))  # strict, as test.py loads
    x = torch.rand(1, 3, 40, 36) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference(weights, x), atol=1e-5, rtol=1e-4)


def test_encoder_features_and_the_heads_built_for_them():
    netG = build_G(ngf=4)
    layers = [0, 4, 8, 12, 16]
    features = netG.encode(torch.randn(2, 3, 32, 32), layers)
    assert [f.shape[1:] for f in features] == [(3, 38, 38), (8, 32, 32), (16, 16, 16), (16, 8, 8), (16, 8, 8)]
    assert netG.feature_channels(layers) == [f.shape[1] for f in features]
    head = PatchSampleF(netG.feature_channels(layers), nc=16)
    assert layout(head)[:4] == [("mlp_0.0.weight", (16, 3)), ("mlp_0.0.bias", (16,)), ("mlp_0.2.weight", (16, 16)),
                                ("mlp_0.2.bias", (16,))]
    ids = sample_patch_ids(features, 20)
    sampled = head(features, ids)
    assert [s.shape for s in sampled] == [(40, 16)] * 5  # 2 images x 20 patches per layer
    torch.testing.assert_close(sampled[0].norm(dim=1), torch.ones(40))
    plain = PatchSampleF()(features, ids)  # --netF sample: no weights, the features themselves normalised
    assert not list(PatchSampleF().parameters()) and plain[1].shape == (40, 8)
    torch.testing.assert_close(plain[1][0], l2_normalise(features[1][0, :, ids[1][0] // 32, ids[1][0] % 32][None])[0])


def test_patch_ids_are_distinct_positions_drawn_from_the_seeded_generator():
    features = [torch.zeros(1, 2, 4, 5), torch.zeros(1, 2, 2, 2)]
    torch.manual_seed(1)
    first = sample_patch_ids(features, 6)
    torch.manual_seed(1)
    assert all(torch.equal(a, b) for a, b in zip(first, sample_patch_ids(features, 6)))
    assert len(set(first[0].tolist())) == 6 and max(first[0]) < 20
    assert sorted(first[1].tolist()) == [0, 1, 2, 3]  # a layer with fewer positions gives them all


def direct_patch_nce(queries, keys, images, temperature, all_negatives):
    """Per query: -log softmax of [q.k_own, q.k_other... (own key as MASKED_LOGIT)] / T at the positive."""
    patches = len(queries) // images
    losses = []
    for i, query in enumerate(queries):
        group = range(len(queries)) if all_negatives else range(i // patches * patches, (i // patches + 1) * patches)
        logits = [query @ keys[i]] + [torch.tensor(MASKED_LOGIT) if j == i else query @ keys[j] for j in group]
        losses.append(-torch.log_softmax(torch.stack(logits) / temperature, 0)[0])
    return torch.stack(losses)


@pytest.mark.parametrize("images, temperature, all_negatives", [(1, 0.07, False), (3, 0.07, False), (3, 0.07, True),
                                                                (2, 1.0, False)])
def test_patch_nce_matches_a_direct_computation(images, temperature, all_negatives):
    generator = torch.Generator().manual_seed(images)
    queries = l2_normalise(torch.randn(images * 5, 8, generator=generator))
    keys = l2_normalise(torch.randn(images * 5, 8, generator=generator))
    torch.testing.assert_close(patch_nce_loss(queries, keys, images, temperature, all_negatives),
                               direct_patch_nce(queries, keys, images, temperature, all_negatives))


def test_patch_nce_takes_negatives_from_the_same_image_unless_asked_and_never_trains_the_keys():
    queries = l2_normalise(torch.randn(8, 4)).requires_grad_()
    keys = l2_normalise(torch.randn(8, 4)).requires_grad_()
    other_image_changed = torch.cat([keys[:4], -keys[4:]]).detach()
    same = patch_nce_loss(queries, keys, 2, 0.07)
    torch.testing.assert_close(patch_nce_loss(queries, other_image_changed, 2, 0.07)[:4], same[:4])
    assert not torch.allclose(patch_nce_loss(queries, other_image_changed, 2, 0.07, True)[:4],
                              patch_nce_loss(queries, keys, 2, 0.07, True)[:4])
    same.sum().backward()
    assert queries.grad is not None and keys.grad is None
    aligned = patch_nce_loss(keys.detach(), keys.detach(), 2, 0.07)  # each output patch is its input patch
    assert aligned.mean() < same.mean()


def test_patch_nce_gradients_of_a_batch_are_the_mean_of_each_images():
    # The loss of a batch is the mean of its images' losses (every position sampled, so the draws do
    # not matter); so must the generator's gradient be. It was not when the head sampled a
    # channels-last view: instance norm's CPU backward mishandles such gradients for one image.
    torch.manual_seed(0)
    netG = define_cut_G(3, 3, 4, "resnet_6blocks", "instance", False, "xavier", 0.02)
    head = PatchSampleF(netG.feature_channels([0, 16]), nc=8)
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1

    def gradient(batch):
        netG.zero_grad()
        features = netG.encode(netG(batch), [0, 16])
        with torch.no_grad():
            keys = netG.encode(batch, [0, 16])
            ids = sample_patch_ids(keys, 1000)
        queries, keys = head(features, ids), head(keys, ids)
        sum(patch_nce_loss(q, k, len(batch), 0.07).mean() for q, k in zip(queries, keys)).backward()
        return netG.model[4].weight.grad.clone()

    whole = gradient(images)
    torch.testing.assert_close((gradient(images[:1]) + gradient(images[1:])) / 2, whole, rtol=1e-4,
                               atol=1e-5 * whole.abs().max().item())


def test_a_zero_row_normalises_to_zero_with_a_finite_gradient():
    # A row of zeros comes out of an MLP whose ReLUs are all off for that patch.
    rows = torch.tensor([[0.0, 0.0], [3.0, 4.0]], requires_grad=True)
    normalised = l2_normalise(rows)
    normalised.sum().backward()
    torch.testing.assert_close(normalised.detach(), torch.tensor([[0.0, 0.0], [0.6, 0.8]]))
    assert torch.isfinite(rows.grad).all()
