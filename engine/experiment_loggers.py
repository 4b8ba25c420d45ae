"""Optional experiment trackers: TensorBoard (`--use_tensorboard`) and Weights & Biases (`--use_wandb`).

The Visualizer owns one `ExperimentLoggers` and hands it loss and metric values and the pictures of
each epoch. A tracker's package is imported only when its flag is on, so neither is needed to train.
TensorBoard event files go to `checkpoints/NAME/tensorboard/`; W&B writes under `checkpoints/NAME/wandb/`
and keeps its run id in `checkpoints/NAME/wandb_run_id.txt`, so `--continue_train` goes on in the same
W&B run. A tracker that fails mid-run costs one warning line and is switched off; training goes on.
"""
import math
import os

from util.errors import UserError
from util.log import logger
from util.util import mkdirs

TENSORBOARD_FOLDER = "tensorboard"
WANDB_RUN_ID_FILE = "wandb_run_id.txt"
WANDB_STEP_KEY = "images_seen"
WANDB_INIT_TIMEOUT_S = 30.0
WANDB_INIT_TIMEOUT_ENV = "WANDB_INIT_TIMEOUT"


class ExperimentLoggers:
    """The enabled trackers of one training run; with none enabled every call does nothing.

    opt: options with name, checkpoints_dir, use_tensorboard, use_wandb, wandb_project, continue_train.
    """

    def __init__(self, opt):
        run_dir = os.path.join(opt.checkpoints_dir, opt.name)
        self._backends = []
        if opt.use_tensorboard:
            self._backends.append(_TensorBoard(run_dir))
        if opt.use_wandb:
            self._backends.append(_WandB(opt, run_dir))

    @property
    def enabled(self):
        """Whether at least one tracker is still logging."""
        return bool(self._backends)

    def log_scalars(self, values, step):
        """Log numbers such as {"loss/G_A": 0.5}.

        values: dict name -> number. step: training images seen so far (the x axis).
        """
        self._for_each_backend("log_scalars", values, step)

    def log_images(self, pictures, step):
        """Log pictures.

        pictures: dict label -> uint8 HxWx3 array. step: training images seen so far.
        """
        self._for_each_backend("log_images", pictures, step)

    def close(self, failed=False):
        """Flush and close every tracker; safe to call twice.

        failed: whether training ended with an error (W&B then marks the run as failed).
        """
        for backend in self._backends:
            self._close_quietly(backend, failed)
        self._backends = []

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        self.close(failed=exc_type is not None)

    def _for_each_backend(self, method, *args):
        for backend in list(self._backends):
            try:
                getattr(backend, method)(*args)
            except Exception as err:  # a tracker must never take training down
                logger.warning(f"{backend.title} logging failed ({_one_line(err)}); "
                               f"{backend.title} is off for the rest of this run")
                self._backends.remove(backend)
                self._close_quietly(backend, failed=True)

    @staticmethod
    def _close_quietly(backend, failed):
        try:
            backend.close(failed)
        except Exception as err:  # closing is best effort; the data written so far stays
            logger.warning(f"{backend.title} could not close cleanly ({_one_line(err)})")


class _TensorBoard:
    """Scalars and pictures as TensorBoard event files in run_dir/tensorboard/.

    The writer is opened at the first logged step and told to purge from there: TensorBoard then
    hides the points an earlier run of this experiment wrote at that step or later (the stretch a
    resumed run replays, or a whole earlier run of the same name), so every curve tells one story.
    """

    title = "TensorBoard"

    def __init__(self, run_dir):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError("--use_tensorboard needs the tensorboard package: "
                            "pip install tensorboard==2.21.0") from None
        self.summary_writer_class = SummaryWriter
        self.log_dir = os.path.join(run_dir, TENSORBOARD_FOLDER)
        self.writer = None
        try:
            mkdirs(self.log_dir)
        except OSError as err:
            raise UserError(f"cannot write TensorBoard logs to {self.log_dir} ({_one_line(err)}); "
                            "make the folder writable or pass another --checkpoints_dir") from None

    def log_scalars(self, values, step):
        writer = self._writer_from(step)
        for name, value in values.items():
            writer.add_scalar(name, value, global_step=step)

    def log_images(self, pictures, step):
        writer = self._writer_from(step)
        for label, picture in pictures.items():
            writer.add_image(label, picture, global_step=step, dataformats="HWC")

    def close(self, failed):
        if self.writer is not None:
            self.writer.close()

    def _writer_from(self, step):
        if self.writer is None:
            self.writer = self.summary_writer_class(log_dir=self.log_dir, purge_step=step)
        return self.writer


class _WandB:
    """Scalars and pictures in one Weights & Biases run, resumed by id under --continue_train.

    W&B's own step must only grow: a `log(step=...)` below the run's last step is dropped with a
    warning. A resumed run replays the steps between its last checkpoint and the point where the
    old run stopped, so our step cannot be W&B's step. We therefore let W&B count its own step and
    log the images seen as an ordinary value (`images_seen`), declared as the x axis of every chart.
    Replayed points then show up as a second stretch over the same x range instead of vanishing.
    """

    title = "W&B"

    def __init__(self, opt, run_dir):
        try:
            import wandb
        except ImportError:
            raise UserError("--use_wandb needs the wandb package: pip install wandb==0.31.0") from None
        self.wandb = wandb
        mkdirs(run_dir)
        self.id_path = os.path.join(run_dir, WANDB_RUN_ID_FILE)
        run_id = _read_run_id(self.id_path) if opt.continue_train else None
        try:
            self.run = wandb.init(
                dir=run_dir, project=opt.wandb_project, name=opt.name, config=_json_safe_options(opt),
                id=run_id, resume="allow" if run_id else None,
                # each ExperimentLoggers owns its run, never another one that happens to be active
                reinit="create_new", settings=wandb.Settings(**_init_timeout_setting()))
            self.run.define_metric(WANDB_STEP_KEY)
            self.run.define_metric("*", step_metric=WANDB_STEP_KEY)
        except Exception as err:  # wandb raises UsageError (no API key), CommError (no network), ...
            raise UserError(f"W&B could not start ({_one_line(err)}); run `wandb login`, "
                            "or set WANDB_MODE=offline to log locally") from None
        with open(self.id_path, "w", encoding="utf-8") as id_file:
            id_file.write(self.run.id + "\n")

    def log_scalars(self, values, step):
        self.run.log({**values, WANDB_STEP_KEY: step})

    def log_images(self, pictures, step):
        images = {label: self.wandb.Image(picture) for label, picture in pictures.items()}
        self.run.log({**images, WANDB_STEP_KEY: step})

    def close(self, failed):
        self.run.finish(exit_code=1 if failed else 0)


def _read_run_id(path):
    """The W&B run id saved by an earlier run of this experiment, or None."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as id_file:
        return id_file.read().strip() or None


def _init_timeout_setting():
    """A shorter wandb.init timeout than W&B's 90 s, unless the user set WANDB_INIT_TIMEOUT."""
    return {} if WANDB_INIT_TIMEOUT_ENV in os.environ else {"init_timeout": WANDB_INIT_TIMEOUT_S}


def _json_safe_options(opt):
    """The options as a W&B config: numbers, strings, booleans, None and lists of them."""
    def is_plain(value):
        if isinstance(value, float):
            return math.isfinite(value)  # max_dataset_size=inf is not valid JSON
        return isinstance(value, (str, int, bool, type(None)))

    def is_safe(value):
        return is_plain(value) or (isinstance(value, (list, tuple)) and all(map(is_plain, value)))

    return {key: value for key, value in vars(opt).items() if is_safe(value)}


def _one_line(err):
    """The first line of an exception's message (wandb's messages run over several lines)."""
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
