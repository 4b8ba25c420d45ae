"""One picture per domain, for single-image translation (`--model sincut`; the official CUT code's
`singleimage` mode): dataroot/trainA and dataroot/trainB each hold exactly one image, at training and
at test time alike.

Training: an epoch is 100,000 items (the official count; fewer with a smaller --max_dataset_size), each
a patch of both pictures. With --preprocess zoom_and_patch (sincut's default) every item zooms each
picture by its own random factors and cuts a --crop_size patch from a random cell of a grid
(data/base_dataset.zoom_and_patch); the other --preprocess modes cut as they do for unaligned data.
Every draw comes from the item's own random generator, so a resumed run sees the same patches.
The official loader precomputes zoom factors shared by runs of --batch_size consecutive indices and a
permutation of grid cells, but it visits the indices in random order, so each item of a batch in effect
gets its own zoom and cell: what this loader draws directly.
Testing: one item, the two whole pictures (sincut tests with --preprocess none).
"""
import os

from data.base_dataset import (
    BaseDataset,
    domain_image_mode,
    get_params,
    get_transform,
    header_sizes,
    note_small_images,
    require_trainable_shapes,
    zoom_and_patch,
)
from data.image_io import load_image
from util.errors import UserError
from util.ranges import NumberRange

PATCHES_PER_EPOCH = 100_000  # the official "pretend the single image contains 100,000 crops"


class SingleImageDataset(BaseDataset):
    """Yields {'A', 'B', 'A_paths', 'B_paths'}: patches of the two pictures (training) or the pictures
    themselves (testing).

    opt: options (dataroot, direction, input_nc, output_nc, max_dataset_size, isTrain, preprocessing,
    random_scale_max).
    """

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser.add_argument("--random_scale_max", type=NumberRange(float, minimum=1), default=3.0,
                            help="--preprocess zoom_and_patch zooms each picture by factors between 1 / this and 1")
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        self.paths = {domain: self._only_image(os.path.join(opt.dataroot, "train" + domain)) for domain in "AB"}
        self.modes = {domain: domain_image_mode(opt, domain) for domain in "AB"}
        self._pictures = {}  # decoded once per process

    def _only_image(self, folder):
        paths = self.find_images(folder)
        if len(paths) != 1:
            raise UserError(f"--dataset_mode singleimage reads one picture per domain, but {folder} holds "
                            f"{len(paths)} images; keep one there, or train on many with --dataset_mode unaligned")
        return paths[0]

    def __len__(self):
        return int(min(PATCHES_PER_EPOCH, self.opt.max_dataset_size)) if self.opt.isTrain else 1

    def validate(self):
        if self.opt.preprocess == "zoom_and_patch":
            return  # any picture gives patches: the zoom never goes below --crop_size
        sizes = {domain: header_sizes([self.paths[domain]]) for domain in "AB"}
        note_small_images(self.opt, {**sizes["A"], **sizes["B"]})
        for domain_sizes in sizes.values():
            require_trainable_shapes(self.opt, domain_sizes)

    def source_paths(self, index):
        return [self.paths["A"], self.paths["B"]]

    def load_item(self, index, rng):
        item = {}
        for domain in "AB":
            picture = self._picture(domain)
            if self.opt.isTrain and self.opt.preprocess == "zoom_and_patch":
                item[domain] = zoom_and_patch(picture, self.opt, rng)
            else:
                item[domain] = get_transform(self.opt, get_params(self.opt, picture.size, rng))(picture)
            item[domain + "_paths"] = self.paths[domain]
        return item

    def _picture(self, domain):
        """The decoded picture of `domain`, read on first use in this process."""
        if domain not in self._pictures:
            self._pictures[domain] = load_image(self.paths[domain], self.modes[domain])
        return self._pictures[domain]
