"""Flags of train.py: display, saving, schedule and optimiser settings (plus the base flags)."""
import data
from engine.train_state import guard_existing_run
from metrics.registry import SSIM_WINDOW
from models.losses import GAN_MODE_CHOICES
from models.schedulers import LR_POLICY_CHOICES
from util.errors import UserError
from util.log import logger
from util.ranges import NumberRange

from .base_options import BaseOptions


class TrainOptions(BaseOptions):
    """Options for training."""

    is_train = True
    description = "Train a CycleGAN, pix2pix or other image-to-image model."

    def initialize(self, parser):
        parser = super().initialize(parser)
        g = parser.add_argument_group("visdom and web page")
        g.add_argument("--display_id", type=NumberRange(int), default=1,
                       help="window id of the visdom display; 0 or less turns visdom off")
        g.add_argument("--display_server", type=str, default="http://localhost", help="visdom server of the display")
        g.add_argument("--display_env", type=str, default="main", help="visdom environment of the display")
        g.add_argument("--display_port", type=NumberRange(int, minimum=1, maximum=65535), default=8097,
                       help="visdom port of the display")
        g.add_argument("--display_ncols", type=NumberRange(int, minimum=0), default=4,
                       help="show this many images per row in one visdom window; 0 gives one window per image")
        g.add_argument("--display_freq", type=NumberRange(int, minimum=0), default=400,
                       help="show training results every this many images; 0: only at the end of each epoch")
        g.add_argument("--update_html_freq", type=NumberRange(int, minimum=0), default=1000,
                       help="save training results to the web page every this many images; 0: only at the end of "
                            "each epoch")
        g.add_argument("--print_freq", type=NumberRange(int, minimum=0), default=100,
                       help="print and log the losses every this many images; 0: never")
        g.add_argument("--no_html", action="store_true",
                       help="do not save intermediate results to checkpoints_dir/name/web/")
        g.add_argument("--use_tensorboard", action="store_true",
                       help="also log losses, metrics and pictures for TensorBoard, in checkpoints_dir/name/tensorboard/")
        g.add_argument("--use_wandb", action="store_true",
                       help="also log losses, metrics and pictures to Weights & Biases (set WANDB_MODE=offline to "
                            "keep them local)")
        # --wandb_project_name is the 2025 original's spelling: a current name there, so a silent synonym.
        g.add_argument("--wandb_project", "--wandb_project_name", type=str, default="CycleGAN-and-pix2pix",
                       help="W&B project of the run")
        g = parser.add_argument_group("evaluation during training")
        g.add_argument("--eval_freq", type=NumberRange(int, minimum=0), default=0,
                       help="compute --metrics every this many epochs (and after the last one), or images with "
                            "--eval_unit iters, on the evaluation images; log them and keep the best weights as "
                            "best_net_*.pth; 0: never")
        g.add_argument("--eval_unit", type=str, default="epochs", choices=("epochs", "iters"),
                       help="what --eval_freq counts: epochs, or iters (images, like --print_freq)")
        g.add_argument("--eval_dataroot", type=str, default=None,
                       help="dataset folder of the evaluation images, laid out like --dataroot; None: --dataroot itself")
        g.add_argument("--eval_phase", type=str, default="test",
                       help="subfolder of the evaluation images: testA/testB, or test/ for aligned data")
        g.add_argument("--best_metric", type=str, default=None,
                       help="the metric that picks best_net_*.pth, averaged over both directions; None: the "
                            "first of --metrics")
        g = parser.add_argument_group("saving and resuming")
        g.add_argument("--save_latest_freq", type=NumberRange(int, minimum=0), default=5000,
                       help="save the latest model every this many images; 0: only the saves of --save_epoch_freq "
                            "and of the end")
        g.add_argument("--save_epoch_freq", type=NumberRange(int, minimum=1), default=5,
                       help="save a copy of the model at the end of every this many epochs")
        g.add_argument("--save_by_iter", action="store_true",
                       help="also keep the weights of each --save_latest_freq save, as iter_<images seen> "
                            "(latest is updated too)")
        g.add_argument("--continue_train", action="store_true",
                       help="continue training exactly where it stopped, from latest_state.pth; with --epoch/"
                            "--load_iter, or with only weights saved (original tool), load those weights and start "
                            "at --epoch_count with fresh optimisers")
        g.add_argument("--epoch_count", type=NumberRange(int, minimum=1), default=1,
                       help="the starting epoch number of a new run, or of a run continued from weights saved by the "
                            "original tool; --continue_train with a training state continues where it stopped instead, "
                            "and its learning-rate schedule keeps counting from the run's first epoch (its length "
                            "follows the current --n_epochs and --n_epochs_decay, so a continued run can be lengthened)")
        g.add_argument("--phase", type=str, default="train", help="train, val, test, etc.: the dataset subfolder to read")
        g.add_argument("--keep_last", type=NumberRange(int, minimum=0), default=0,
                       help="keep only the newest this many epoch (and iteration) saves; 0 keeps all. "
                            "latest (weights and training state) is never removed")
        g.add_argument("--overwrite", action="store_true",
                       help="start a new run under a --name that already holds one; its files are moved "
                            "to checkpoints_dir/name/replaced-<date>/, not deleted")
        g.add_argument("--deterministic", action="store_true",
                       help="use only deterministic algorithms (slower on GPU); with --seed, an interrupted and "
                            "resumed run then ends with the same weights as an uninterrupted one")
        g = parser.add_argument_group("optimisation")
        g.add_argument("--n_epochs", type=NumberRange(int, minimum=0), default=100,
                       help="number of epochs at the initial learning rate")
        g.add_argument("--n_epochs_decay", type=NumberRange(int, minimum=0), default=100,
                       help="number of epochs to decay the learning rate over")
        g.add_argument("--beta1", type=NumberRange(float, minimum=0, below=1), default=0.5,
                       help="momentum term of Adam")
        g.add_argument("--beta2", type=NumberRange(float, minimum=0, below=1), default=0.999,
                       help="decay of Adam's second-moment average (the official CUT code's flag; sincut uses 0.99)")
        g.add_argument("--lr", type=NumberRange(float, minimum=0), default=0.0002,
                       help="initial learning rate of Adam; 0 keeps the weights as they are (e.g. to check a resume)")
        g.add_argument("--gan_mode", type=str, default="lsgan", choices=GAN_MODE_CHOICES,
                       help="GAN objective: vanilla (cross-entropy of the original GAN paper), lsgan (least squares), "
                            "wgangp (Wasserstein with gradient penalty), or nonsaturating (the name StyleGAN2 and "
                            "the official CUT code give vanilla's loss: the same values)")
        g.add_argument("--pool_size", type=NumberRange(int, minimum=0), default=50,
                       help="size of the buffer of previously generated images; 0: no buffer")
        g.add_argument("--lr_policy", type=str, default="linear", choices=LR_POLICY_CHOICES,
                       help="learning-rate policy: linear decay, step (x0.1 every --lr_decay_iters epochs), "
                            "plateau (x0.2 when the epoch's mean generator loss stalls) or cosine over the whole run")
        g.add_argument("--lr_decay_iters", type=NumberRange(int, minimum=1), default=50,
                       help="epochs between x0.1 decays of the step policy")
        g.add_argument("--ema_decay", type=NumberRange(float, minimum=0, below=1), default=0.0,
                       help="keep an exponential moving average (EMA) of the generators' weights, updated after "
                            "every generator step: ema = d * ema + (1 - d) * weights, d = min(D, (1 + n) / (10 + n)) "
                            "at update n (a warm-up, so early averages are not stale); typical: 0.999. The average "
                            "makes the visuals, the --eval_freq evaluations and best_net_*.pth, and is saved as the "
                            "usual *_net_G*.pth files that test.py and scripts/export.py load (the raw weights as "
                            "*_net_G*_raw.pth, see --raw_weights); 0: off")
        parser.add_alias("--niter", "--n_epochs", "n_epochs", type=int)
        parser.add_alias("--niter_decay", "--n_epochs_decay", "n_epochs_decay", type=int)
        parser.add_alias("--no_lsgan", "--gan_mode vanilla", "gan_mode", const="vanilla")
        return parser

    def finalize(self, opt, parser, explicit):
        check_epochs(opt)
        finalize_evaluation(opt)
        note_idle_r1_every(opt, explicit)
        guard_existing_run(opt, self.launch)


def note_idle_r1_every(opt, explicit):
    """A note when --r1_every is given without the R1 penalty it schedules (--r1_gamma 0, the default)."""
    if "r1_every" in explicit and not getattr(opt, "r1_gamma", 0):
        logger.info(f"note: --r1_every {opt.r1_every} has no effect without --r1_gamma (the R1 penalty is off)")


def check_epochs(opt):
    """UserError when the epoch flags leave nothing to train (each is in range on its own)."""
    last_epoch = opt.n_epochs + opt.n_epochs_decay
    if last_epoch < 1:
        raise UserError(f"--n_epochs {opt.n_epochs} --n_epochs_decay {opt.n_epochs_decay} leave nothing to train; "
                        "together they must be at least 1 epoch")
    # With --continue_train a saved training state decides the starting epoch instead.
    if opt.epoch_count > last_epoch and not opt.continue_train:
        raise UserError(f"--epoch_count {opt.epoch_count} starts after the last epoch (--n_epochs + --n_epochs_decay "
                        f"= {last_epoch}), so nothing would be trained; it must be from 1 to {last_epoch}")


def finalize_evaluation(opt):
    """Check the evaluation flags and fill in the default metrics (fid,kid; psnr,ssim for aligned data)."""
    if opt.eval_freq == 0:
        if opt.metrics:
            logger.info("note: --metrics has no effect on training without --eval_freq")
        return
    if not opt.metrics:
        opt.metrics = "psnr,ssim" if opt.dataset_mode == "aligned" else "fid,kid"
    names = opt.metrics.split(",")
    opt.best_metric = (opt.best_metric or names[0]).lower()
    if opt.best_metric not in names:
        raise UserError(f"--best_metric {opt.best_metric!r} is not among --metrics {opt.metrics}; "
                        "choose one of them or add it to --metrics")
    if "ssim" in names and opt.preprocess in data.CROP_MODES and opt.crop_size < SSIM_WINDOW:
        raise UserError(f"--metrics ssim needs images of at least {SSIM_WINDOW} pixels per side (its window), "
                        f"--crop_size is {opt.crop_size}; leave ssim out of --metrics or raise --crop_size")
