"""CycleGAN (Zhu et al. 2017): unpaired translation A <-> B with two generators and two discriminators.

G_A: A -> B and G_B: B -> A; D_A judges B-domain images, D_B judges A-domain images.
Generator loss: GAN(D_A(G_A(A))) + GAN(D_B(G_B(B))) + lambda_A * |G_B(G_A(A)) - A|
+ lambda_B * |G_A(G_B(B)) - B| + identity terms lambda_B * lambda_identity * |G_A(B) - B|
+ lambda_A * lambda_identity * |G_B(A) - A|. Discriminators see generated images through a pool.
Optional discriminator regularisers: spectral norm, R1 on real images (lazy), DiffAugment of every
image a discriminator judges (models/discriminators.py has their flags).
"""
import itertools

import torch

from util.errors import UserError
from util.ranges import NumberRange

from .base_model import BaseModel
from .diffaug import DiffAugment
from .discriminators import add_discriminator_flags, define_D
from .generators import define_G, generator_options
from .image_pool import ImagePool
from .losses import GANLoss, LazyR1, gradient_penalty, l1_loss


class CycleGANModel(BaseModel):
    """The CycleGAN model; expects batches from the `unaligned` dataset (A, B, A_paths, B_paths)."""

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        parser.set_defaults(no_dropout=True)  # the paper's generators have no dropout
        if is_train:
            parser.add_argument("--lambda_A", type=NumberRange(float, minimum=0), default=10.0,
                                help="weight of the cycle loss A -> B -> A")
            parser.add_argument("--lambda_B", type=NumberRange(float, minimum=0), default=10.0,
                                help="weight of the cycle loss B -> A -> B")
            parser.add_argument("--lambda_identity", type=NumberRange(float, minimum=0), default=0.5,
                                help="weight of the identity loss relative to lambda_A/lambda_B; e.g. 0.1 weighs it "
                                     "ten times less than the cycle loss; 0 turns it off")
            add_discriminator_flags(parser)
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        self.loss_names = ["D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B"]
        if self.isTrain and opt.r1_gamma > 0:
            self.loss_names += ["D_A_R1", "D_B_R1"]  # each the penalty's value when last computed
        self.use_identity = self.isTrain and opt.lambda_identity > 0.0
        self.visual_names = ["real_A", "fake_B", "rec_A"] + (["idt_B"] if self.use_identity else []) + \
                            ["real_B", "fake_A", "rec_B"] + (["idt_A"] if self.use_identity else [])
        self.model_names = ["G_A", "G_B", "D_A", "D_B"] if self.isTrain else ["G_A", "G_B"]
        self.generator_names = ["G_A", "G_B"]
        if self.use_identity and opt.input_nc != opt.output_nc:
            raise UserError(f"the identity loss needs --input_nc ({opt.input_nc}) equal to --output_nc "
                            f"({opt.output_nc}); make them equal or pass --lambda_identity 0")
        dropout = not opt.no_dropout
        self.netG_A = self.build_network(define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm,
                                                  dropout, opt.init_type, opt.init_gain, **generator_options(opt)))
        self.netG_B = self.build_network(define_G(opt.output_nc, opt.input_nc, opt.ngf, opt.netG, opt.norm,
                                                  dropout, opt.init_type, opt.init_gain, **generator_options(opt)))
        if self.isTrain:
            self.netD_A = self.build_network(define_D(opt.output_nc, opt.ndf, opt.netD, opt.n_layers_D, opt.norm,
                                                      opt.init_type, opt.init_gain, opt.spectral_norm))
            self.netD_B = self.build_network(define_D(opt.input_nc, opt.ndf, opt.netD, opt.n_layers_D, opt.norm,
                                                      opt.init_type, opt.init_gain, opt.spectral_norm))
            self.augment = DiffAugment(opt.diffaug)
            self.r1 = LazyR1(opt.r1_gamma, opt.r1_every)
            self.fake_A_pool = ImagePool(opt.pool_size)
            self.fake_B_pool = ImagePool(opt.pool_size)
            self.criterionGAN = GANLoss(opt.gan_mode).to(self.device)
            self.optimizer_G = self.make_optimizer(itertools.chain(self.netG_A.parameters(), self.netG_B.parameters()))
            self.optimizer_D = self.make_optimizer(itertools.chain(self.netD_A.parameters(), self.netD_B.parameters()))
            for name in self.loss_names:  # idt losses stay 0 when the identity loss is off
                setattr(self, "loss_" + name, torch.zeros((), device=self.device))

    def set_input(self, batch):
        """batch: dict with A, B, A_paths, B_paths; --direction BtoA swaps the domains."""
        self.real_A, self.real_B, self.image_paths = self.unpack_pair(batch)

    def forward(self):
        self.fake_B = self.netG_A(self.real_A)
        self.rec_A = self.netG_B(self.fake_B)
        self.fake_A = self.netG_B(self.real_B)
        self.rec_B = self.netG_A(self.fake_A)

    def forward_training_visuals(self):
        """The identity images idt_A = G_A(B) and idt_B = G_B(A) (with the identity loss on)."""
        if self.use_identity:
            self.idt_A = self.netG_A(self.real_B)
            self.idt_B = self.netG_B(self.real_A)

    def discriminator_loss(self, netD, real, fake):
        """0.5 * (GAN(D(real), real) + GAN(D(fake), fake)) (+ gradient penalty for wgangp), every image
        augmented by --diffaug."""
        with self.autocast():
            loss_real = self.criterionGAN(netD(self.augment(real)), True)
            loss_fake = self.criterionGAN(netD(self.augment(fake.detach())), False)
            loss = 0.5 * (loss_real + loss_fake)
            if self.opt.gan_mode == "wgangp":
                loss = loss + gradient_penalty(self.without_sync(netD), real, fake, transform=self.augment)
        return loss

    def with_r1(self, loss, netD, real, loss_name):
        """`loss` plus the lazy R1 penalty on `real` when it is due (its value goes to loss_<loss_name>)."""
        if not self.r1.due(self.steps_of(self.optimizer_D)):
            return loss
        penalty, weighted = self.r1(self.without_sync(netD), real, self.augment)
        setattr(self, "loss_" + loss_name, penalty.detach())
        return loss + weighted

    def backward_D_A(self):
        self.loss_D_A = self.discriminator_loss(self.netD_A, self.real_B, self.fake_B_pool.query(self.fake_B))
        self.backward(self.with_r1(self.loss_D_A, self.netD_A, self.real_B, "D_A_R1"), self.optimizer_D)

    def backward_D_B(self):
        self.loss_D_B = self.discriminator_loss(self.netD_B, self.real_A, self.fake_A_pool.query(self.fake_A))
        self.backward(self.with_r1(self.loss_D_B, self.netD_B, self.real_A, "D_B_R1"), self.optimizer_D)

    def backward_G(self):
        opt = self.opt
        with self.autocast():
            if opt.lambda_identity > 0:
                self.idt_A = self.netG_A(self.real_B)
                self.loss_idt_A = l1_loss(self.idt_A, self.real_B) * opt.lambda_B * opt.lambda_identity
                self.idt_B = self.netG_B(self.real_A)
                self.loss_idt_B = l1_loss(self.idt_B, self.real_A) * opt.lambda_A * opt.lambda_identity
            self.loss_G_A = self.criterionGAN(self.without_sync(self.netD_A)(self.augment(self.fake_B)), True)
            self.loss_G_B = self.criterionGAN(self.without_sync(self.netD_B)(self.augment(self.fake_A)), True)
            self.loss_cycle_A = l1_loss(self.rec_A, self.real_A) * opt.lambda_A
            self.loss_cycle_B = l1_loss(self.rec_B, self.real_B) * opt.lambda_B
            self.loss_G = (self.loss_G_A + self.loss_G_B + self.loss_cycle_A + self.loss_cycle_B
                           + self.loss_idt_A + self.loss_idt_B)
        self.backward(self.loss_G, self.optimizer_G)

    def optimize_parameters(self):
        """Forward; generator step with both discriminators frozen; then the discriminator step."""
        with self.autocast():
            self.forward()
        self.set_requires_grad([self.netD_A, self.netD_B], False)
        self.optimizer_G.zero_grad(set_to_none=True)
        self.backward_G()
        self.step(self.optimizer_G)
        self.set_requires_grad([self.netD_A, self.netD_B], True)
        self.optimizer_D.zero_grad(set_to_none=True)
        self.backward_D_A()
        self.backward_D_B()
        self.step(self.optimizer_D)
