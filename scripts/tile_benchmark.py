"""Measure tiled inference (test.py --tile): the peak memory of translating a large image, and how far
tiled results are from whole-image ones where those still fit.

    python scripts/tile_benchmark.py memory --size 4096 --tile 512 --tile_overlap 64
    python scripts/tile_benchmark.py memory --size 1024 --tile 0            # whole-image inference
    python scripts/tile_benchmark.py compare --size 1024 --tile 256 --tile_overlap 64 --out tile_compare

memory: runs test.py as a user would (--model test, --preprocess none, --num_threads 0, on the CPU) on
one picture of --size x --size px, with a generator of random weights (--netG, --ngf, --norm), in a child
process; prints its wall time and peak resident memory (the child's high-water mark, everything
included: the loaded picture, the output, the saved PNGs).
compare: translates one picture whole and in tiles with each --tile_statistics, in this process, prints
the PSNR of each tiled result against the whole one, and writes to --out the input, the whole result,
each tiled result and its difference to the whole one (amplified DIFFERENCE_GAIN times).
The picture is --image PATH scaled to --size, or else a mosaic of four photos that ship with
scikit-image. --weights PATH uses trained weights (e.g. checkpoints/NAME/latest_net_G_A.pth, given with
that run's --netG, --ngf and --norm) instead of random ones.
"""
import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from data.base_dataset import to_signed_tensor  # noqa: E402  (the repository root is on the path only now)
from metrics.registry import psnr  # noqa: E402
from models.generators import GENERATOR_CHOICES  # noqa: E402
from models.norms import NORM_CHOICES  # noqa: E402
from models.size_padding import attach_size_padding  # noqa: E402
from models.tiling import STATISTICS_CHOICES, attach_tiling  # noqa: E402
from scripts.benchmarks.bench_generator import random_generator, save_test_weights  # noqa: E402
from util.errors import UserError, exit_on_user_error  # noqa: E402
from util.util import save_image, tensor2im  # noqa: E402

MOSAIC_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
DIFFERENCE_GAIN = 8


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=("memory", "compare"), help="what to measure (see the file's docstring)")
    parser.add_argument("--size", type=int, default=4096, help="side of the square picture in px (default: %(default)s)")
    parser.add_argument("--tile", type=int, default=512, help="test.py --tile; 0: whole images (default: %(default)s)")
    parser.add_argument("--tile_overlap", type=int, default=64, help="test.py --tile_overlap (default: %(default)s)")
    parser.add_argument("--tile_statistics", choices=STATISTICS_CHOICES, default="image",
                        help="memory: test.py --tile_statistics (compare tries each) (default: %(default)s)")
    parser.add_argument("--netG", choices=GENERATOR_CHOICES, default="resnet_9blocks", help="(default: %(default)s)")
    parser.add_argument("--ngf", type=int, default=64, help="(default: %(default)s)")
    parser.add_argument("--norm", choices=NORM_CHOICES, default="instance", help="(default: %(default)s)")
    parser.add_argument("--weights", help="a generator's weights file (default: random weights)")
    parser.add_argument("--image", help="the picture, scaled to --size (default: a mosaic of scikit-image's photos)")
    parser.add_argument("--out", default="./tile_compare", help="compare: folder for the pictures (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.size < 1 or args.ngf < 1 or args.tile < 0:
        raise UserError("--size and --ngf must be at least 1 and --tile at least 0")
    if args.mode == "compare" and not args.tile:
        raise UserError("compare needs tiles to compare with the whole image; give --tile, e.g. --tile 256")
    return args


def picture(args):
    """The (1, 3, size, size) picture in [-1, 1]: --image scaled to --size, or the mosaic of MOSAIC_PHOTOS."""
    if args.image:
        with Image.open(args.image) as image:
            return to_signed_tensor(image.convert("RGB").resize((args.size,) * 2, Image.Resampling.BICUBIC))[None]
    from skimage import data
    half = (args.size + 1) // 2
    quarters = []
    for name in MOSAIC_PHOTOS:
        photo = getattr(data, name)()
        side = min(photo.shape[:2])
        square = Image.fromarray(photo[:side, :side]).resize((half, half), Image.Resampling.BICUBIC)
        quarters.append(np.asarray(square))
    rows = [np.concatenate(quarters[:2], axis=1), np.concatenate(quarters[2:], axis=1)]
    return to_signed_tensor(np.concatenate(rows, axis=0)[:args.size, :args.size])[None]


def generator(args):
    """The generator of --netG/--ngf/--norm, with --weights or random ones, as test.py builds it."""
    net = random_generator(args.netG, args.ngf, args.norm)
    if args.weights:
        net.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    attach_size_padding(net, net.size_multiple)
    return net


def measure_memory(args):
    """Run test.py on one picture in a child process; print its time and peak resident memory."""
    with tempfile.TemporaryDirectory(prefix="tile-benchmark-") as work:
        work = Path(work)
        (work / "images").mkdir()
        save_image(tensor2im(picture(args)), work / "images" / "picture.png")
        save_test_weights(generator(args), str(work / "ck"), "bench")
        command = [sys.executable, str(ROOT / "test.py"), "--dataroot", str(work / "images"), "--name", "bench",
                   "--checkpoints_dir", str(work / "ck"), "--results_dir", str(work / "results"), "--model", "test",
                   "--netG", args.netG, "--ngf", str(args.ngf), "--norm", args.norm, "--no_dropout",
                   "--preprocess", "none", "--num_threads", "0", "--gpu_ids", "-1"]
        if args.tile:
            command += ["--tile", str(args.tile), "--tile_overlap", str(args.tile_overlap),
                        "--tile_statistics", args.tile_statistics]
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if result.returncode:
        raise UserError(f"test.py failed: {result.stderr.strip().splitlines()[-1]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2 ** 20  # kB -> GiB
    how = f"tiles {args.tile} px, overlap {args.tile_overlap}, {args.tile_statistics} statistics" if args.tile \
        else "whole image"
    print(f"{args.size}x{args.size} {args.netG} ngf {args.ngf} {args.norm}, {how}: {seconds:.0f} s, "
          f"peak memory {peak:.2f} GiB ({cpu_description()})")


def compare(args):
    """PSNR of tiled against whole-image results for each --tile_statistics; the pictures to --out."""
    x, net = picture(args), generator(args)
    os.makedirs(args.out, exist_ok=True)
    with torch.inference_mode():
        whole = net(x)
        pictures = {"input": x, "whole": whole}
        for statistics in STATISTICS_CHOICES:
            attach_tiling(net, args.tile, args.tile_overlap, statistics)
            tiled = net(x)
            del net.forward  # back to whole-image inference
            score = psnr(to_unit(whole), to_unit(tiled))[0]
            largest = (tiled - whole).abs().max().item() / 2
            print(f"{args.size}x{args.size} tiles {args.tile} px, overlap {args.tile_overlap}, {statistics} "
                  f"statistics: PSNR against whole-image inference {score:.2f} dB, largest difference {largest:.3f}")
            pictures[f"tiled_{statistics}"] = tiled
            pictures[f"difference_{statistics}"] = (tiled - whole).abs() * DIFFERENCE_GAIN - 1
    for name, image in pictures.items():
        save_image(tensor2im(image), os.path.join(args.out, f"{name}.png"))
    print(f"pictures: {args.out} (differences x{DIFFERENCE_GAIN}) ({cpu_description()})")


def to_unit(image):
    """An image in [-1, 1] as float64 in [0, 1], clamped as the saved pictures are (what psnr takes)."""
    return ((image.double().clamp(-1, 1) + 1) / 2)


def cpu_description():
    """The CPU model and torch's thread count, for the printed figures."""
    model = platform.processor() or "CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {torch.get_num_threads()} thread(s)"


@exit_on_user_error
def main(argv=None):
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    measure_memory(args) if args.mode == "memory" else compare(args)


if __name__ == "__main__":
    main()
