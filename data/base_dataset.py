"""The base class of every `data/<name>_dataset.py` plug-in, and the image preprocessing they share.

`get_transform` turns a PIL image, or a DeepImage (16-bit and float files, data/deep_image.py) at its
full depth, into a tensor in [-1, 1] following `--preprocess`:
  resize_and_crop       resize to load_size x load_size, then crop crop_size x crop_size
  crop                  crop only
  scale_width           scale the width to load_size, keeping the aspect ratio (height >= crop_size)
  scale_width_and_crop  scale the width to load_size, then crop
  none                  keep the size; at training time round each side to a multiple of 4 (bicubic)
                        so the ResNet generator's two stride-2 downsamplings fit. At test time images
                        stay untouched: the model pads and crops them itself.
  zoom_and_patch        (the singleimage dataset only) zoom by random factors, then cut a crop_size
                        patch from a random cell of a grid (`zoom_and_patch`)
In the crop modes an image smaller than crop_size (after the resize step) is first upscaled, keeping
its aspect ratio, until its shorter side equals crop_size, so cropping never runs out of pixels.
Unless --no_flip, images are flipped horizontally with probability 0.5.
"""
import abc
import functools
import random

import numpy as np
import torch.utils.data
from PIL import Image

from data import CROP_MODES
from data.deep_image import DeepImage
from data.image_folder import image_size, make_dataset
from data.image_io import UnreadableImage
from util.errors import UserError
from util.log import logger

SIZE_MULTIPLE = 4  # two stride-2 downsamplings in the ResNet generator


class BaseDataset(torch.utils.data.Dataset, abc.ABC):
    """A dataset plug-in: builds its file lists in __init__ (with `find_images`) and returns dicts of
    tensors and paths.

    opt: the parsed options (dataroot, phase, direction, input_nc, output_nc, preprocess, sizes, ...).
    `folders` maps each image folder the dataset reads to its files: the loader checks that each
    holds a readable image, and test.py names results so that no two files of a folder share a name.
    """

    def __init__(self, opt):
        self.opt = opt
        self.root = opt.dataroot
        self.folders = {}

    def find_images(self, folder):
        """The image files under `folder` (see make_dataset, at most --max_dataset_size), remembered in
        `folders`. folder: a directory this dataset reads."""
        paths = make_dataset(folder, self.opt.max_dataset_size)
        self.folders[folder] = paths
        return paths

    @staticmethod
    def modify_commandline_options(parser, is_train):
        """Add this dataset's flags or change defaults. parser: the option parser; is_train: training or not."""
        return parser

    @abc.abstractmethod
    def __len__(self):
        """Number of items in one epoch."""

    def __getitem__(self, key):
        """key: an item number, or (item number, seed) from the loader's epoch sampler.

        The seed decides the item's random choices (crop, flip, unaligned partner), so that an item
        is a pure function of its key, whichever worker process loads it: the data order and
        content of an epoch can then be replayed exactly after a resume. A bare item number is
        its own seed.
        """
        index, seed = key if isinstance(key, tuple) else (key, key)
        try:
            return self.load_item(index, random.Random(seed))
        except UnreadableImage as err:
            # Reported (and counted) by the loader in the main process; never kills a worker.
            return {"unreadable": err.path, "reason": err.reason}

    @abc.abstractmethod
    def load_item(self, index, rng):
        """index: item number; rng: a random.Random for this item's choices. Returns a dict of image
        tensors and their paths (strings)."""

    def validate(self):
        """Check the files before training starts (UserError for what cannot work; notes for what is
        adjusted). The default checks nothing."""

    @abc.abstractmethod
    def source_paths(self, index):
        """index: item number. Returns the image files that item reads (used to batch same-size images)."""


class FilePerItemDataset(BaseDataset):
    """A dataset whose item i is the single file `self.paths[i]` (set in __init__ with find_images)."""

    def __len__(self):
        return len(self.paths)

    def source_paths(self, index):
        return [self.paths[index]]


def domain_image_mode(opt, domain):
    """PIL mode ('L' or 'RGB') for domain 'A' or 'B' of `opt`.

    A carries --input_nc channels and B --output_nc; with --direction BtoA the two are swapped, because
    the model then translates the B pictures into A pictures.
    """
    channels = opt.input_nc if (domain == "A") == (opt.direction == "AtoB") else opt.output_nc
    if channels not in (1, 3):
        raise UserError(f"image files have 1 or 3 channels, but --input_nc/--output_nc asks for {channels}; "
                        "use 1 (grayscale) or 3 (RGB)")
    return "L" if channels == 1 else "RGB"


def resized_size(opt, size):
    """(width, height) after the resize step of --preprocess alone. opt: options; size: (width, height)."""
    width, height = size
    if opt.preprocess == "resize_and_crop":
        return opt.load_size, opt.load_size
    if opt.preprocess.startswith("scale_width"):
        return opt.load_size, max(int(opt.load_size * height / width), opt.crop_size)
    if opt.preprocess == "none" and opt.isTrain:
        return tuple(max(SIZE_MULTIPLE, round(side / SIZE_MULTIPLE) * SIZE_MULTIPLE) for side in size)
    return width, height


def size_before_crop(opt, size):
    """(width, height) that an image of `size` has when it is cropped: after the resize step of
    --preprocess and, in crop modes, after upscaling an image too small for --crop_size.

    opt: options (preprocess, load_size, crop_size, isTrain); size: the loaded image's (width, height).
    """
    width, height = resized_size(opt, size)
    if opt.preprocess in CROP_MODES and min(width, height) < opt.crop_size:
        scale = opt.crop_size / min(width, height)
        width, height = max(opt.crop_size, round(width * scale)), max(opt.crop_size, round(height * scale))
    return width, height


def header_sizes(paths):
    """{path: (width, height)} of every file whose header reads; unreadable files are left to the
    loader, which skips them with a warning. paths: image files."""
    sizes = {}
    for path in paths:
        try:
            sizes[path] = image_size(path)
        except UserError:
            continue
    return sizes


def note_small_images(opt, sizes):
    """Say once how images smaller than --crop_size are handled in the crop modes (upscaled).

    opt: options; sizes: {path: (width, height)} of the images as the crop step receives them.
    """
    if opt.preprocess not in CROP_MODES:
        return
    small = [path for path, size in sizes.items() if min(resized_size(opt, size)) < opt.crop_size]
    if small:
        logger.info(f"note: {len(small)} image(s) are smaller than --crop_size {opt.crop_size} after the "
                    f"{opt.preprocess} resize (e.g. {small[0]}); they are upscaled (bicubic, keeping their "
                    "aspect ratio) before cropping")


def require_trainable_shapes(opt, sizes):
    """UserError when --preprocess keeps the images' shapes (none, scale_width) and training cannot use
    them: an image smaller than the networks take, or, with --batch_size > 1, shapes that differ (a
    batch stacks its images).

    opt: options; sizes: {path: (width, height)} of the images that share batches, as loaded.
    """
    if not opt.isTrain or opt.preprocess in CROP_MODES:
        return
    examples = {}
    for path, size in sizes.items():
        examples.setdefault(size_before_crop(opt, size), path)
    networks, side = opt.smallest_image_side  # set by the options: (the networks' flags, pixels)
    too_small = [(shape, path) for shape, path in examples.items() if min(shape) < side]
    if too_small:
        (width, height), path = too_small[0]
        raise UserError(f"--preprocess {opt.preprocess} keeps the images' shapes, and {path} becomes {width}x{height}, "
                        f"smaller than {networks} takes ({side} px a side); use a cropping --preprocess "
                        "(e.g. resize_and_crop), which upscales small images")
    if opt.batch_size > 1 and len(examples) > 1:
        (first, first_path), (second, second_path) = list(examples.items())[:2]
        raise UserError(f"--preprocess {opt.preprocess} keeps the images' shapes, and they differ ({first_path} "
                        f"becomes {first[0]}x{first[1]}, {second_path} {second[0]}x{second[1]}), so --batch_size "
                        f"{opt.batch_size} cannot stack them; use --batch_size 1 or a cropping --preprocess "
                        "(e.g. resize_and_crop)")


def get_params(opt, size, rng=random):
    """Draw one crop corner and flip decision, so that several images (A and B halves) share them.

    opt: options; size: (width, height) of the loaded image; rng: the item's random.Random (default:
    the global one). Returns {'crop_pos': (x, y), 'flip': bool, 'resized': (width, height) before the
    crop}: plain numbers, so that a dataset item can carry them (collated) to whoever must repeat its
    transform (see transform_like).
    """
    width, height = size_before_crop(opt, size)
    x = rng.randint(0, max(0, width - opt.crop_size))
    y = rng.randint(0, max(0, height - opt.crop_size))
    return {"crop_pos": (x, y), "flip": rng.random() > 0.5, "resized": (width, height)}


def item_params(batch_params, index):
    """The get_params dict of the `index`-th item of a batch, from its collated form (each number
    became a tensor over the batch, each pair a list of two such tensors)."""
    def pick(value):
        return tuple(pick(part) for part in value) if isinstance(value, (list, tuple)) else value[index].item()
    return {key: pick(value) for key, value in batch_params.items()}


def transform_like(opt, image, params):
    """`image` preprocessed exactly as the image whose get_params were `params` (same resize, crop
    position and flip), as a tensor in [-1, 1]; None when its size before the crop differs, since the
    same crop position would then cover another part of it.

    opt: options; image: a PIL image (e.g. the ground truth of that image); params: from get_params.
    """
    if size_before_crop(opt, image.size) != tuple(params["resized"]):
        return None
    return get_transform(opt, params)(image)


def get_transform(opt, params=None, method=Image.Resampling.BICUBIC, convert=True):
    """The preprocessing of --preprocess (see the module docstring), as a function of a PIL image or a
    DeepImage (both resize, crop and flip alike).

    opt: options; params: from get_params (None: crop and flip are drawn for each image, from Python's
    global random generator); method: PIL resampling filter; convert: end with a tensor in [-1, 1].
    """
    # A partial of a module-level function (not a closure) stays picklable for spawned workers.
    return functools.partial(_preprocess, opt=opt, params=params, method=method, convert=convert)


def _preprocess(image, opt, params, method, convert):
    """Resize, crop and flip `image` as get_transform describes; a [-1, 1] tensor when `convert`."""
    if params is None:
        params = get_params(opt, image.size)
    image = _resize(image, opt, method)
    if opt.preprocess in CROP_MODES:
        image = _crop(image, params["crop_pos"], opt.crop_size)
    if not opt.no_flip:
        image = _flip(image, params["flip"])
    return to_signed_tensor(image) if convert else image


def _resize(image, opt, method):
    """Resize `image` to size_before_crop (unchanged when it already has that size)."""
    size = size_before_crop(opt, image.size)
    return image if size == image.size else image.resize(size, method)


def _crop(image, corner, size):
    """Cut the size x size square whose top-left corner is `corner` (x, y)."""
    x, y = corner
    return image.crop((x, y, x + size, y + size))


def _flip(image, flip):
    """Mirror `image` left-right when `flip` is true."""
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else image


def zoom_and_patch(image, opt, rng):
    """The official CUT code's single-image augmentation, as a [-1, 1] tensor: `image` zoomed by its own
    factors in x and y, each drawn uniformly between 1 / --random_scale_max and 1 (bilinear; never below
    --crop_size a side), then the crop_size square of a random cell of the grid of such squares that
    fits in it, the grid shifted by a random offset within the leftover pixels, mirrored half of the time
    unless --no_flip.

    opt: options (crop_size, random_scale_max, no_flip); rng: the item's random.Random, which makes every
    choice.
    """
    size = opt.crop_size
    smallest = 1.0 / opt.random_scale_max
    zoomed = tuple(max(size, round(side * rng.uniform(smallest, 1.0))) for side in image.size)
    image = image.resize(zoomed, Image.Resampling.BILINEAR)
    columns, rows = zoomed[0] // size, zoomed[1] // size
    start_x = rng.randint(0, zoomed[0] - columns * size)
    start_y = rng.randint(0, zoomed[1] - rows * size)
    cell = rng.randrange(columns * rows)
    image = _crop(image, (start_x + cell // rows * size, start_y + cell % rows * size), size)
    return to_signed_tensor(_flip(image, not opt.no_flip and rng.random() > 0.5))


def to_signed_tensor(image):
    """A PIL image (L or RGB), an HxW(x3) uint8 array or a DeepImage (its full depth) as a float32 (C, H, W)
    tensor in [-1, 1].

    An 8-bit image gives byte / 255 * 2 - 1, the values of torchvision's ToTensor and a normalisation with
    mean 0.5 and std 0.5 (torchvision is not imported: its import costs every start of train.py and
    test.py 1.4 s of CPU); a DeepImage its values in [0, 1], * 2 - 1.
    """
    if isinstance(image, DeepImage):
        return image.to_tensor() * 2.0 - 1.0
    array = np.array(image, dtype=np.uint8)  # a writable copy, which torch can share
    if array.ndim == 2:
        array = array[:, :, None]
    unit = torch.from_numpy(array).permute(2, 0, 1).contiguous().to(torch.float32).div(255)
    return unit * 2.0 - 1.0
