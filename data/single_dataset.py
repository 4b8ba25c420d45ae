"""One folder of pictures (searched recursively) for applying a trained generator in one direction."""
from data.base_dataset import (
    FilePerItemDataset,
    domain_image_mode,
    get_params,
    get_transform,
    header_sizes,
    note_small_images,
)
from data.image_io import load_image


class SingleDataset(FilePerItemDataset):
    """Yields {'A', 'A_params', 'A_paths'} for every image under dataroot itself (no phase subfolder);
    A_params: the get_params its preprocessing drew (what its ground truth must go through too).

    Channels: --output_nc with --direction BtoA, otherwise --input_nc.
    opt: options (dataroot, direction, input_nc, output_nc, max_dataset_size, preprocessing).
    """

    def __init__(self, opt):
        super().__init__(opt)
        self.paths = self.find_images(opt.dataroot)
        self.mode = domain_image_mode(opt, "A")

    def validate(self):
        note_small_images(self.opt, header_sizes(self.paths))

    def load_item(self, index, rng):
        path = self.paths[index]
        image = load_image(path, self.mode)
        params = get_params(self.opt, image.size, rng)
        return {"A": get_transform(self.opt, params)(image), "A_params": params, "A_paths": path}
