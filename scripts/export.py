"""Export a trained generator to TorchScript and ONNX, then check each export against eager PyTorch.

    python scripts/export.py --name horse2zebra_cyclegan --formats torchscript,onnx --out exported

Writes <out>/<name>_<net>.pt and <out>/<name>_<net>.onnx (opset 18; batch, height and width are
dynamic). The exported model pads its input by reflection to the generator's size multiple and
crops the output back, as test.py does, so it takes any image whose sides are at least that
multiple (4 for resnet, 128/256 for unet). Architecture flags not given are read from the
experiment's train_opt.txt. For a run trained with --ema_decay the generator's averaged weights are
exported (its usual weights file), with --raw_weights its raw weights (<epoch>_net_<net>_raw.pth). Each export is run on sample images at two sizes (random inputs
without --sample_images) and the largest absolute difference from PyTorch is printed; above
--tolerance the command fails with exit status 2. A StyleGAN2 generator (--model sincut, or cut with
--netG stylegan2) draws noise in every pass, in its exports too: TorchScript is checked from the same
seed as PyTorch, ONNX (whose runtime draws its own numbers) on a twin export with the noise off.
"""
import argparse
import glob
import os
import sys
import tempfile
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine.image_lanes import draws_random_numbers  # noqa: E402
from models.blocks import RESBLOCK_CHOICES, UPSAMPLE_CHOICES, fold_weight_norm  # noqa: E402
from models.checkpoint import (  # noqa: E402
    checkpoint_path,
    describe_weights,
    load_network,
    require_raw_weights,
    saved_prefixes,
    weights_file,
)
from models.cut_model import cut_architecture_flags, cut_generator  # noqa: E402
from models.generators import (  # noqa: E402
    GENERATOR_OPTION_DEFAULTS,
    define_G,
    generator_option_flags,
    generator_options,
)
from models.norms import NORM_CHOICES  # noqa: E402
from models.sincut_model import SINCUT_DEFAULTS  # noqa: E402
from models.stylegan2_layers import noise_off  # noqa: E402
from options.base_options import NET_G_CHOICES, add_raw_weights_flag, read_saved_options  # noqa: E402
from util.errors import UserError, exit_on_user_error  # noqa: E402
from util.util import mkdirs  # noqa: E402

FORMATS = ("torchscript", "onnx")
ONNX_OPSET = 18
ONNX_PACKAGES = "pip install onnx==1.23.2 onnxscript==0.7.2 onnxruntime==1.32.0"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# Architecture flags and their defaults when neither the command line nor train_opt.txt has them.
ARCHITECTURE_DEFAULTS = {"model": "cycle_gan", "netG": "resnet_9blocks", "ngf": 64, "norm": "instance",
                         "no_dropout": False, "input_nc": 3, "output_nc": 3, **GENERATOR_OPTION_DEFAULTS,
                         "normG": None, "no_antialias": False, "no_antialias_up": False,
                         "stylegan2_G_num_downsampling": 1, "load_size": 286, "crop_size": 256}
# The models whose generator is CUT's, and the architecture defaults of one that has its own (sincut).
CUT_MODELS = ("cut", "sincut")
MODEL_ARCHITECTURE_DEFAULTS = {"sincut": {key: value for key, value in SINCUT_DEFAULTS.items()
                                          if key in ARCHITECTURE_DEFAULTS}}


class PaddedGenerator(nn.Module):
    """A generator that takes any image size: pad by reflection to `multiple`, run, crop back.

    generator: the plain network; multiple: the side multiple it needs (its size_multiple).
    """

    def __init__(self, generator, multiple: int):
        super().__init__()
        self.generator = generator
        self.multiple = multiple

    def forward(self, x):
        height, width = x.shape[-2], x.shape[-1]
        pad_h = (self.multiple - height % self.multiple) % self.multiple
        pad_w = (self.multiple - width % self.multiple) % self.multiple
        padded = F.pad(x, [0, pad_w, 0, pad_h], mode="reflect")
        return self.generator(padded)[:, :, :height, :width]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", required=True, help="experiment name (folder under --checkpoints_dir)")
    parser.add_argument("--checkpoints_dir", default="./checkpoints", help="where experiments are saved")
    parser.add_argument("--epoch", default="latest", help="which epoch to export: 'latest', a number or iter_<n>")
    parser.add_argument("--net", default=None,
                        help="which network file: G_A, G_B or G (default: G_A, else G for pretrained models)")
    parser.add_argument("--model", default=None,
                        help="the model the weights come from: cut and sincut build CUT's generator (sincut with its "
                             "defaults), any other name the CycleGAN/pix2pix one")
    parser.add_argument("--netG", default=None, choices=NET_G_CHOICES, help="generator architecture")
    parser.add_argument("--ngf", type=int, default=None, help="generator filters in the last conv layer")
    parser.add_argument("--norm", default=None, choices=NORM_CHOICES, help="normalisation layers")
    parser.add_argument("--no_dropout", action="store_true", default=None, help="no dropout in the generator")
    parser.add_argument("--input_nc", type=int, default=None, help="input image channels")
    parser.add_argument("--output_nc", type=int, default=None, help="output image channels")
    parser.add_argument("--upsample", default=None, choices=UPSAMPLE_CHOICES, help="the generator's x2 upsampling")
    parser.add_argument("--resblock", default=None, choices=RESBLOCK_CHOICES, help="the resnet generator's blocks")
    parser.add_argument("--residual_output", action="store_true", default=None,
                        help="the generator predicts a change to its input")
    parser.add_argument("--affine_output", action="store_true", default=None,
                        help="the generator predicts a per-pixel colour transform of its input")
    parser.add_argument("--affine_smooth", type=int, default=None, metavar="PIXELS",
                        help="--affine_output's transform averaged over squares of PIXELS x PIXELS")
    add_raw_weights_flag(parser)
    parser.add_argument("--normG", default=None, choices=NORM_CHOICES,
                        help="--model cut: normalisation layers of the generator (None: --norm's)")
    parser.add_argument("--no_antialias", action="store_true", default=None,
                        help="--model cut: the generator halves with stride-2 convolutions, not a blur")
    parser.add_argument("--no_antialias_up", action="store_true", default=None,
                        help="--model cut: the generator doubles with transposed convolutions, not a blur")
    parser.add_argument("--stylegan2_G_num_downsampling", type=int, default=None,
                        help="--netG stylegan2/smallstylegan2: the generator's halvings")
    parser.add_argument("--load_size", type=int, default=None,
                        help="--netG stylegan2/smallstylegan2: the training's, which with --crop_size sets the widths")
    parser.add_argument("--crop_size", type=int, default=None, help="see --load_size")
    parser.add_argument("--formats", default="torchscript,onnx", help="comma-separated: torchscript, onnx")
    parser.add_argument("--out", default="./exported", help="folder for the exported files")
    parser.add_argument("--sample_images", nargs="*", default=[],
                        help="image files or folders to check the exports on (default: random inputs)")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest allowed absolute difference between an export and PyTorch")
    return parser, parser.parse_args(argv)


def resolve_architecture(opt, parser):
    """Fill the architecture flags left out from train_opt.txt of the experiment, then defaults."""
    saved_path = os.path.join(opt.checkpoints_dir, opt.name, "train_opt.txt")
    saved = read_saved_options(saved_path, parser) if os.path.isfile(saved_path) else {}
    if opt.model is None:
        opt.model = saved.get("model", ARCHITECTURE_DEFAULTS["model"])
    defaults = {**ARCHITECTURE_DEFAULTS, **MODEL_ARCHITECTURE_DEFAULTS.get(opt.model, {})}
    for key, default in defaults.items():
        if getattr(opt, key) is None:
            setattr(opt, key, saved.get(key, default))


def find_checkpoint(opt):
    """(net name, path) of the weights file to export (the raw weights with --raw_weights, where a run
    with --ema_decay saved them); UserError naming what exists if absent."""
    save_dir = os.path.join(opt.checkpoints_dir, opt.name)
    for net in [opt.net] if opt.net else ["G_A", "G"]:
        if os.path.isfile(checkpoint_path(save_dir, opt.epoch, net)):
            return net, weights_file(save_dir, opt.epoch, net, opt.raw_weights)
    found = saved_prefixes(save_dir) if os.path.isdir(save_dir) else []
    choice = f"saved there: {', '.join(found)}" if found else "check --name and --checkpoints_dir"
    raise UserError(f"no checkpoint {checkpoint_path(save_dir, opt.epoch, opt.net or 'G_A')}; "
                    f"pick an existing --epoch/--net ({choice})")


def build_generator(opt, path):
    """The generator of `opt`'s flags with the weights of `path`, wrapped to take any size, in eval mode
    (weight normalisation folded into plain weights, which TorchScript can run), and what the file holds
    (models.checkpoint.weights_kind's (kind, decay))."""
    options = generator_options(opt)
    flags = [f"--netG {opt.netG} --ngf {opt.ngf} --norm {opt.norm}"] + (["--no_dropout"] if opt.no_dropout else [])
    if opt.model in CUT_MODELS:
        opt.init_type, opt.init_gain = "normal", 0.02  # replaced by the loaded weights
        net = cut_generator(opt)
        flags = [f"--model {opt.model}"] + flags + cut_architecture_flags(opt)
    else:
        net = define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm, not opt.no_dropout, **options)
    hint = " ".join(flags + generator_option_flags(**options))
    held = load_network(net, path, hint)
    return PaddedGenerator(fold_weight_norm(net), net.size_multiple).eval(), held


def image_files(sources):
    """The image files named by `sources` (files, or folders searched one level deep), sorted."""
    files = []
    for source in sources:
        if os.path.isdir(source):
            files += sorted(p for p in glob.glob(os.path.join(glob.escape(source), "*"))
                            if p.lower().endswith(IMAGE_EXTENSIONS))
        elif os.path.isfile(source):
            files.append(source)
        else:
            raise UserError(f"--sample_images {source} does not exist; give image files or a folder of images")
    if sources and not files:
        raise UserError(f"no images in --sample_images {' '.join(sources)}; give png/jpg files or their folder")
    return files


def to_tensor(image, channels):
    """A PIL image as a (1, channels, H, W) float tensor in [-1, 1], as test.py feeds the networks."""
    array = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.float32) / 127.5 - 1.0
    array = array[:, :, None] if array.ndim == 2 else array
    return torch.from_numpy(array.transpose(2, 0, 1).copy()).unsqueeze(0)


def check_inputs(files, channels, multiple):
    """Inputs at two different sizes: the first sample image at its own size and at 3/4 of it (random
    inputs when there are no images). Sides never go below `multiple`."""
    if not files:
        side = max(64, multiple)
        generator = torch.Generator().manual_seed(0)
        return [torch.rand(1, channels, side, side + 8, generator=generator) * 2 - 1,
                torch.rand(2, channels, side + 6, side + 3, generator=generator) * 2 - 1]
    try:
        with Image.open(files[0]) as image:
            width, height = image.size
            sizes = [(max(multiple, width), max(multiple, height)),
                     (max(multiple, width * 3 // 4 + 1), max(multiple, height * 3 // 4 + 1))]
            return [to_tensor(image.resize(size, Image.BICUBIC), channels) for size in sizes]
    except OSError as err:
        raise UserError(f"cannot read sample image {files[0]} ({err}); give a valid image file")


def export_torchscript(model, path):
    """Script `model` (scripting keeps the size-dependent padding dynamic) and save it; return a runner."""
    with warnings.catch_warnings():  # TorchScript is deprecated in favour of torch.export, yet still the format C++ loads
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(model).save(path)
        loaded = torch.jit.load(path)
    return loaded


def export_onnx(model, path, example):
    """Export `model` to ONNX with dynamic batch, height and width; return an onnxruntime runner."""
    try:
        import onnx  # noqa: F401  (torch.onnx needs it; imported here for a clear message)
        import onnxruntime
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise UserError(f"ONNX export needs the package {err.name}; install it with: {ONNX_PACKAGES}")
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height", min=2), 3: torch.export.Dim("width", min=2)}
    program = torch.onnx.export(model, (example,), input_names=["image"], output_names=["output"],
                                dynamic_shapes={"x": dims}, opset_version=ONNX_OPSET, dynamo=True,
                                external_data=False, verbose=False)
    program.save(path)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"image": x.numpy()})[0])


def max_difference(model, runner, inputs):
    """The largest absolute difference between `runner` and eager `model` over `inputs`. Both passes
    start from the same torch seed, so that a generator that draws noise (StyleGAN2) draws the same in
    PyTorch and TorchScript."""
    largest = 0.0
    with torch.no_grad():
        for x in inputs:
            torch.manual_seed(0)
            expected = model(x)
            torch.manual_seed(0)
            largest = max(largest, (runner(x) - expected).abs().max().item())
    return largest


def checked_onnx(model, path, inputs):
    """Export `model` to ONNX at `path`; return (the largest difference from PyTorch over `inputs`, a note).
    onnxruntime draws its own noise, so a generator that injects noise is checked as a twin export with
    the noise off (the file written keeps it)."""
    if not draws_random_numbers([model]):
        return max_difference(model, export_onnx(model, path, inputs[0]), inputs), ""
    with noise_off(model), tempfile.TemporaryDirectory() as folder:
        twin = export_onnx(model, os.path.join(folder, "noise_off.onnx"), inputs[0])
        difference = max_difference(model, twin, inputs)
    export_onnx(model, path, inputs[0])
    return difference, " (checked with the noise off: onnxruntime draws its own)"


@exit_on_user_error
def main(argv=None):
    parser, opt = parse_args(argv)
    formats = [f.strip() for f in opt.formats.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise UserError(f"unknown --formats {','.join(unknown) or '(empty)'}; choose from {','.join(FORMATS)}")
    net_name, path = find_checkpoint(opt)
    resolve_architecture(opt, parser)
    model, (kind, decay) = build_generator(opt, path)
    if opt.raw_weights:
        require_raw_weights(path, kind, decay)
    print(f"exporting the {describe_weights([(path, kind, decay)])}")
    inputs = check_inputs(image_files(opt.sample_images), opt.input_nc, model.multiple)
    mkdirs(opt.out)
    stem = os.path.join(opt.out, f"{opt.name}_{net_name}")
    failures = []
    for fmt in formats:
        with torch.no_grad():
            if fmt == "torchscript":
                out_path = stem + ".pt"
                difference, note = max_difference(model, export_torchscript(model, out_path), inputs), ""
            else:
                out_path = stem + ".onnx"
                difference, note = checked_onnx(model, out_path, inputs)
        sizes = ", ".join("x".join(map(str, x.shape[-2:])) for x in inputs)
        print(f"{fmt}: wrote {out_path}; max abs difference from PyTorch {difference:.3g} (inputs {sizes}){note}")
        if difference > opt.tolerance:
            failures.append(f"{fmt} differs by {difference:.3g}")
    if failures:
        raise UserError(f"export check failed: {'; '.join(failures)} > --tolerance {opt.tolerance:g}; "
                        "raise --tolerance if this is rounding, else report the architecture")


if __name__ == "__main__":
    main()
