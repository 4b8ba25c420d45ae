"""A buffer of previously generated images that the discriminators are also shown (Shrivastava et al.)."""
import random

import torch


class ImagePool:
    """Keeps up to `pool_size` generated images; `query` returns a mix of new and remembered ones.

    pool_size: capacity; 0 disables the pool (query returns its input).
    """

    def __init__(self, pool_size):
        self.pool_size = pool_size
        self.images = []

    def query(self, images):
        """Return a batch like `images`: while the pool fills, the images themselves; afterwards each
        image is, with probability 1/2, swapped for a random stored one (which it replaces)."""
        if self.pool_size == 0:
            return images
        chosen = []
        for image in images.detach().float():  # stored in fp32 whatever --amp computes in
            image = image.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image.clone())
                chosen.append(image)
            elif random.uniform(0, 1) > 0.5:
                slot = random.randint(0, self.pool_size - 1)
                chosen.append(self.images[slot].clone())
                self.images[slot] = image.clone()
            else:
                chosen.append(image)
        return torch.cat(chosen, 0)

    def state_dict(self):
        """The stored images (for the training state file)."""
        return {"images": [image.cpu() for image in self.images]}

    def load_state_dict(self, state, device):
        """Restore the images of `state_dict()` onto `device`."""
        self.images = [image.to(device) for image in state["images"]]
