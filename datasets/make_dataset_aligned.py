"""Turn a dataset with trainA/ trainB/ (testA/ testB/, valA/ valB/) into pix2pix's aligned layout.

    python datasets/make_dataset_aligned.py --dataset-path ./datasets/mydata

For every split whose A and B folders both exist, the pictures are paired in sorted file-name order
(so `1_A.jpg` goes with `1_B.jpg`, `frame001.png` with `frame001.png`; both folders must hold the same
number of pictures) and written side by side, A on the left, to <dataset-path>/<split>/ under A's file
name without a trailing `_A` (`1_A.jpg` -> `1.jpg`). A B picture of another size is resized to A's.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]  # the repository root for util/, this folder for combine_A_and_B
from combine_A_and_B import combine_pair  # noqa: E402

from data.image_folder import is_image_file  # noqa: E402
from util.errors import UserError, exit_on_user_error  # noqa: E402

SPLITS = ("train", "val", "test")


def sorted_images(folder):
    """Sorted file names of the pictures directly inside folder. folder: the folder to list."""
    return sorted(name for name in os.listdir(folder)
                  if is_image_file(name) and os.path.isfile(os.path.join(folder, name)))


def aligned_name(name_a):
    """The output file name for A's file name: `x_A.jpg` -> `x.jpg`, others unchanged."""
    stem, extension = os.path.splitext(name_a)
    return (stem[:-2] if stem.endswith("_A") and len(stem) > 2 else stem) + extension


def align_split(dir_a, dir_b, dir_out):
    """Pair dir_a and dir_b in sorted order and write A|B pictures to dir_out; return (pairs, resized).

    dir_a, dir_b: folders with the same number of pictures. dir_out: the output folder.
    """
    names_a, names_b = sorted_images(dir_a), sorted_images(dir_b)
    if len(names_a) != len(names_b):
        raise UserError(f"{dir_a} holds {len(names_a)} pictures but {dir_b} holds {len(names_b)}; "
                        "pairs are matched in sorted name order, so both need the same pictures")
    os.makedirs(dir_out, exist_ok=True)
    resized = sum(combine_pair(os.path.join(dir_a, name_a), os.path.join(dir_b, name_b),
                               os.path.join(dir_out, aligned_name(name_a)))
                  for name_a, name_b in zip(names_a, names_b))
    return len(names_a), resized


def align_dataset(dataset_path):
    """Align every split of dataset_path that has both <split>A/ and <split>B/; return {split: pairs}.

    dataset_path: the dataset folder.
    """
    if not os.path.isdir(dataset_path):
        raise UserError(f"--dataset-path {dataset_path} does not exist; pass a folder with trainA/ and trainB/")
    written = {}
    for split in SPLITS:
        dir_a, dir_b = (os.path.join(dataset_path, split + side) for side in "AB")
        if os.path.isdir(dir_a) != os.path.isdir(dir_b):
            print(f"warning: only one of {dir_a} and {dir_b} exists; {split} skipped", file=sys.stderr)
        if not (os.path.isdir(dir_a) and os.path.isdir(dir_b)):
            continue
        dir_out = os.path.join(dataset_path, split)
        written[split], resized = align_split(dir_a, dir_b, dir_out)
        print(f"{split}: wrote {written[split]} pairs to {dir_out}")
        if resized:
            print(f"note: {split}: {resized} B pictures were resized to their A picture's size", file=sys.stderr)
    if not written:
        raise UserError(f"{dataset_path} has no pair of folders trainA/ + trainB/ (or testA/ + testB/, "
                        "valA/ + valB/); put the A and B pictures there")
    return written


@exit_on_user_error
def main(argv=None):
    """Align the dataset named on the command line. argv: arguments, default sys.argv[1:]."""
    parser = argparse.ArgumentParser(description="Write <split>A/ and <split>B/ pictures side by side "
                                                 "into <split>/ for pix2pix.")
    parser.add_argument("--dataset-path", dest="dataset_path", required=True,
                        help="folder holding trainA/, trainB/ (and testA/, testB/, valA/, valB/)")
    align_dataset(parser.parse_args(argv).dataset_path)


if __name__ == "__main__":
    main()
