"""Dataset plug-ins found by name, and the loader that train.py and test.py iterate over.

`--dataset_mode foo` imports `data/foo_dataset.py` and uses its BaseDataset subclass named `FooDataset`
(matched ignoring case and underscores). Adding a dataset means adding one such file. This module
imports torch only when a dataset is actually built, so the option parser can list the modes cheaply.
"""
import argparse
import atexit
import hashlib
import importlib
import secrets
import signal
import weakref
from pathlib import Path

from util.errors import UserError
from util.log import logger

# The --preprocess modes that end in a crop_size x crop_size crop (the others keep the images' shapes);
# zoom_and_patch is the singleimage dataset's own (data/base_dataset.zoom_and_patch).
CROP_MODES = ("resize_and_crop", "crop", "scale_width_and_crop", "zoom_and_patch")


def available_dataset_modes():
    """Sorted names of the dataset plug-ins (data/<name>_dataset.py, the base class excluded)."""
    files = Path(__file__).resolve().parent.glob("*_dataset.py")
    return sorted(path.name[:-len("_dataset.py")] for path in files if path.name != "base_dataset.py")


def find_dataset_using_name(name):
    """The BaseDataset subclass of data/<name>_dataset.py. name: the --dataset_mode value."""
    modes = available_dataset_modes()
    if name not in modes:
        raise UserError(f"unknown --dataset_mode {name!r}; choose one of {', '.join(modes)}")
    from data.base_dataset import BaseDataset
    module = importlib.import_module(f"data.{name}_dataset")
    wanted = name.replace("_", "") + "dataset"
    for value in vars(module).values():
        if (isinstance(value, type) and issubclass(value, BaseDataset)
                and value.__name__.lower().replace("_", "") == wanted):
            return value
    raise UserError(f"data/{name}_dataset.py defines no BaseDataset subclass named like {wanted!r}; "
                    "rename its class (e.g. FooDataset for foo_dataset.py)")


def get_option_setter(name):
    """The static `modify_commandline_options(parser, is_train)` of dataset `name`."""
    return find_dataset_using_name(name).modify_commandline_options


def create_dataset(opt, seed=None):
    """Build the dataset chosen by opt.dataset_mode and wrap it in a DatasetLoader.

    opt: the parsed options; seed: decides the data order and augmentation of every epoch
    (default: --seed, else a fresh random one).
    """
    return DatasetLoader(opt, seed)


def single_folder_options(opt, folder, target=True):
    """Options that read every image of `folder` (the `single` mode), preprocessed as opt reads its
    test images, in this process alone.

    target: read them with the target domain's channels (--output_nc), else the input's (--input_nc).
    """
    from runtime.runtime import attach, runtime_of
    folder_opt = argparse.Namespace(**vars(opt))
    folder_opt.dataroot, folder_opt.dataset_mode = folder, "single"
    folder_opt.direction = "BtoA" if target else "AtoB"  # what makes `single` read output_nc or input_nc
    folder_opt.max_dataset_size = float("inf")
    attach(folder_opt, runtime_of(opt).alone())
    return folder_opt


def item_seed(seed, epoch, position):
    """A 63-bit seed for one item of one epoch, the same in every process and Python run."""
    digest = hashlib.blake2b(f"{seed}:{epoch}:{position}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class EpochSampler:
    """Yields (index, item seed) for the positions of one epoch, from a chosen start position on.

    The epoch's order is a permutation drawn from (seed, epoch) (or 0, 1, ... with --serial_batches),
    and every item's augmentation seed derives from (seed, epoch, position), so an epoch can be
    replayed, or resumed in its middle, exactly, with any number of processes.
    dataset_len: items in the dataset; count: items per epoch; shuffle: permute; seed: run seed;
    rank/world_size/batch_size: under torchrun, each step takes world_size * batch_size positions
    and rank r reads the r-th block of them.
    """

    def __init__(self, dataset_len, count, shuffle, seed, rank=0, world_size=1, batch_size=1):
        self.dataset_len, self.count, self.shuffle, self.seed = dataset_len, count, shuffle, seed
        self.rank, self.world_size, self.batch_size = rank, world_size, batch_size
        self.set_epoch(1)

    def set_epoch(self, epoch, order=None, start=0):
        """Prepare `epoch`; order: a saved order to replay (default: drawn); start: positions to skip."""
        import torch
        self.epoch, self.start = epoch, start
        if order is not None:
            self.order = list(order)
        elif self.shuffle:
            generator = torch.Generator().manual_seed(item_seed(self.seed, epoch, -1))
            self.order = torch.randperm(self.dataset_len, generator=generator)[:self.count].tolist()
        else:
            self.order = list(range(self.count))

    def positions(self):
        """The epoch positions this process reads, from the start position on.

        With several processes the remaining positions are padded (by repeating the first ones) to a
        multiple of world_size, so that every rank runs the same number of equally sized batches.
        """
        remaining = list(range(self.start, self.count))
        if self.world_size == 1 or not remaining:
            return remaining
        padding = (-len(remaining)) % self.world_size
        remaining += [remaining[i % len(remaining)] for i in range(padding)]
        step = self.world_size * self.batch_size
        mine = []
        for first in range(0, len(remaining), step):
            block = remaining[first:first + step]
            share = len(block) // self.world_size
            mine += block[self.rank * share:(self.rank + 1) * share]
        return mine

    def __len__(self):
        return len(self.positions())

    def __iter__(self):
        for position in self.positions():
            yield self.order[position], item_seed(self.seed, self.epoch, position)


def collate_batch(items):
    """Collate the readable items of a batch; list the unreadable ones under 'unreadable'."""
    from torch.utils.data import default_collate
    good = [item for item in items if "unreadable" not in item]
    batch = default_collate(good) if good else {}
    batch["unreadable"] = [(item["unreadable"], item["reason"]) for item in items if "unreadable" in item]
    return batch


def _ignore_stop_signals(worker_id):
    """Data-loader workers leave Ctrl-C and SIGTERM (often sent to a whole process group) to the main
    process, which stops training cleanly and then shuts the workers down (see DatasetLoader.close)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class DatasetLoader:
    """Iterates over collated batch dicts covering at most --max_dataset_size samples per epoch.

    len() is the number of samples (not batches). Call `set_epoch` before each epoch (train.py does;
    test.py reads epoch 1). Unreadable image files are skipped with one warning each; more than
    --max_bad_images of them stop the run, and so does a folder in which no image can be read (found
    before the first batch, see `_require_readable_folders`). With --preprocess none or scale_width at
    test time and batch_size > 1, images of different sizes cannot share a batch, so batches are formed
    from same-size images (in file order) and every image keeps its full resolution.
    opt: options (dataset_mode, batch_size, serial_batches, num_threads, max_dataset_size, ...; the
    Runtime decides the share of each torchrun process and the pinned memory); seed: the run's data
    seed (default: --seed, else random).
    """

    def __init__(self, opt, seed=None):
        import torch
        from torch.utils.data import DataLoader

        from runtime.device import usable_cpus
        from runtime.runtime import runtime_of
        runtime = runtime_of(opt)
        self.opt = opt
        self.dataset = find_dataset_using_name(opt.dataset_mode)(opt)
        self.dataset.validate()
        self.bad_images = set()
        self._require_readable_folders()
        if opt.isTrain and opt.batch_size * runtime.world_size > len(self):
            raise UserError(f"--batch_size {opt.batch_size} x {runtime.world_size} process(es) is larger "
                            f"than the dataset ({len(self)} images); use a smaller --batch_size, or add images")
        self.seed = seed if seed is not None else opt.seed if opt.seed is not None else secrets.randbits(63)
        rank, world_size = runtime.rank, runtime.world_size
        batch_size = opt.batch_size
        # Test images that keep their shapes are batched by size (training refuses mixed shapes instead).
        group_by_size = opt.preprocess not in CROP_MODES and not opt.isTrain and batch_size > 1
        if group_by_size and world_size > 1:
            logger.info(f"note: with --preprocess {opt.preprocess} under torchrun, each process tests one image at "
                        "a time (images of different sizes cannot share a batch)")
            batch_size = 1
        self.sampler = EpochSampler(len(self.dataset), len(self), not opt.serial_batches, self.seed,
                                    rank, world_size, batch_size)
        num_workers = min(opt.num_threads, usable_cpus())  # more workers than cores only adds contention
        # Its own generator keeps the loader from drawing on the global torch RNG, which training uses.
        common = dict(num_workers=num_workers, pin_memory=runtime.pin_memory, persistent_workers=num_workers > 0,
                      collate_fn=collate_batch, generator=torch.Generator(), worker_init_fn=_ignore_stop_signals)
        if group_by_size and world_size == 1:
            batches = _size_grouped_batches(self.dataset, len(self), opt.batch_size)
            self.dataloader = DataLoader(self.dataset, batch_sampler=batches, **common)
        else:
            self.dataloader = DataLoader(self.dataset, batch_size=batch_size, sampler=self.sampler,
                                         drop_last=False, **common)

        # Python's exit ends worker processes with SIGTERM, which they ignore, and then waits for them:
        # a loader still alive at exit (held by a reference cycle) would hang it. Close it first.
        atexit.register(_close_if_alive, weakref.ref(self))

    def close(self):
        """Stop the persistent worker processes now (they start again at the next iteration)."""
        iterator = getattr(self.dataloader, "_iterator", None)  # where DataLoader keeps persistent workers
        if iterator is not None:
            iterator._shutdown_workers()
            self.dataloader._iterator = None

    def __len__(self):
        return int(min(len(self.dataset), self.opt.max_dataset_size))

    def set_epoch(self, epoch, order=None, start=0):
        """Prepare `epoch` (see EpochSampler.set_epoch); the order is then in `self.sampler.order`."""
        self.sampler.set_epoch(epoch, order, start)

    def __iter__(self):
        try:
            for batch in self.dataloader:
                self._note_unreadable(batch.pop("unreadable"))
                if batch:
                    yield batch
        except UserError as err:
            # A worker's error arrives wrapped with its traceback; keep the one line meant for the user.
            raise UserError(str(err).strip().splitlines()[-1].split("UserError: ", 1)[-1]) from None

    def _require_readable_folders(self):
        """UserError, before any batch, for a dataset folder in which no image can be decoded (it would
        otherwise train on nothing, or test nothing, and exit as if all went well).

        Decoding every file up front would cost a whole pass over a large dataset, so each folder is
        probed in file order until one image decodes: one decode for a healthy folder. Files that fail
        are warned about and counted like those met later (--max_bad_images), so the probe of a folder
        of broken files ends at whichever comes first: too many failures, or the end of the folder.
        """
        from data.image_io import UnreadableImage, load_image
        for folder, paths in self.dataset.folders.items():
            for path in paths:
                try:
                    load_image(path)
                    break
                except UnreadableImage as err:
                    self._note_unreadable([(err.path, err.reason)])
            else:
                raise UserError(f"none of the {len(paths)} image files in {folder!r} can be read; replace them, "
                                "or fix --dataroot")

    def _note_unreadable(self, unreadable):
        for path, reason in unreadable:
            if path in self.bad_images:
                continue
            self.bad_images.add(path)
            logger.warning(f"skipping unreadable image {path} ({reason})")
            if len(self.bad_images) > self.opt.max_bad_images:
                raise UserError(f"{len(self.bad_images)} image files could not be read (more than "
                                f"--max_bad_images {self.opt.max_bad_images}); replace or remove them, "
                                "or raise --max_bad_images")


def _close_if_alive(loader_ref):
    """atexit hook: close the DatasetLoader behind a weak reference, if it still exists."""
    loader = loader_ref()
    if loader is not None:
        loader.close()


def _size_grouped_batches(dataset, count, batch_size):
    """Index batches of at most `batch_size` items whose source images have identical sizes, in file order."""
    from data.image_folder import image_size
    from data.image_io import UnreadableImage
    groups = {}
    for index in range(count):
        try:
            sizes = tuple(image_size(path) for path in dataset.source_paths(index))
        except UnreadableImage:
            sizes = None  # the loader skips these with a warning when it reads them
        groups.setdefault(sizes, []).append(index)
    batches = [group[start:start + batch_size] for group in groups.values()
               for start in range(0, len(group), batch_size)]
    return sorted(batches, key=lambda batch: batch[0])
