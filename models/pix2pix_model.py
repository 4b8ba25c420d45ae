"""pix2pix (Isola et al. 2017): paired translation A -> B with a conditional PatchGAN.

Generator loss: GAN(D(A, G(A))) + lambda_L1 * |G(A) - B|; the discriminator sees the input
concatenated with the real or the generated output. Each step updates D first, then G.
Optional discriminator regularisers: spectral norm, R1 on real pairs (lazy; the gradient is taken
with respect to B, the half the generator competes with), DiffAugment of every pair D judges (both
halves moved and coloured alike). models/discriminators.py has their flags.
"""
import torch

from util.ranges import NumberRange

from .base_model import BaseModel
from .diffaug import DiffAugment
from .discriminators import add_discriminator_flags, define_D
from .generators import define_G, generator_options
from .losses import GANLoss, LazyR1, gradient_penalty, l1_loss


class Pix2PixModel(BaseModel):
    """The pix2pix model; expects batches from the `aligned` dataset (A, B, A_paths, B_paths)."""

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        parser.set_defaults(norm="batch", netG="unet_256", dataset_mode="aligned")
        if is_train:
            parser.set_defaults(pool_size=0, gan_mode="vanilla")
            parser.add_argument("--lambda_L1", type=NumberRange(float, minimum=0), default=100.0,
                                help="weight of the L1 loss")
            add_discriminator_flags(parser)
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        self.loss_names = ["G_GAN", "G_L1", "D_real", "D_fake"]
        if self.isTrain and opt.r1_gamma > 0:
            self.loss_names.append("D_R1")  # the penalty's value when last computed
        self.visual_names = ["real_A", "fake_B", "real_B"]
        self.model_names = ["G", "D"] if self.isTrain else ["G"]
        self.generator_names = ["G"]
        self.netG = self.build_network(define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm,
                                                not opt.no_dropout, opt.init_type, opt.init_gain,
                                                **generator_options(opt)))
        if self.isTrain:
            self.netD = self.build_network(define_D(opt.input_nc + opt.output_nc, opt.ndf, opt.netD, opt.n_layers_D,
                                                    opt.norm, opt.init_type, opt.init_gain, opt.spectral_norm))
            self.augment = DiffAugment(opt.diffaug, pictures=(opt.input_nc, opt.output_nc))
            self.r1 = LazyR1(opt.r1_gamma, opt.r1_every)
            self.loss_D_R1 = torch.zeros((), device=self.device)
            self.criterionGAN = GANLoss(opt.gan_mode).to(self.device)
            self.optimizer_G = self.make_optimizer(self.netG.parameters())
            self.optimizer_D = self.make_optimizer(self.netD.parameters())

    def set_input(self, batch):
        """batch: dict with A, B, A_paths, B_paths; --direction BtoA swaps the domains."""
        self.real_A, self.real_B, self.image_paths = self.unpack_pair(batch)

    def forward(self):
        self.fake_B = self.netG(self.real_A)

    def backward_D(self):
        with self.autocast():
            fake_pair = torch.cat((self.real_A, self.fake_B.to(self.real_A.dtype)), 1).detach()
            real_pair = torch.cat((self.real_A, self.real_B), 1)
            self.loss_D_fake = self.criterionGAN(self.netD(self.augment(fake_pair)), False)
            self.loss_D_real = self.criterionGAN(self.netD(self.augment(real_pair)), True)
            self.loss_D = 0.5 * (self.loss_D_fake + self.loss_D_real)
            if self.opt.gan_mode == "wgangp":
                penalty = gradient_penalty(self.without_sync(self.netD), real_pair, fake_pair, transform=self.augment)
                self.loss_D = self.loss_D + penalty
        self.backward(self.with_r1(self.loss_D), self.optimizer_D)

    def with_r1(self, loss):
        """`loss` plus the lazy R1 penalty on the real pair when it is due (its value goes to loss_D_R1);
        the gradient is taken with respect to B only, the half that the generator competes with."""
        if not self.r1.due(self.steps_of(self.optimizer_D)):
            return loss
        penalty, weighted = self.r1(self.without_sync(self.netD), self.real_B,
                                    lambda b: self.augment(torch.cat((self.real_A, b), 1)))
        self.loss_D_R1 = penalty.detach()
        return loss + weighted

    def backward_G(self):
        with self.autocast():
            fake_pair = torch.cat((self.real_A, self.fake_B.to(self.real_A.dtype)), 1)
            self.loss_G_GAN = self.criterionGAN(self.without_sync(self.netD)(self.augment(fake_pair)), True)
            self.loss_G_L1 = l1_loss(self.fake_B, self.real_B) * self.opt.lambda_L1
            self.loss_G = self.loss_G_GAN + self.loss_G_L1
        self.backward(self.loss_G, self.optimizer_G)

    def optimize_parameters(self):
        """Forward; discriminator step; then the generator step with the discriminator frozen."""
        with self.autocast():
            self.forward()
        self.set_requires_grad([self.netD], True)
        self.optimizer_D.zero_grad(set_to_none=True)
        self.backward_D()
        self.step(self.optimizer_D)
        self.set_requires_grad([self.netD], False)
        self.optimizer_G.zero_grad(set_to_none=True)
        self.backward_G()
        self.step(self.optimizer_G)
