"""Paired data for pix2pix: each file in dataroot/<phase> holds A on its left half and B on its right half."""
import os

from data.base_dataset import (BaseDataset, domain_image_mode, get_params, get_transform, header_sizes,
                               note_small_images, require_trainable_shapes)
from data.image_io import load_image
from util.errors import UserError


class AlignedDataset(BaseDataset):
    """Yields {'A', 'B', 'A_paths', 'B_paths'}; both halves get the same crop and flip so they stay aligned.

    A file of odd width is refused by `validate` before training (it cannot be two equal halves). With
    --direction BtoA the halves are not swapped here (the model swaps them); only the channel counts are.
    opt: options (dataroot, phase, direction, input_nc, output_nc, max_dataset_size, preprocessing).
    """

    def __init__(self, opt):
        super().__init__(opt)
        self.paths = self.find_images(os.path.join(opt.dataroot, opt.phase))
        self.modes = {domain: domain_image_mode(opt, domain) for domain in "AB"}

    def __len__(self):
        return len(self.paths)

    def source_paths(self, index):
        return [self.paths[index]]

    def validate(self):
        sizes = header_sizes(self.paths)
        odd = [path for path, (width, _) in sizes.items() if width % 2]
        if odd:
            raise UserError(f"{len(odd)} aligned image(s) have an odd width (e.g. {odd[0]}), so they cannot be "
                            "A|B pairs of equal halves; rebuild them with datasets/combine_A_and_B.py or use "
                            "--dataset_mode unaligned")
        halves = {path: (width // 2, height) for path, (width, height) in sizes.items()}
        note_small_images(self.opt, halves)
        require_trainable_shapes(self.opt, halves)

    def load_item(self, index, rng):
        path = self.paths[index]
        pair = load_image(path, "RGB")
        half = pair.width // 2
        halves = {"A": pair.crop((0, 0, half, pair.height)), "B": pair.crop((half, 0, 2 * half, pair.height))}
        transform = get_transform(self.opt, get_params(self.opt, halves["A"].size, rng))
        item = {domain: transform(image.convert(self.modes[domain])) for domain, image in halves.items()}
        return {**item, "A_paths": path, "B_paths": path}
