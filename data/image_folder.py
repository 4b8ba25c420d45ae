"""Finding the image files of a dataset folder (recursively, following symlinks) and reading their sizes."""
import os

from data.image_io import opened_image
from util.errors import UserError

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff")


def is_image_file(name):
    """True when the file name ends in a supported image extension (any letter case). name: file name or path."""
    return name.lower().endswith(IMG_EXTENSIONS)


def make_dataset(folder, max_dataset_size=float("inf")):
    """Sorted paths (strings) of every image under `folder`, searched recursively.

    folder: the directory to search; max_dataset_size: keep at most this many (the first in sorted order).
    Raises UserError when the folder is missing or holds no supported images.
    """
    if os.path.isfile(folder):
        raise UserError(f"{folder!r} is a file, not a folder of images; pass the folder that holds it as --dataroot")
    if not os.path.isdir(folder):
        raise UserError(f"image folder {folder!r} does not exist; fix --dataroot "
                        "(or --phase, which names the subfolder: trainA/testA, train/test)")
    paths = sorted(_walk_images(folder))
    if not paths:
        raise UserError(f"no images in {folder!r}; add files with one of the extensions "
                        f"{', '.join(IMG_EXTENSIONS)} (any case) or fix --dataroot")
    return paths[:int(min(max_dataset_size, len(paths)))]


def _walk_images(folder):
    """Yield image paths under `folder`, following symlinked folders but entering each real folder once."""
    visited = {os.path.realpath(folder)}
    for root, dirs, files in os.walk(folder, followlinks=True):
        # A symlink pointing back up the tree would otherwise make os.walk loop forever.
        kept = []
        for name in dirs:
            real = os.path.realpath(os.path.join(root, name))
            if real not in visited:
                visited.add(real)
                kept.append(name)
        dirs[:] = kept
        yield from (os.path.join(root, name) for name in files if is_image_file(name))


def image_size(path):
    """(width, height) of an image file, read from its header without decoding the pixels. path: the file.
    Raises UnreadableImage (a UserError) when the header cannot be read or claims a decompression bomb."""
    with opened_image(path) as image:
        return image.size
