"""Adversarial losses chosen by `--gan_mode`, and the penalties on D's input gradients (WGAN-GP, R1)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

GAN_MODE_CHOICES = ("vanilla", "lsgan", "wgangp", "nonsaturating")


class GANLoss(nn.Module):
    """Loss of a discriminator's predictions against the label "real" or "fake".

    gan_mode: lsgan = mean squared error to 1/0; vanilla = binary cross-entropy on logits to 1/0;
    nonsaturating = mean softplus(-prediction) for real, softplus(prediction) for fake: the name the
    StyleGAN2 and official CUT code give this loss, which is vanilla's value for value (the cross-entropy
    of a logit p to 1 is softplus(-p), to 0 softplus(p)), so it is computed as vanilla; wgangp =
    -mean(prediction) for real, +mean(prediction) for fake (the penalty is separate:
    `gradient_penalty`). Losses are computed in fp32 whatever the prediction's dtype.
    """

    def __init__(self, gan_mode, real_label=1.0, fake_label=0.0):
        super().__init__()
        if gan_mode not in GAN_MODE_CHOICES:
            raise ValueError(f"unknown gan mode {gan_mode!r}; choose one of {', '.join(GAN_MODE_CHOICES)}")
        self.gan_mode = gan_mode
        self.real_label = real_label
        self.fake_label = fake_label
        self.criterion = {"lsgan": nn.MSELoss(), "vanilla": nn.BCEWithLogitsLoss(),
                          "nonsaturating": nn.BCEWithLogitsLoss()}.get(gan_mode)

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


def input_gradients(netD, x, transform=None):
    """The gradient of D's scores (summed) with respect to its input `x`, kept in the graph so that a
    penalty on it trains D (a double backward).

    netD: the discriminator, outside DistributedDataParallel (which does not support autograd.grad;
    the penalty's parameter gradients still reach DDP's averaging, through the same backward as the
    rest of D's loss); x: the input batch (detached here); transform: what turns `x` into D's input
    (--diffaug, pix2pix's pairing), differentiated through. Returns fp32 gradients of x's shape.

    This pass runs in fp32 whatever --amp says: under fp16 the gradient of each score (1, times a loss
    scale of up to 65536) overflows float16 at once, and a penalty that is inf or NaN would stop the
    run rather than merely skip a step; fp32 needs no scaling. The penalty's parameter gradients
    then flow through fp32 operations, scaled with the rest of D's loss by its GradScaler.
    """
    x = x.detach().float().requires_grad_(True)
    # Code compiled by torch.compile has no double backward: D runs eagerly here, same weights.
    with torch.compiler.set_stance("force_eager"), torch.autocast(x.device.type, enabled=False):
        scores = netD(transform(x) if transform else x)
    (grads,) = torch.autograd.grad(scores, x, grad_outputs=torch.ones_like(scores), create_graph=True,
                                   retain_graph=True)
    return grads


def gradient_penalty(netD, real, fake, weight=10.0, target_norm=1.0, alpha=None, transform=None):
    """WGAN-GP penalty: weight * E[(||grad_x D(x)|| - target_norm)^2] at x = alpha real + (1 - alpha) fake.

    netD, transform: as for input_gradients; real/fake: batches of the same shape (fake is detached
    here); weight: lambda of the penalty (10 in the WGAN-GP paper); alpha: one interpolation weight
    per sample (None: uniform random).
    Returns a scalar that keeps the graph, so its backward trains D.
    """
    if alpha is None:
        alpha = torch.rand(real.size(0), device=real.device)
    alpha = alpha.view(-1, *([1] * (real.dim() - 1))).to(real.device, torch.float32)
    interpolates = alpha * real.detach().float() + (1 - alpha) * fake.detach().float()
    grads = input_gradients(netD, interpolates, transform)
    norms = (grads.flatten(1) + 1e-16).norm(2, dim=1)
    return weight * ((norms - target_norm) ** 2).mean()


def r1_penalty(netD, real, gamma, transform=None):
    """R1 penalty (Mescheder et al. 2018): gamma / 2 * E[||grad_x D(x)||^2] on real images x.

    netD, transform: as for input_gradients (with --diffaug, D judges the augmented reals and
    the gradient is taken through the augmentation, as StyleGAN2-ADA does); real: a batch of real
    images, the part of D's input the generator competes with (pix2pix: B, with the pairing in
    `transform`). Returns a scalar that keeps the graph, so its backward trains D.
    """
    grads = input_gradients(netD, real, transform)
    return gamma / 2 * grads.pow(2).flatten(1).sum(1).mean()


class LazyR1:
    """The R1 penalty of --r1_gamma, computed only every --r1_every discriminator steps and then
    weighted by that number (lazy regularisation, StyleGAN2), so that on average it weighs gamma / 2.

    gamma: the penalty's weight (0: never due); every: the interval in discriminator steps.
    """

    def __init__(self, gamma, every=1):
        self.gamma, self.every = gamma, every

    def due(self, steps_taken):
        """Whether the step after `steps_taken` discriminator steps carries the penalty."""
        return self.gamma > 0 and steps_taken % self.every == 0

    def __call__(self, netD, real, transform=None):
        """(the penalty, what it adds to D's loss: the penalty times `every`); arguments as r1_penalty's."""
        penalty = r1_penalty(netD, real, self.gamma, transform)
        return penalty, penalty * self.every
