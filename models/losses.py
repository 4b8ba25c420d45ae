"""Adversarial losses chosen by `--gan_mode`, and the WGAN-GP gradient penalty."""
import torch
import torch.nn as nn
import torch.nn.functional as F

GAN_MODE_CHOICES = ("vanilla", "lsgan", "wgangp")


class GANLoss(nn.Module):
    """Loss of a discriminator's predictions against the label "real" or "fake".

    gan_mode: lsgan = mean squared error to 1/0; vanilla = binary cross-entropy on logits to 1/0;
    wgangp = -mean(prediction) for real, +mean(prediction) for fake (the penalty is separate:
    `gradient_penalty`). Losses are computed in fp32 whatever the prediction's dtype.
    """

    def __init__(self, gan_mode, real_label=1.0, fake_label=0.0):
        super().__init__()
        if gan_mode not in GAN_MODE_CHOICES:
            raise ValueError(f"unknown gan mode {gan_mode!r}; choose one of {', '.join(GAN_MODE_CHOICES)}")
        self.gan_mode = gan_mode
        self.real_label = real_label
        self.fake_label = fake_label
        self.criterion = {"lsgan": nn.MSELoss(), "vanilla": nn.BCEWithLogitsLoss()}.get(gan_mode)

    def forward(self, prediction, target_is_real):
        """prediction: a discriminator's output; target_is_real: whether it should call it real."""
        prediction = prediction.float()
        if self.gan_mode == "wgangp":
            return -prediction.mean() if target_is_real else prediction.mean()
        target = torch.full_like(prediction, self.real_label if target_is_real else self.fake_label)
        return self.criterion(prediction, target)


def l1_loss(output, target):
    """Mean absolute difference, computed in fp32 whatever the inputs' dtype (safe under --amp)."""
    return F.l1_loss(output.float(), target.float())


def gradient_penalty(netD, real, fake, weight=10.0, target_norm=1.0, scaler=None, alpha=None):
    """WGAN-GP penalty: weight * E[(||grad_x D(x)|| - target_norm)^2] at x = alpha real + (1 - alpha) fake.

    netD: the discriminator, outside DistributedDataParallel (which does not support autograd.grad;
    the penalty's parameter gradients still reach DDP's averaging, through the same backward as the
    rest of D's loss); real/fake: batches of the same shape (fake is detached here); weight: lambda
    of the penalty (10 in the WGAN-GP paper); scaler: the discriminator's GradScaler under --amp fp16
    (the input gradients are taken at its scale, then unscaled, so they do not underflow); alpha:
    one interpolation weight per sample (None: uniform random).
    Returns a scalar that keeps the graph, so its backward trains D.
    """
    if alpha is None:
        alpha = torch.rand(real.size(0), device=real.device)
    alpha = alpha.view(-1, *([1] * (real.dim() - 1))).to(real.device, torch.float32)
    interpolates = (alpha * real.detach().float() + (1 - alpha) * fake.detach().float()).requires_grad_(True)
    # Code compiled by torch.compile has no double backward: D runs eagerly here, same weights.
    with torch.compiler.set_stance("force_eager"):
        scores = netD(interpolates)
    scale = scaler.get_scale() if scaler is not None and scaler.is_enabled() else 1.0
    (grads,) = torch.autograd.grad(scores, interpolates, grad_outputs=torch.full_like(scores, scale),
                                   create_graph=True, retain_graph=True)
    norms = (grads.flatten(1).float() / scale + 1e-16).norm(2, dim=1)
    return weight * ((norms - target_norm) ** 2).mean()
