"""Unpaired data for CycleGAN: pictures of domain A in dataroot/<phase>A and of domain B in dataroot/<phase>B."""
import os

from data.base_dataset import (
    BaseDataset,
    domain_image_mode,
    get_params,
    get_transform,
    header_sizes,
    note_small_images,
    require_trainable_shapes,
)
from data.image_io import load_image


class UnalignedDataset(BaseDataset):
    """Yields {'A', 'B', 'A_params', 'B_params', 'A_paths', 'B_paths'}: A images in sorted order, B images
    in order with --serial_batches and drawn at random otherwise, so that pairs change from epoch to
    epoch. A_params/B_params: the get_params each image's preprocessing drew (what the ground truth of
    an output made from it must go through too).

    opt: options (dataroot, phase, direction, input_nc, output_nc, serial_batches, max_dataset_size, preprocessing).
    """

    def __init__(self, opt):
        super().__init__(opt)
        self.paths = {domain: self.find_images(os.path.join(opt.dataroot, opt.phase + domain)) for domain in "AB"}
        self.modes = {domain: domain_image_mode(opt, domain) for domain in "AB"}

    def __len__(self):
        return max(len(self.paths["A"]), len(self.paths["B"]))

    def _pair_paths(self, index, rng):
        """The A and B files of item `index` (B drawn with `rng` unless --serial_batches)."""
        a_paths, b_paths = self.paths["A"], self.paths["B"]
        b_index = index % len(b_paths) if self.opt.serial_batches else rng.randrange(len(b_paths))
        return a_paths[index % len(a_paths)], b_paths[b_index]

    def validate(self):
        sizes = {domain: header_sizes(self.paths[domain]) for domain in "AB"}
        note_small_images(self.opt, {**sizes["A"], **sizes["B"]})
        for domain_sizes in sizes.values():  # A and B images are stacked separately
            require_trainable_shapes(self.opt, domain_sizes)

    def source_paths(self, index):
        # A random B partner is drawn at load time, so only the A file is known ahead then.
        if self.opt.serial_batches:
            return list(self._pair_paths(index, None))
        return [self.paths["A"][index % len(self.paths["A"])]]

    def load_item(self, index, rng):
        a_path, b_path = self._pair_paths(index, rng)
        (a, a_params), (b, b_params) = self._load(a_path, "A", rng), self._load(b_path, "B", rng)
        return {"A": a, "B": b, "A_params": a_params, "B_params": b_params, "A_paths": a_path, "B_paths": b_path}

    def _load(self, path, domain, rng):
        """One image of `domain`, with its own random crop and flip, and the get_params drawn for them."""
        image = load_image(path, self.modes[domain])
        params = get_params(self.opt, image.size, rng)
        return get_transform(self.opt, params)(image), params
