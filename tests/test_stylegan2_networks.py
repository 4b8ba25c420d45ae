"""The StyleGAN2 networks of the official CUT code (--netG stylegan2/smallstylegan2, --netD stylegan2):
the official parameter names and shapes, outputs equal to the official networks' for the same weights,
the widths' dependence on the training resolution, the encoder features PatchNCE reads, the noise
injection, and the refusals of the models and sizes they do not fit."""
import pytest
import torch

from engine.image_lanes import draws_random_numbers
from models.cut_networks import define_cut_D, define_cut_G
from models.discriminators import define_D, receptive_field
from models.generators import define_G
from models.stylegan2_networks import StyleGAN2Discriminator, define_stylegan2_G, training_resolution
from util.errors import UserError


def conv_layer(key, out_channels, in_channels, kernel, downsample=False):
    """A ConvLayer with its activation: [blur kernel], conv weight, the activation's bias."""
    blur = [(f"{key}.0.kernel", (4, 4))] if downsample else []
    first = len(blur)
    return blur + [(f"{key}.{first}.weight", (out_channels, in_channels, kernel, kernel)),
                   (f"{key}.{first + 1}.bias", (1, out_channels, 1, 1))]


def res_block(key, in_channels, out_channels, downsample):
    skip = [(f"{key}.skip.0.kernel", (4, 4)), (f"{key}.skip.1.weight", (out_channels, in_channels, 1, 1))]
    return (conv_layer(f"{key}.conv1", in_channels, in_channels, 3)
            + conv_layer(f"{key}.conv2", out_channels, in_channels, 3, downsample) + (skip if downsample else []))


def styled_conv(key, in_channels, out_channels):
    return [(f"{key}.conv.weight", (1, out_channels, in_channels, 3, 3)), (f"{key}.conv.blur.kernel", (4, 4)),
            (f"{key}.noise.weight", (1,)), (f"{key}.activate.bias", (1, out_channels, 1, 1))]


# The official state dicts at sincut's defaults: ngf 10 and ndf 8 at 64 px (min(--load_size 1024,
# --crop_size 64)), one halving: widths 80 at 64 px and 160 at 32 px for G; 32, 64, 128, 256, 384 for D.
OFFICIAL_SINCUT_G = (conv_layer("encoder.convs.1", 80, 3, 1) + res_block("encoder.convs.2", 80, 160, True)
                     + [entry for i in range(3, 6) for entry in res_block(f"encoder.convs.{i}", 160, 160, False)]
                     + [entry for i in range(3) for entry in res_block(f"decoder.convs.{i}", 160, 160, False)]
                     + styled_conv("decoder.convs.3", 160, 80) + conv_layer("decoder.convs.4", 3, 80, 1))
OFFICIAL_SINCUT_D = (conv_layer("convs.0", 32, 3, 1)
                     + [entry for i, (a, b) in enumerate([(32, 64), (64, 128), (128, 256), (256, 384)], 1)
                        for entry in res_block(f"convs.{i}", a, b, True)]
                     + conv_layer("final_conv", 384, 384, 3)
                     + [("final_linear.0.weight", (384, 384 * 16)), ("final_linear.0.bias", (384,)),
                        ("final_linear.1.weight", (1, 384)), ("final_linear.1.bias", (1,))])


def layout(net):
    return {key: tuple(value.shape) for key, value in net.state_dict().items()}


def test_parameter_names_and_shapes_are_the_official_ones():
    assert layout(define_stylegan2_G(3, 3, 10, "stylegan2", 64, 1)) == dict(OFFICIAL_SINCUT_G)
    assert layout(StyleGAN2Discriminator(3, 8, 64)) == dict(OFFICIAL_SINCUT_D)
    # smallstylegan2: one block on each side, and its noise weight though it injects none.
    small = layout(define_stylegan2_G(3, 3, 10, "smallstylegan2", 64, 1))
    assert [key for key in small if key.endswith("noise.weight")] == ["decoder.convs.1.noise.weight"]
    assert len(small) == len(conv_layer("", 1, 1, 1)) * 2 + len(res_block("", 80, 160, True)) + 2 * len(
        res_block("", 160, 160, False)) + len(styled_conv("", 160, 80))


@pytest.mark.parametrize("sizes, resolution, first_width", [
    ((1024, 64), 64, 80), ((286, 256), 256, 20), ((48, 40), 32, 160), ((12, 12), 16, 320), ((3, 3), 4, 512)])
def test_the_widths_follow_the_power_of_two_nearest_the_smaller_size(sizes, resolution, first_width):
    assert training_resolution(*sizes) == resolution
    generator = define_stylegan2_G(3, 3, 10, "stylegan2", resolution, 0)
    assert generator.state_dict()["encoder.convs.1.0.weight"].shape[0] == first_width  # capped at 512


@pytest.mark.parametrize("build, message", [
    (lambda: training_resolution(1500, 2000), r"the StyleGAN2 networks are made for a resolution between 4 and 1024 "
                                              r"px, the power of two nearest to min\(--load_size, --crop_size\) = "
                                              r"1500; choose sizes in that range"),
    (lambda: define_stylegan2_G(3, 3, 8, "stylegan2", 16, 3), r"--stylegan2_G_num_downsampling 3 halves the 16 px "
                                                              r"training resolution to 2 px, .*"),
    (lambda: define_G(3, 3, 8, "stylegan2"), r"--netG stylegan2 is a generator of --model cut only .*; train it "
                                             r"with --model cut, or choose --netG resnet_9blocks or .*"),
    (lambda: define_D(3, 8, "stylegan2"), r"--netD stylegan2 is a discriminator of --model cut only .*"),
])
def test_what_the_networks_cannot_take_is_refused_in_one_line(build, message):
    with pytest.raises(UserError, match=f"^{message}$"):
        build()


def pseudo_random_fill(net):
    """Weights from a fixed formula (the same as for the official networks' reference outputs below)."""
    with torch.no_grad():
        for i, (_, parameter) in enumerate(sorted(net.named_parameters())):
            index = torch.arange(parameter.numel(), dtype=torch.float64).reshape(parameter.shape)
            parameter.copy_(torch.frac(torch.sin(12.9898 * index + 78.233 * i).abs() * 43758.5453) * 2 - 1)


def pattern(side):
    return torch.cos(0.37 * torch.arange(3 * side * side, dtype=torch.float64).reshape(1, 3, side, side)).float()


def test_outputs_equal_the_official_networks_for_the_same_weights():
    # Reference outputs of the official StyleGAN2Generator (ngf 4, 16 px, one halving; noise weights 0)
    # and StyleGAN2Discriminator (ndf 16, 16 px) with pseudo_random_fill's weights.
    generator = define_stylegan2_G(3, 3, 4, "stylegan2", 16, 1)
    pseudo_random_fill(generator)
    with torch.no_grad():
        for name, parameter in generator.named_parameters():
            if name.endswith("noise.weight"):
                parameter.zero_()
        output = generator(pattern(16))
    assert output[0, :, ::5, ::5].flatten()[:12].tolist() == pytest.approx(
        [1.00727, 1.00942, 1.01554, 1.10588, 0.86185, 0.82561, 0.83681, 1.13048, 0.85038, 0.85623, 0.80139, 1.10032],
        abs=2e-5)
    discriminator = StyleGAN2Discriminator(3, 16, 16)
    pseudo_random_fill(discriminator)
    with torch.no_grad():
        scores = discriminator(torch.cat([pattern(16), pattern(16).flip(3) * 0.5 + 0.2]))
    assert scores.shape == (2, 1) and scores.flatten().tolist() == pytest.approx([1.49403, 1.49271], abs=2e-5)


def test_the_encoder_features_patchnce_reads():
    generator = define_cut_G(3, 3, 4, "stylegan2", "instance", False, "xavier", 0.02, resolution=32,
                             num_downsampling=2)
    x = torch.rand(2, 3, 32, 32)
    features = generator.encode(x, [0, 2, 3, 5])
    assert features[0] is x and [tuple(f.shape[1:]) for f in features[1:]] == [(128, 16, 16), (256, 8, 8),
                                                                                (256, 8, 8)]
    assert generator.feature_channels([0, 2, 3, 5]) == [3, 128, 256, 256]
    assert len(generator.feature_layers) == 2 + 2 + 3 and generator.size_multiple == 4
    with generator.capturing([0, 2, 3, 5]) as captured, torch.no_grad():
        generator(x)
    assert all(torch.equal(a, b) for a, b in zip(captured[0], features))


def test_noise_is_drawn_in_every_pass_from_torchs_generator():
    generator = define_stylegan2_G(3, 3, 4, "stylegan2", 16, 1).eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        generator.decoder.convs[3].noise.weight.fill_(0.5)
        torch.manual_seed(1)
        first, second = generator(x), generator(x)
        torch.manual_seed(1)
        again = generator(x)
    assert not torch.equal(first, second) and torch.equal(first, again)
    assert draws_random_numbers([generator])  # so test.py translates with one lane, in a fixed order
    small = define_stylegan2_G(3, 3, 4, "smallstylegan2", 16, 1)
    with torch.no_grad():
        small.decoder.convs[1].noise.weight.fill_(0.5)
        assert torch.equal(small(x), small(x)) and not draws_random_numbers([small])


def test_the_discriminator_judges_whole_images_of_its_resolution():
    discriminator = define_cut_D(3, 8, "stylegan2", 3, "instance", "xavier", 0.02, resolution=32)
    assert receptive_field(discriminator) == 32
    assert discriminator(torch.rand(3, 3, 32, 32)).shape == (3, 1)
    with pytest.raises(ValueError, match="judges 32x32 images"):
        discriminator(torch.rand(1, 3, 64, 64))
