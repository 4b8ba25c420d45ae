"""Unpaired data for CycleGAN: pictures of domain A in dataroot/<phase>A and of domain B in dataroot/<phase>B."""
import os
import random

from data.base_dataset import BaseDataset, domain_image_mode, get_transform, load_image
from data.image_folder import make_dataset


class UnalignedDataset(BaseDataset):
    """Yields {'A', 'B', 'A_paths', 'B_paths'}: A images in sorted order, B images in order with
    --serial_batches and drawn at random otherwise, so that pairs change from epoch to epoch.

    opt: options (dataroot, phase, direction, input_nc, output_nc, serial_batches, max_dataset_size, preprocessing).
    """

    def __init__(self, opt):
        super().__init__(opt)
        self.paths = {domain: make_dataset(os.path.join(opt.dataroot, opt.phase + domain), opt.max_dataset_size)
                      for domain in "AB"}
        self.modes = {domain: domain_image_mode(opt, domain) for domain in "AB"}
        self.transform = get_transform(opt)

    def __len__(self):
        return max(len(self.paths["A"]), len(self.paths["B"]))

    def _pair_paths(self, index):
        """The A and B files of item `index` (B is random unless --serial_batches)."""
        a_paths, b_paths = self.paths["A"], self.paths["B"]
        b_index = index % len(b_paths) if self.opt.serial_batches else random.randint(0, len(b_paths) - 1)
        return a_paths[index % len(a_paths)], b_paths[b_index]

    def source_paths(self, index):
        # A random B file cannot be known ahead, so only the A file is reported then.
        pair = self._pair_paths(index)
        return list(pair) if self.opt.serial_batches else [pair[0]]

    def __getitem__(self, index):
        a_path, b_path = self._pair_paths(index)
        return {"A": self.transform(load_image(a_path, self.modes["A"])),
                "B": self.transform(load_image(b_path, self.modes["B"])),
                "A_paths": a_path, "B_paths": b_path}
