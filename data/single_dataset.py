"""One folder of pictures (searched recursively) for applying a trained generator in one direction."""
from data.base_dataset import BaseDataset, domain_image_mode, get_transform, load_image
from data.image_folder import make_dataset


class SingleDataset(BaseDataset):
    """Yields {'A', 'A_paths'} for every image under dataroot itself (no phase subfolder).

    Channels: --output_nc with --direction BtoA, otherwise --input_nc.
    opt: options (dataroot, direction, input_nc, output_nc, max_dataset_size, preprocessing).
    """

    def __init__(self, opt):
        super().__init__(opt)
        self.paths = make_dataset(opt.dataroot, opt.max_dataset_size)
        self.mode = domain_image_mode(opt, "A")
        self.transform = get_transform(opt)

    def __len__(self):
        return len(self.paths)

    def source_paths(self, index):
        return [self.paths[index]]

    def __getitem__(self, index):
        path = self.paths[index]
        return {"A": self.transform(load_image(path, self.mode)), "A_paths": path}
