"""Dataset plug-ins found by name, and the loader that train.py and test.py iterate over.

`--dataset_mode foo` imports `data/foo_dataset.py` and uses its BaseDataset subclass named `FooDataset`
(matched ignoring case and underscores). Adding a dataset means adding one such file. This module
imports torch only when a dataset is actually built, so the option parser can list the modes cheaply.
"""
import importlib
import os
from pathlib import Path

from util.errors import UserError


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


def create_dataset(opt):
    """Build the dataset chosen by opt.dataset_mode and wrap it in a DatasetLoader. opt: the parsed options."""
    return DatasetLoader(opt)


class DatasetLoader:
    """Iterates over collated batch dicts covering at most --max_dataset_size samples per epoch.

    len() is the number of samples (not batches). With --preprocess none at test time and batch_size > 1,
    images of different sizes cannot share a batch, so batches are formed from same-size images
    (in file order) and every image keeps its full resolution.
    opt: options (dataset_mode, batch_size, serial_batches, num_threads, gpu_ids, max_dataset_size, ...).
    """

    def __init__(self, opt):
        from torch.utils.data import DataLoader, RandomSampler
        self.opt = opt
        self.dataset = find_dataset_using_name(opt.dataset_mode)(opt)
        num_workers = min(opt.num_threads, _usable_cpus())  # more workers than cores only adds contention
        workers = dict(num_workers=num_workers, pin_memory=bool(opt.gpu_ids), persistent_workers=num_workers > 0)
        count = len(self)
        if opt.preprocess == "none" and not opt.isTrain and opt.batch_size > 1:
            batches = _size_grouped_batches(self.dataset, count, opt.batch_size)
            self.dataloader = DataLoader(self.dataset, batch_sampler=batches, **workers)
        else:
            # Drawing only `count` indices caps the epoch exactly, even inside the last batch.
            sampler = range(count) if opt.serial_batches else RandomSampler(self.dataset, num_samples=count)
            self.dataloader = DataLoader(self.dataset, batch_size=opt.batch_size, sampler=sampler,
                                         drop_last=False, **workers)

    def __len__(self):
        return int(min(len(self.dataset), self.opt.max_dataset_size))

    def __iter__(self):
        try:
            yield from self.dataloader
        except UserError as err:
            # A worker's error arrives wrapped with its traceback; keep the one line meant for the user.
            raise UserError(str(err).strip().splitlines()[-1].split("UserError: ", 1)[-1]) from None


def _usable_cpus():
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _size_grouped_batches(dataset, count, batch_size):
    """Index batches of at most `batch_size` items whose source images have identical sizes, in file order."""
    from data.image_folder import image_size
    groups = {}
    for index in range(count):
        sizes = tuple(image_size(path) for path in dataset.source_paths(index))
        groups.setdefault(sizes, []).append(index)
    batches = [group[start:start + batch_size] for group in groups.values()
               for start in range(0, len(group), batch_size)]
    return sorted(batches, key=lambda batch: batch[0])
