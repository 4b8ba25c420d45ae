"""pix2pix (Isola et al. 2017): paired translation A -> B with a conditional PatchGAN.

Generator loss: GAN(D(A, G(A))) + lambda_L1 * |G(A) - B|; the discriminator sees the input
concatenated with the real or the generated output. Each step updates D first, then G.
"""
import torch

from util.ranges import NumberRange

from .base_model import BaseModel
from .discriminators import define_D
from .generators import define_G, generator_options
from .losses import GANLoss, gradient_penalty, l1_loss


class Pix2PixModel(BaseModel):
    """The pix2pix model; expects batches from the `aligned` dataset (A, B, A_paths, B_paths)."""

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        parser.set_defaults(norm="batch", netG="unet_256", dataset_mode="aligned")
        if is_train:
            parser.set_defaults(pool_size=0, gan_mode="vanilla")
            parser.add_argument("--lambda_L1", type=NumberRange(float, minimum=0), default=100.0,
                                help="weight of the L1 loss")
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        self.loss_names = ["G_GAN", "G_L1", "D_real", "D_fake"]
        self.visual_names = ["real_A", "fake_B", "real_B"]
        self.model_names = ["G", "D"] if self.isTrain else ["G"]
        self.netG = self.build_network(define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm,
                                                not opt.no_dropout, opt.init_type, opt.init_gain,
                                                **generator_options(opt)))
        if self.isTrain:
            self.netD = self.build_network(define_D(opt.input_nc + opt.output_nc, opt.ndf, opt.netD, opt.n_layers_D,
                                                    opt.norm, opt.init_type, opt.init_gain))
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
            self.loss_D_fake = self.criterionGAN(self.netD(fake_pair), False)
            self.loss_D_real = self.criterionGAN(self.netD(real_pair), True)
            self.loss_D = 0.5 * (self.loss_D_fake + self.loss_D_real)
            if self.opt.gan_mode == "wgangp":
                penalty = gradient_penalty(self.without_sync(self.netD), real_pair, fake_pair,
                                           scaler=self.scaler_of(self.optimizer_D))
                self.loss_D = self.loss_D + penalty
        self.backward(self.loss_D, self.optimizer_D)

    def backward_G(self):
        with self.autocast():
            fake_pair = torch.cat((self.real_A, self.fake_B.to(self.real_A.dtype)), 1)
            self.loss_G_GAN = self.criterionGAN(self.without_sync(self.netD)(fake_pair), True)
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
