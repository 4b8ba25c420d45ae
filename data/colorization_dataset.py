"""Colorization data: natural RGB pictures in dataroot/<phase>, each split into its Lab lightness and colour.

No A|B pairs are needed (and no combine step): every picture is its own pair. A is the L channel and
B the ab channels, normalised to [-1, 1] (see util/lab_color.py), e.g. datasets/mini_colorization/train.
"""
import os

from data.base_dataset import (
    FilePerItemDataset,
    get_params,
    get_transform,
    header_sizes,
    note_small_images,
    require_trainable_shapes,
)
from data.image_io import load_image
from util.lab_color import require_lab_layout, rgb_to_lab_tensors


class ColorizationDataset(FilePerItemDataset):
    """Yields {'A': L (1 channel), 'B': ab (2 channels), 'A_paths', 'B_paths'} (both paths the same file).

    The picture is resized, cropped and flipped in RGB first, then converted to Lab.
    opt: options (dataroot, phase, max_dataset_size, preprocessing; input_nc 1, output_nc 2, direction AtoB).
    """

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser.set_defaults(input_nc=1, output_nc=2, direction="AtoB")
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        require_lab_layout(opt, "--dataset_mode colorization")
        self.paths = self.find_images(os.path.join(opt.dataroot, opt.phase))

    def validate(self):
        sizes = header_sizes(self.paths)
        note_small_images(self.opt, sizes)
        require_trainable_shapes(self.opt, sizes)

    def load_item(self, index, rng):
        path = self.paths[index]
        image = load_image(path, "RGB")
        image = get_transform(self.opt, get_params(self.opt, image.size, rng), convert=False)(image)
        lightness, ab = rgb_to_lab_tensors(image)
        return {"A": lightness, "B": ab, "A_paths": path, "B_paths": path}
