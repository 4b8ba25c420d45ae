"""Paired data for pix2pix: each file in dataroot/<phase> holds A on its left half and B on its right half.

A file of width w is split at int(w / 2), as the original tool splits it: A is the left int(w / 2) columns,
B the rest. For an odd width B then has one column more; that last column is dropped, so that both halves
have the same size under every --preprocess (also `none`, where the sizes are kept) and column x of A
stays aligned with column x of B (resizing the wider B to --load_size, as the original does, would shift
its right side by up to one pixel).
"""
import os

from data.base_dataset import (
    FilePerItemDataset,
    domain_image_mode,
    get_params,
    get_transform,
    header_sizes,
    note_small_images,
    require_trainable_shapes,
)
from data.image_io import load_image
from util.errors import UserError
from util.log import logger


class AlignedDataset(FilePerItemDataset):
    """Yields {'A', 'B', 'A_paths', 'B_paths'}; both halves get the same crop and flip so they stay aligned.

    With --direction BtoA the halves are not swapped here (the model swaps them); only the channel counts are.
    opt: options (dataroot, phase, direction, input_nc, output_nc, max_dataset_size, preprocessing).
    """

    def __init__(self, opt):
        super().__init__(opt)
        self.paths = self.find_images(os.path.join(opt.dataroot, opt.phase))
        self.modes = {domain: domain_image_mode(opt, domain) for domain in "AB"}

    def validate(self):
        sizes = header_sizes(self.paths)
        narrow = [path for path, (width, _) in sizes.items() if width < 2]
        if narrow:
            raise UserError(f"{len(narrow)} aligned image(s) are 1 pixel wide (e.g. {narrow[0]}), too narrow to "
                            "hold an A|B pair side by side; remove them or use --dataset_mode single")
        odd = [path for path, (width, _) in sizes.items() if width % 2]
        if odd:
            logger.info(f"note: {len(odd)} aligned image(s) have an odd width (e.g. {odd[0]}); each is split at "
                        "half its width rounded down, as the original tool does, and B's extra last column is "
                        "dropped so that both halves have the same size")
        halves = {path: (width // 2, height) for path, (width, height) in sizes.items()}
        note_small_images(self.opt, halves)
        require_trainable_shapes(self.opt, halves)

    def load_item(self, index, rng):
        path = self.paths[index]
        pair = load_image(path, "RGB")
        half = pair.width // 2  # int(w / 2); B's extra column of an odd width is dropped (module docstring)
        halves = {"A": pair.crop((0, 0, half, pair.height)), "B": pair.crop((half, 0, 2 * half, pair.height))}
        transform = get_transform(self.opt, get_params(self.opt, halves["A"].size, rng))
        item = {domain: transform(image.convert(self.modes[domain])) for domain, image in halves.items()}
        return {**item, "A_paths": path, "B_paths": path}
