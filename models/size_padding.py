"""Any image size for a generator: pad its input to the side multiple it needs, crop its output back.

`pad_to_multiple` pads one image batch; `attach_size_padding` does it around every forward pass of a
network (build_network attaches it to each generator, by its `size_multiple`).
"""
import threading

import torch.nn.functional as F


def pad_to_multiple(x, multiple):
    """`x` (N, C, H, W) padded at the bottom and right to sides that are multiples of `multiple`: by
    reflection where the image is large enough, by repeating its edge otherwise; `x` itself when its
    sides already fit."""
    height, width = x.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def attach_size_padding(net, multiple):
    """Let an image-to-image network take any image size without changing its state_dict.

    Before the forward pass the input is padded to a multiple of `multiple` (pad_to_multiple);
    afterwards the output is cropped back to the input's size. Inputs already of a fitting size pass
    untouched.
    """
    # Per thread: the lanes of test.py and of the evaluation (engine/image_lanes.py) run one network on
    # several batches at once.
    sizes = threading.local()

    def pad(module, args):
        sizes.original = args[0].shape[-2:]
        return (pad_to_multiple(args[0], multiple),) + tuple(args[1:])

    def crop(module, args, output):
        height, width = sizes.original
        return output[..., :height, :width]

    net.register_forward_pre_hook(pad)
    net.register_forward_hook(crop)
