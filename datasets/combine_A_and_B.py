"""Build a pix2pix (aligned) dataset from two folders of matching pictures: A|B side by side.

    python datasets/combine_A_and_B.py --fold_A /path/A --fold_B /path/B --fold_AB /path/AB

fold_A and fold_B hold the same split folders (train/, val/, test/, ...); a picture in fold_A/<split>
is paired with the picture of the same file name in fold_B/<split> (with --use_AB: `x_A.jpg` with
`x_B.jpg`, written as `x.jpg`). Each pair is written to fold_AB/<split>/ under A's file name, A on the
left. A B picture of another size is resized to A's size; A pictures without a partner are skipped
with a warning. Every split folder present in both fold_A and fold_B is combined.
"""
import argparse
import os
import sys
from multiprocessing import Pool

from PIL import Image, UnidentifiedImageError

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from data.image_folder import is_image_file  # noqa: E402
from util.errors import UserError, exit_on_user_error  # noqa: E402

JPEG_QUALITY = 95  # well above Pillow's default 75, so the pairs do not lose visible detail
EXAMPLES_SHOWN = 3


def load_rgb(path):
    """Open a picture as RGB. path: its file; a file that is not a readable picture is a UserError."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise UserError(f"cannot read the picture {path} ({err}); replace or delete it") from err


def side_by_side(image_a, image_b):
    """One RGB picture with image_a on the left and image_b (resized to image_a's size) on the right."""
    if image_b.size != image_a.size:
        image_b = image_b.resize(image_a.size, Image.BICUBIC)
    width, height = image_a.size
    combined = Image.new("RGB", (2 * width, height))
    combined.paste(image_a, (0, 0))
    combined.paste(image_b, (width, 0))
    return combined


def combine_pair(path_a, path_b, path_ab):
    """Write A and B side by side (B resized to A's size if needed); return True if B was resized.

    path_a: the left picture. path_b: the right picture. path_ab: where the combined picture goes.
    """
    image_a = load_rgb(path_a)
    image_b = load_rgb(path_b)
    is_jpeg = os.path.splitext(path_ab)[1].lower() in (".jpg", ".jpeg")
    side_by_side(image_a, image_b).save(path_ab, **({"quality": JPEG_QUALITY} if is_jpeg else {}))
    return image_b.size != image_a.size


def combine_job(job):
    """Pool-friendly wrapper of combine_pair. job: a (path_a, path_b, path_ab) tuple."""
    return combine_pair(*job)


def run_jobs(jobs, use_processes):
    """Combine every pair; return how many B pictures were resized.

    jobs: (path_a, path_b, path_ab) tuples. use_processes: spread the work over all CPU cores.
    """
    if use_processes and len(jobs) > 1:
        with Pool() as pool:
            return sum(pool.map(combine_job, jobs, chunksize=16))
    return sum(combine_pair(*job) for job in jobs)


def require_folder(path, flag):
    """Fail clearly unless `path` is a folder. path: the folder. flag: the option that named it."""
    if not os.path.isdir(path):
        raise UserError(f"{flag} folder {path} does not exist; pass a folder holding train/, test/, ...")


def shared_splits(fold_a, fold_b):
    """Sorted names of the sub-folders (splits) present in both fold_a and fold_b."""
    def subfolders(fold):
        return {name for name in os.listdir(fold) if os.path.isdir(os.path.join(fold, name))}
    splits = sorted(subfolders(fold_a) & subfolders(fold_b))
    if not splits:
        raise UserError(f"{fold_a} and {fold_b} share no split folder; put the pictures in "
                        f"{os.path.join(fold_a, 'train')} and {os.path.join(fold_b, 'train')} (same names)")
    return splits


def partner_name(name_a, use_ab):
    """B's file name for A's file name. name_a: A's file name. use_ab: names carry _A / _B."""
    return name_a.replace("_A.", "_B.") if use_ab else name_a


def output_name(name_a, use_ab):
    """The combined picture's file name. name_a: A's file name. use_ab: drop the _A marker."""
    return name_a.replace("_A.", ".") if use_ab else name_a


def plan_split(dir_a, dir_b, dir_ab, num_imgs, use_ab):
    """Pair the pictures of one split; return (jobs, names of A pictures with no partner in B).

    dir_a, dir_b: the split's input folders. dir_ab: its output folder. num_imgs: most A pictures
    to use. use_ab: pair `x_A.*` with `x_B.*` instead of equal names.
    """
    names_a = sorted(name for name in os.listdir(dir_a)
                     if is_image_file(name) and (not use_ab or "_A." in name))[:num_imgs]
    jobs, unmatched = [], []
    for name_a in names_a:
        path_b = os.path.join(dir_b, partner_name(name_a, use_ab))
        if os.path.isfile(path_b):
            path_ab = os.path.join(dir_ab, output_name(name_a, use_ab))
            jobs.append((os.path.join(dir_a, name_a), path_b, path_ab))
        else:
            unmatched.append(name_a)
    return jobs, unmatched


def report_split(split, dir_ab, written, resized, unmatched, dir_b):
    """Print what one split produced, with a warning for skipped pictures and a note for resized ones."""
    print(f"{split}: wrote {written} pairs to {dir_ab}")
    if unmatched:
        examples = ", ".join(unmatched[:EXAMPLES_SHOWN]) + (", ..." if len(unmatched) > EXAMPLES_SHOWN else "")
        print(f"warning: {split}: {len(unmatched)} A pictures have no partner in {dir_b} and were "
              f"skipped ({examples})", file=sys.stderr)
    if resized:
        print(f"note: {split}: {resized} B pictures differed in size from their A picture and were "
              f"resized to A's size", file=sys.stderr)


def combine_folders(fold_a, fold_b, fold_ab, num_imgs=1_000_000, use_ab=False, use_processes=True):
    """Combine every split present in both folders; return {split: number of pairs written}.

    fold_a, fold_b: folders of split folders with matching pictures. fold_ab: output folder.
    num_imgs: most pictures per split. use_ab: pair `x_A.*` with `x_B.*`. use_processes: use all cores.
    """
    require_folder(fold_a, "--fold_A")
    require_folder(fold_b, "--fold_B")
    if num_imgs < 1:
        raise UserError(f"--num_imgs is {num_imgs}; pass a positive number")
    written = {}
    for split in shared_splits(fold_a, fold_b):
        dir_a, dir_b, dir_ab = (os.path.join(fold, split) for fold in (fold_a, fold_b, fold_ab))
        jobs, unmatched = plan_split(dir_a, dir_b, dir_ab, num_imgs, use_ab)
        if jobs:
            os.makedirs(dir_ab, exist_ok=True)
        resized = run_jobs(jobs, use_processes)
        report_split(split, dir_ab, len(jobs), resized, unmatched, dir_b)
        written[split] = len(jobs)
    if not any(written.values()):
        hint = ("each x_A.* needs a partner x_B.*" if use_ab
                else "pictures pair up by equal file names (or pass --use_AB for x_A.* / x_B.*)")
        raise UserError(f"no picture of {fold_a} has a partner in {fold_b}; {hint}")
    return written


def parse_args(argv=None):
    """Read the command line (the original tool's flags). argv: arguments, default sys.argv[1:]."""
    parser = argparse.ArgumentParser(description="Put pictures of fold_A and fold_B side by side (A|B).")
    parser.add_argument("--fold_A", required=True, help="input folder of A pictures, with train/, test/, ...")
    parser.add_argument("--fold_B", required=True, help="input folder of B pictures, same layout and names")
    parser.add_argument("--fold_AB", required=True, help="output folder for the A|B pictures")
    parser.add_argument("--num_imgs", type=int, default=1_000_000, help="most pictures per split")
    parser.add_argument("--use_AB", action="store_true", help="pair x_A.* with x_B.* and write x.*")
    parser.add_argument("--no_multiprocessing", action="store_true", help="combine in one process")
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    """Combine the folders named on the command line. argv: arguments, default sys.argv[1:]."""
    args = parse_args(argv)
    combine_folders(args.fold_A, args.fold_B, args.fold_AB, args.num_imgs, args.use_AB,
                    use_processes=not args.no_multiprocessing)


if __name__ == "__main__":
    main()
