"""Build a small real two-domain dataset offline, so that a newcomer can train without internet.

    python datasets/make_demo_dataset.py                 # ./datasets/demo/{trainA,trainB,testA,testB}
    python datasets/make_demo_dataset.py --aligned       # also ./datasets/demo_aligned/{train,test}
    python train.py --dataroot ./datasets/demo --name demo_cyclegan --model cycle_gan \
        --load_size 143 --crop_size 128

The photos are the ones shipped inside the scikit-image wheel (astronaut, chelsea, coffee, rocket,
motorcycle) and the scikit-learn wheel (china, flower); nothing is downloaded.
Domain A: random square crops of the photos (random photo, position, side 35-90 % of the photo's
shorter side, random horizontal flip), resized to --size x --size with bicubic filtering.
Domain B: crops given a "winter" look:
  1. saturation to 40 %        (PIL ImageEnhance.Color(0.4))
  2. contrast to 80 %          (PIL ImageEnhance.Contrast(0.8))
  3. brightness to 115 %       (PIL ImageEnhance.Brightness(1.15))
  4. a cool tint               (channel gains R x 0.90, G x 0.97, B x 1.10, clipped to 255)
The training split is unpaired: trainB's crops are drawn independently of trainA's. The test split is
paired by file name: testB/x.png is the winter look of testA/x.png (the same crop), so every test output
has an exact ground truth (A->B: testB/x.png; B->A: testA/x.png) and `test.py --metrics psnr,ssim`
scores it against that truth.
With --aligned, pix2pix pairs are written too: each A crop beside its own winter version (A|B).
Every set of crops draws from its own random stream derived from --seed, so a seed always gives the same files.
"""
import argparse
import os
import shutil
import sys

import numpy as np
from PIL import Image, ImageEnhance

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]  # the repository root for util/, this folder for combine_A_and_B
from combine_A_and_B import side_by_side  # noqa: E402

from util.errors import UserError, exit_on_user_error  # noqa: E402

SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
CROP_SIDE_RANGE = (0.35, 0.9)   # crop side as a fraction of the photo's shorter side
WINTER_SATURATION = 0.4
WINTER_CONTRAST = 0.8
WINTER_BRIGHTNESS = 1.15
WINTER_TINT = np.array([0.90, 0.97, 1.10])  # R, G, B gains: cooler, bluer light
MIN_SIZE = 16


def load_skimage_photos():
    """The colour photos bundled with scikit-image, as {name: HxWx3 uint8 array} (empty if unavailable)."""
    try:
        from skimage import data
    except ImportError:
        return {}
    loaders = {name: getattr(data, name) for name in SKIMAGE_PHOTOS}
    loaders["motorcycle"] = lambda: data.stereo_motorcycle()[0]
    photos = {}
    for name, load in loaders.items():
        try:
            photos[name] = load()
        except Exception:  # a photo missing from this scikit-image version is simply left out
            continue
    return photos


def load_sklearn_photos():
    """The sample photos bundled with scikit-learn (china, flower), as {name: array} (empty if unavailable)."""
    try:
        from sklearn.datasets import load_sample_images
        bundle = load_sample_images()
    except Exception:  # missing package, or its image reader (Pillow) failing
        return {}
    return {os.path.splitext(os.path.basename(path))[0]: image
            for path, image in zip(bundle.filenames, bundle.images)}


def load_photos():
    """All available source photos as a list of RGB PIL images, in a fixed order; UserError if none."""
    photos = {**load_skimage_photos(), **load_sklearn_photos()}
    if not photos:
        raise UserError("no source photos could be loaded; install scikit-image or scikit-learn "
                        "(pip install -r requirements.txt)")
    return [Image.fromarray(np.asarray(photos[name], dtype=np.uint8)).convert("RGB") for name in sorted(photos)]


def random_crop(photos, rng, size):
    """A random square crop of a random photo, resized to size x size and maybe flipped.

    photos: RGB PIL images. rng: a numpy Generator. size: output side in pixels.
    """
    photo = photos[rng.integers(len(photos))]
    width, height = photo.size
    side = int(rng.uniform(*CROP_SIDE_RANGE) * min(width, height))
    left = int(rng.integers(0, width - side + 1))
    top = int(rng.integers(0, height - side + 1))
    crop = photo.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
    return crop.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop


def random_crops(photos, rng, size, count):
    """`count` independent random crops (see random_crop); rng: the numpy Generator they draw from."""
    return [random_crop(photos, rng, size) for _ in range(count)]


def winter_look(image):
    """The domain-B transform (see the file's docstring). image: an RGB PIL image; returns a new one."""
    image = ImageEnhance.Color(image).enhance(WINTER_SATURATION)
    image = ImageEnhance.Contrast(image).enhance(WINTER_CONTRAST)
    image = ImageEnhance.Brightness(image).enhance(WINTER_BRIGHTNESS)
    tinted = np.asarray(image, dtype=np.float64) * WINTER_TINT
    return Image.fromarray(np.clip(np.rint(tinted), 0, 255).astype(np.uint8))


def save_all(images, folder):
    """Save pictures as 0000.png, 0001.png, ... in folder and say so. images: PIL images. folder: target."""
    os.makedirs(folder, exist_ok=True)
    for index, image in enumerate(images):
        image.save(os.path.join(folder, f"{index:04d}.png"))
    print(f"wrote {len(images)} pictures to {folder}")


def occupied_folders(folders, overwrite):
    """The output folders that already hold files; a UserError unless they may be replaced.

    folders: the output folders this run writes. overwrite: the user allowed replacing them.
    """
    used = [folder for folder in folders if os.path.isdir(folder) and os.listdir(folder)]
    if used and not overwrite:
        raise UserError(f"{used[0]} already holds files; pass --overwrite to replace the demo dataset "
                        "or --out to write elsewhere")
    return used


def draw_crops(size, n_train, n_test, seed):
    """The crops of a two-domain dataset: {'trainA', 'trainB', 'testA': lists of RGB PIL images}, each
    set from its own random stream derived from `seed`. trainB's crops, which become domain B, are drawn
    independently of trainA's (unpaired); testA's serve both test folders (paired by name).

    size: picture side in pixels. n_train, n_test: pictures per domain and split. seed: random seed.
    """
    photos = load_photos()
    counts = {"trainA": n_train, "trainB": n_train, "testA": n_test}
    streams = np.random.SeedSequence(seed).spawn(len(counts))  # one independent stream per set
    return {name: random_crops(photos, np.random.default_rng(stream), size, count)
            for (name, count), stream in zip(counts.items(), streams)}


def write_translation_set(out, crops, transform):
    """Write out/{trainA,trainB,testA,testB} from `crops` (see draw_crops): the crops as domain A,
    `transform` of them as domain B, with testB/x.png = transform(testA/x.png), the ground truth of
    every test output. transform: RGB PIL image -> RGB PIL image."""
    images = {"trainA": crops["trainA"], "trainB": [transform(crop) for crop in crops["trainB"]],
              "testA": crops["testA"], "testB": [transform(crop) for crop in crops["testA"]]}
    for split, pictures in images.items():
        save_all(pictures, os.path.join(out, split))


def make_demo_dataset(out, size=128, n_train=24, n_test=6, seed=0, aligned=False, overwrite=False):
    """Write the demo dataset; return the folders written.

    out: dataset folder (trainA, trainB, testA, testB). size: picture side in pixels. n_train, n_test:
    pictures per domain and split. seed: random seed. aligned: also write <out>_aligned/{train,test}.
    overwrite: replace an earlier demo dataset in the same place.
    """
    if size < MIN_SIZE:
        raise UserError(f"--size {size} is too small; pass at least {MIN_SIZE}")
    if n_train < 1 or n_test < 1:
        raise UserError(f"--n_train {n_train} / --n_test {n_test}: pass at least 1 picture for each")
    out = os.path.normpath(out)
    folders = [os.path.join(out, name) for name in ("trainA", "trainB", "testA", "testB")]
    if aligned:
        folders += [os.path.join(out + "_aligned", split) for split in ("train", "test")]
    used = occupied_folders(folders, overwrite)
    crops = draw_crops(size, n_train, n_test, seed)  # before deleting anything: a failure leaves the old set alone
    for folder in used:
        shutil.rmtree(folder)
    write_translation_set(out, crops, winter_look)
    if aligned:
        for split in ("train", "test"):
            pairs = [side_by_side(crop, winter_look(crop)) for crop in crops[split + "A"]]
            save_all(pairs, os.path.join(out + "_aligned", split))
    return folders


def parse_args(argv=None):
    """Read the command line. argv: arguments, default sys.argv[1:]."""
    parser = argparse.ArgumentParser(description="Build a small offline photo -> 'winter photo' dataset: unpaired "
                                     "training crops; test crops paired by file name (testB/x.png is the winter "
                                     "look of testA/x.png), so every test output has a ground truth.")
    parser.add_argument("--out", default="./datasets/demo", help="output folder (trainA, trainB, testA, testB)")
    parser.add_argument("--size", type=int, default=128, help="side of every picture in pixels")
    parser.add_argument("--n_train", type=int, default=24, help="training pictures per domain")
    parser.add_argument("--n_test", type=int, default=6,
                        help="test pictures per domain (testB/x.png is the winter look of testA/x.png)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files")
    parser.add_argument("--aligned", action="store_true", help="also write <out>_aligned/{train,test} (A|B)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier dataset at --out")
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    """Build the demo dataset the command line describes. argv: arguments, default sys.argv[1:]."""
    args = parse_args(argv)
    make_demo_dataset(args.out, args.size, args.n_train, args.n_test, args.seed, args.aligned, args.overwrite)
    load_size = int(round(args.size * 286 / 256))  # the original's 286/256 resize-then-crop margin
    print(f"train with: python train.py --dataroot {os.path.normpath(args.out)} --name demo_cyclegan "
          f"--model cycle_gan --load_size {load_size} --crop_size {args.size}")


if __name__ == "__main__":
    main()
