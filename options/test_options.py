"""Flags of test.py (plus the base flags); architecture flags not given come from train_opt.txt."""
import os

from data import CROP_MODES
from models.stylegan2_networks import STYLEGAN2_GENERATORS
from models.tiling import STATISTICS_CHOICES, TILE_GRID, check_tile_sizes
from util.errors import UserError
from util.log import logger
from util.ranges import NumberRange

from .base_options import ARCHITECTURE_FLAGS, BaseOptions, read_saved_options

# --aspect_ratio stretches saved results by at most 100 times either way: beyond that a result is a
# line of pixels that no page shows, and its size can exhaust memory.
MIN_ASPECT_RATIO = 0.01
OUTPUT_BITS = (8, 16)  # bits per channel of the result files


class TestOptions(BaseOptions):
    """Options for testing."""

    is_train = False
    description = "Run a trained model over a folder of images and write an HTML result page."

    def initialize(self, parser):
        parser = super().initialize(parser)
        g = parser.add_argument_group("test")
        g.add_argument("--results_dir", type=str, default="./results/", help="results are saved here")
        g.add_argument("--aspect_ratio", type=NumberRange(float, minimum=MIN_ASPECT_RATIO, maximum=1 / MIN_ASPECT_RATIO),
                       default=1.0,
                       help="aspect ratio of saved result images: > 1 stretches them wider, < 1 taller")
        g.add_argument("--phase", type=str, default="test", help="train, val, test, etc.: the dataset subfolder to read")
        g.add_argument("--eval", action="store_true",
                       help="use eval mode (batch-norm running statistics, no dropout) at test time")
        g.add_argument("--num_test", type=NumberRange(int, minimum=1), default=None,
                       help="how many test images to run; None: all of them")
        parser.add_alias("--how_many", "--num_test", "num_test", type=int)
        g.add_argument("--output_bits", type=NumberRange(int, values=OUTPUT_BITS), default=8,
                       help="bits per channel of the result images: 8 (RGB PNGs, as the original writes) or 16 "
                            "(16-bit PNGs, grey results staying grey, whatever the inputs' format; for 16-bit "
                            "inputs, which are read at full depth)")
        g.add_argument("--metrics_reference", type=str, default=None,
                       help="folder of real target-domain images: what fid/kid compare the test model's outputs with")
        g.add_argument("--tile", type=NumberRange(int, minimum=0), default=0,
                       help="translate each image in tiles of TILE x TILE px, blended across their overlaps, so that "
                            "memory follows the tile, not the image (for large images; with it --preprocess defaults "
                            "to none, the image at full size); 0: whole images")
        g.add_argument("--tile_overlap", type=NumberRange(int, minimum=TILE_GRID), default=32,
                       help="px by which neighbouring tiles overlap; their outputs are blended linearly across the "
                            "overlap (a multiple of 4, at most half of --tile)")
        g.add_argument("--tile_statistics", type=str, default="image", choices=STATISTICS_CHOICES,
                       help="where instance norm takes its statistics with --tile: image = one pass over the whole "
                            "image scaled down to a tile's area, shared by every tile (closer to whole-image "
                            "results); tile = each tile its own")
        parser.set_defaults(model="test")
        return parser

    def finalize(self, opt, parser, explicit):
        # Test images are not augmented and are taken in order.
        opt.no_flip = True
        opt.serial_batches = True
        if "load_size" not in explicit:
            opt.load_size = opt.crop_size
        if opt.tile:
            check_tile_flags(opt, explicit)
        if opt.metrics_reference and not os.path.isdir(opt.metrics_reference):
            raise UserError(f"--metrics_reference {opt.metrics_reference!r} is not a folder; "
                            "pass a folder of real target-domain images")
        self.inherit_architecture(opt, parser, explicit)
        if opt.batch_size > 1 and opt.norm in ("batch", "syncbatch") and not opt.eval:
            # Instance norm (CycleGAN's) normalises each image alone: batches change nothing there.
            logger.info(f"note: --norm {opt.norm} without --eval normalises each test batch by its own statistics, "
                        f"so results depend on --batch_size {opt.batch_size}; add --eval (the running statistics) "
                        "or use --batch_size 1 (each image by itself, as the original tool tests)")

    def inherit_architecture(self, opt, parser, explicit):
        """Take generator-shaping flags the user did not type from the experiment's train_opt.txt."""
        saved_path = os.path.join(opt.checkpoints_dir, opt.name, "train_opt.txt")
        if not os.path.isfile(saved_path):
            return
        saved = read_saved_options(saved_path, parser)
        if getattr(opt, "model_suffix", "") == "_B" and saved.get("model") == "cycle_gan" and \
                {"input_nc", "output_nc"} <= saved.keys():
            # The test model then runs the CycleGAN's G_B, which maps the output channels to the input ones.
            saved["input_nc"], saved["output_nc"] = saved["output_nc"], saved["input_nc"]
        taken = []
        for flag in ARCHITECTURE_FLAGS:
            if flag not in explicit and flag in saved and saved[flag] != getattr(opt, flag):
                setattr(opt, flag, saved[flag])
                taken.append(f"--{flag} {saved[flag]}")
        sizes = ("load_size", "crop_size")
        if opt.netG in STYLEGAN2_GENERATORS and not set(sizes) & explicit and set(sizes) <= saved.keys():
            # The widths of a StyleGAN2 generator follow the training's image sizes (not the test's).
            opt.train_image_sizes = tuple(saved[flag] for flag in sizes)
            if min(opt.train_image_sizes) != min(opt.load_size, opt.crop_size):
                taken.append(f"--load_size {saved['load_size']} --crop_size {saved['crop_size']} (for the generator's widths)")
        if taken:
            logger.info(f"note: using {', '.join(taken)} from {saved_path}")


def check_tile_flags(opt, explicit):
    """Tiles translate images at their full size: --preprocess defaults to none with --tile, and a
    --preprocess that cuts every image to one tile or less is refused (tiling would change nothing)."""
    check_tile_sizes(opt.tile, opt.tile_overlap)
    if "preprocess" not in explicit:
        opt.preprocess = "none"
    elif opt.preprocess in CROP_MODES and opt.crop_size <= opt.tile:
        raise UserError(f"--preprocess {opt.preprocess} cuts every image to --crop_size {opt.crop_size} px, which fits "
                        f"in one --tile {opt.tile} tile, so tiling changes nothing; use --preprocess none (images at "
                        "full size), or a --crop_size larger than --tile")
