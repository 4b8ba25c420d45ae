"""SinCUT: CUT trained on one picture per domain (Park, Efros, Zhang, Zhu, ECCV 2020, section 5.2 and
figure 9; the official code's `sincut` model): the StyleGAN2 generator and discriminator
(models/stylegan2_networks.py) on 64 px patches of the two pictures, zoomed at random
(data/singleimage_dataset.py), with two more losses:
- D: + the R1 penalty lambda_R1 / 2 * E[||grad_x D(x)||^2] on the real B patches (loss D_R1);
- G: + lambda_identity * |G(B) - B| (loss idt), which keeps what is already in domain B unchanged.

Defaults (the official ones; a value given on the command line always wins): --dataset_mode
singleimage, --netG stylegan2 --netD stylegan2 --stylegan2_G_num_downsampling 1 --ngf 10 --ndf 8,
--load_size 1024 --crop_size 64 (the networks' widths are made for 64 px), --gan_mode nonsaturating,
--num_patches 1 --nce_layers 0,2,4 --lambda_NCE 4 --nce_includes_all_negatives_from_minibatch (the
patches of a batch are each other's negatives), --lambda_R1 1 --lambda_identity 1, --lr 0.002
--beta1 0 --beta2 0.99. Training: --preprocess zoom_and_patch --batch_size 16, 8 + 8 epochs of 100,000
patches, a save every epoch (--save_epoch_freq 1) and every 20,000 images. Testing: --preprocess none
(the whole pictures), --batch_size 1, --num_test 1. Everything else is --model cut's (--CUT_mode CUT:
with the identity NCE).
"""
from util.ranges import NumberRange

from .cut_model import CUTModel
from .losses import l1_loss, r1_penalty

SINCUT_DEFAULTS = {"dataset_mode": "singleimage", "netG": "stylegan2", "stylegan2_G_num_downsampling": 1,
                   "netD": "stylegan2", "ngf": 10, "ndf": 8, "load_size": 1024, "crop_size": 64}
SINCUT_TRAIN_DEFAULTS = {"gan_mode": "nonsaturating", "num_patches": 1, "nce_layers": "0,2,4", "lambda_NCE": 4.0,
                         "nce_includes_all_negatives_from_minibatch": True, "lr": 0.002, "beta1": 0.0, "beta2": 0.99,
                         "preprocess": "zoom_and_patch", "batch_size": 16, "save_epoch_freq": 1,
                         "save_latest_freq": 20000, "n_epochs": 8, "n_epochs_decay": 8}
SINCUT_TEST_DEFAULTS = {"preprocess": "none", "batch_size": 1, "num_test": 1}


class SinCUTModel(CUTModel):
    """CUT with the single-image defaults, the R1 penalty on D and the identity loss on G."""

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        parser = CUTModel.modify_commandline_options(parser, is_train)
        parser.set_defaults(**SINCUT_DEFAULTS, **(SINCUT_TRAIN_DEFAULTS if is_train else SINCUT_TEST_DEFAULTS))
        if is_train:
            g = parser.add_argument_group("SinCUT")
            g.add_argument("--lambda_R1", type=NumberRange(float, minimum=0), default=1.0,
                           help="weight gamma of the R1 penalty gamma/2 * E[|grad_x D(x)|^2] on the real B patches")
            g.add_argument("--lambda_identity", type=NumberRange(float, minimum=0), default=1.0,
                           help="weight of the identity loss |G(B) - B|")
        return parser

    @staticmethod
    def dependent_defaults(known, is_train):
        """CUT's mode defaults, under sincut's own (which the official code sets after them)."""
        mode_defaults = CUTModel.dependent_defaults(known, is_train)
        return {**mode_defaults, **{key: SINCUT_TRAIN_DEFAULTS[key] for key in mode_defaults
                                    if key in SINCUT_TRAIN_DEFAULTS}}

    def __init__(self, opt):
        super().__init__(opt)
        if not self.isTrain:
            return
        self.loss_names += [name for name, weight in (("D_R1", opt.lambda_R1), ("idt", opt.lambda_identity))
                            if weight > 0]
        self.loss_D_R1 = self.loss_idt = self.loss_G.new_zeros(())

    def discriminator_loss(self):
        """CUT's discriminator loss plus the R1 penalty on real B (computed in fp32, see losses.input_gradients)."""
        loss = super().discriminator_loss()
        if self.opt.lambda_R1 > 0:
            self.loss_D_R1 = r1_penalty(self.without_sync(self.netD), self.real_B, self.opt.lambda_R1)
            loss = loss + self.loss_D_R1
        return loss

    def generator_loss_terms(self):
        """CUT's generator loss plus lambda_identity * |G(B) - B|."""
        loss = super().generator_loss_terms()
        if self.opt.lambda_identity > 0:
            self.loss_idt = l1_loss(self.idt_B, self.real_B) * self.opt.lambda_identity
            loss = loss + self.loss_idt
        return loss
