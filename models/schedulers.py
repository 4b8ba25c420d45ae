"""Learning-rate schedules chosen by `--lr_policy`, stepped once per epoch.

Every policy except plateau is a factor of the epoch number counted from the start of the run
(`--epoch_count` onwards), so a run continued at epoch k gets the learning rate it would have had.
A resumed run keeps the first epoch of its own start (saved in the scheduler's state) and takes
the run's length (--n_epochs, --n_epochs_decay) from the current command, so it can be lengthened.
"""
import math

from torch.optim import lr_scheduler

LR_POLICY_CHOICES = ("linear", "step", "plateau", "cosine")


def lr_factor(policy, epoch, opt):
    """Multiplier of `--lr` during `epoch` (1-based) of a run of n_epochs + n_epochs_decay epochs.

    linear: 1 for n_epochs epochs, then down by 1/(n_epochs_decay + 1) per epoch;
    step: x0.1 every lr_decay_iters epochs; cosine: half a cosine from 1 towards 0 over the run.
    """
    if policy == "linear":
        return 1.0 - max(0, epoch - opt.n_epochs) / float(opt.n_epochs_decay + 1)
    if policy == "step":
        return 0.1 ** ((epoch - 1) // opt.lr_decay_iters)
    if policy == "cosine":
        total = opt.n_epochs + opt.n_epochs_decay
        return 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / total))
    raise ValueError(f"unknown lr policy {policy!r}; choose one of {', '.join(LR_POLICY_CHOICES)}")


class EpochLR(lr_scheduler.LambdaLR):
    """--lr times lr_factor(policy, epoch) with epoch = first_epoch + epochs stepped. first_epoch,
    the --epoch_count the run started with, is part of its state_dict; opt: the current options."""

    def __init__(self, optimizer, opt):
        self.first_epoch = opt.epoch_count
        self.current_lrs = [group["lr"] for group in optimizer.param_groups]  # --lr of this command
        super().__init__(optimizer, lambda steps: lr_factor(opt.lr_policy, self.first_epoch + steps, opt))

    def state_dict(self):
        """LambdaLR's state (first_epoch included) without the current --lr, which the resuming
        command decides."""
        state = super().state_dict()
        del state["current_lrs"]
        return state

    def load_state_dict(self, state_dict):
        """Restore a saved state (load the optimiser's first); the current epoch's rate is recomputed
        from the current options (--lr and the run's length), as the original tool's resume does."""
        super().load_state_dict(state_dict)
        self.base_lrs = list(self.current_lrs)
        for group, base_lr, factor in zip(self.optimizer.param_groups, self.base_lrs, self.lr_lambdas):
            group["initial_lr"] = base_lr
            group["lr"] = base_lr * factor(self.last_epoch)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


def get_scheduler(optimizer, opt):
    """Scheduler for `optimizer` by `opt.lr_policy`; the plateau one needs `step(metric)`."""
    if opt.lr_policy == "plateau":
        # Watches the epoch's mean generator loss (see BaseModel.update_learning_rate).
        return lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.2, threshold=0.01, patience=5)
    return EpochLR(optimizer, opt)
