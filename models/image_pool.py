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
        """Return a batch like `images`, in fp32: while the pool fills, the images themselves; afterwards
        each image is, with probability 1/2, swapped for a random stored one (which it replaces)."""
        if self.pool_size == 0:
            return images
        chosen = []
        # Stored in the dtype they come in (bf16 under --amp bf16: half the memory of fp32 copies) and
        # returned in fp32, which holds every bf16 value exactly, whatever --amp computes in.
        for image in images.detach():
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
        return torch.cat([image.float() for image in chosen], 0)

    def state_dict(self):
        """The stored images (for the training state file)."""
        return {"images": [image.cpu() for image in self.images]}

    def load_state_dict(self, state, device):
        """Restore the images of `state_dict()` onto `device`."""
        self.images = [image.to(device) for image in state["images"]]
