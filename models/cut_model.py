"""CUT and FastCUT (Park, Efros, Zhang, Zhu, ECCV 2020, "Contrastive Learning for Unpaired
Image-to-Image Translation"): unpaired translation A -> B with one generator G, one discriminator D and
no cycle. PatchNCE (models/patchnce.py) keeps each output patch close to the input patch at the same
place and far from the input's other patches, in G's own encoder features.

Losses, as in the official code (taesungp/contrastive-unpaired-translation):
- D: (GAN(D(G(A)), fake) + GAN(D(B), real)) * 0.5 (+ the gradient penalty for --gan_mode wgangp);
- G: lambda_GAN * GAN(D(G(A)), real) + NCE, where NCE = PatchNCE(A, G(A)), or with --nce_idt
  (PatchNCE(A, G(A)) + PatchNCE(B, G(B))) * 0.5, each the mean over --nce_layers of lambda_NCE times
  the mean loss of the layer's sampled patches.
Each iteration: G's forward (A and, with --nce_idt, B in one batch, mirrored left-right as a whole
half of the time with --flip_equivariance), then D's step, then G's with D frozen. PatchNCE's keys (G's
encoder features of A and B) are kept from G's forward where they are equal to the official second
encoding of A and B (see keys_from_forward), which is then saved.

Flags and their defaults (the official code's; a value given on the command line always wins):
--CUT_mode CUT (FastCUT; cut and fastcut are accepted too) decides the defaults of the mode:
  CUT: --nce_idt True, --lambda_NCE 1, --flip_equivariance False, --n_epochs 200 --n_epochs_decay 200;
  FastCUT: --nce_idt False, --lambda_NCE 10, --flip_equivariance True, --n_epochs 150 --n_epochs_decay 50.
Both modes: --lambda_GAN 1, --nce_layers 0,4,8,12,16, --nce_T 0.07, --num_patches 256, --netF mlp_sample
(or sample: no MLP), --netF_nc 256, --nce_includes_all_negatives_from_minibatch False, --no_antialias and
--no_antialias_up off, --normG/--normD instance (here: --norm's value, itself instance by default),
--pool_size 0, --init_type xavier (gain --init_gain 0.02), --no_dropout, --gan_mode lsgan. The yes/no
flags take the official forms: `--nce_idt`, `--nce_idt True`, `--nce_idt False`.
The official code has one Adam for G and another for F with the same settings; here one Adam holds
both (optimizer_G), which is the same arithmetic (Adam updates each parameter from its own gradients
alone) and lets one loss scaler serve their one backward pass under --amp fp16.
At test time only G is built and loaded (latest_net_G.pth); the visuals are real_A, fake_B, real_B
(and idt_B in training with --nce_idt).
"""
import itertools

import torch

from util.errors import UserError
from util.ranges import NumberRange

from .base_model import BaseModel
from .cut_networks import check_cut_generator, define_cut_D, define_cut_G
from .image_pool import ImagePool
from .initialization import init_weights
from .losses import GANLoss, gradient_penalty
from .norms import NORM_CHOICES
from .patchnce import NETF_CHOICES, PatchSampleF, patch_nce_loss, sample_patch_ids
from .stylegan2_networks import STYLEGAN2_DISCRIMINATORS, STYLEGAN2_GENERATORS, training_resolution

CUT_MODES = ("CUT", "FastCUT")
MODE_DEFAULTS = {
    "CUT": {"nce_idt": True, "lambda_NCE": 1.0, "flip_equivariance": False, "n_epochs": 200, "n_epochs_decay": 200},
    "FastCUT": {"nce_idt": False, "lambda_NCE": 10.0, "flip_equivariance": True, "n_epochs": 150,
                "n_epochs_decay": 50},
}
# Flags that shape CUT's generator (read back from train_opt.txt at test time), and all that shape its
# networks (a run continues only with the same values).
CUT_GENERATOR_FLAGS = ("normG", "no_antialias", "no_antialias_up", "stylegan2_G_num_downsampling")
CUT_ARCHITECTURE_OPTIONS = (*CUT_GENERATOR_FLAGS, "normD", "netF", "netF_nc", "nce_layers")
_YES = ("yes", "true", "t", "y", "1")
_NO = ("no", "false", "f", "n", "0")


def cut_mode(text):
    """The --CUT_mode of `text`, case aside (cut -> CUT, fastcut -> FastCUT); other text is left for
    argparse to refuse with the choices."""
    return next((mode for mode in CUT_MODES if mode.lower() == text.lower()), text)


def yes_no(flag):
    """The argparse type of the yes/no `flag` (the official str2bool): True/False from yes, true, t, y,
    1 / no, false, f, n, 0 in any case; UserError for other text."""
    def convert(text):
        if text.lower() in _YES + _NO:
            return text.lower() in _YES
        raise UserError(f"{flag} {text!r} is neither yes nor no; give {flag} alone, or {flag} True or {flag} False")
    return convert


def layer_list(text):
    """The canonical --nce_layers of `text`: layer indices, comma-separated, distinct and ascending
    ("0,4,8,12,16"); UserError otherwise (the generator's own depth is checked when it is built)."""
    try:
        indices = [int(part) for part in text.split(",")]
    except ValueError:
        indices = []
    if not indices or indices[0] < 0 or indices != sorted(set(indices)):
        raise UserError(f"--nce_layers {text!r} is not a list of layer indices; give distinct numbers >= 0 in "
                        "ascending order, comma-separated, e.g. --nce_layers 0,4,8,12,16")
    return ",".join(map(str, indices))


def cut_architecture_flags(opt):
    """The CUT generator and discriminator flags of `opt` that differ from their defaults, as typed
    (for messages naming the flags a network was built with); [] for other models."""
    flags = [f"--{name} {getattr(opt, name)}" for name in ("normG", "normD") if getattr(opt, name, None)]
    flags += [f"--{name}" for name in ("no_antialias", "no_antialias_up") if getattr(opt, name, False)]
    if opt.netG in STYLEGAN2_GENERATORS:
        load_size, crop_size = getattr(opt, "train_image_sizes", (opt.load_size, opt.crop_size))
        flags += [f"--stylegan2_G_num_downsampling {getattr(opt, 'stylegan2_G_num_downsampling', 1)}",
                  f"--load_size {load_size} --crop_size {crop_size} (which set the StyleGAN2 widths)"]
    return flags


def stylegan2_resolution(opt):
    """The side the StyleGAN2 networks of `opt` are made for (models/stylegan2_networks.py), from the
    training's --load_size and --crop_size: at test time those in train_opt.txt unless typed
    (opt.train_image_sizes, set by options/test_options.py), since the generator's widths depend on them."""
    return training_resolution(*getattr(opt, "train_image_sizes", (opt.load_size, opt.crop_size)))


def cut_generator(opt):
    """CUT's generator for the flags of `opt` (train.py, test.py and scripts/export.py), initialised."""
    check_cut_generator(opt.netG, opt)
    stylegan2 = opt.netG in STYLEGAN2_GENERATORS
    return define_cut_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.normG or opt.norm, not opt.no_dropout,
                        opt.init_type, opt.init_gain, opt.no_antialias, opt.no_antialias_up,
                        stylegan2_resolution(opt) if stylegan2 else None, opt.stylegan2_G_num_downsampling)


def check_nce_layers(layers, netG):
    """UserError when an index of `layers` (a list) lies beyond the generator `netG`'s layers."""
    depth = len(netG.feature_layers)
    if layers[-1] >= depth:
        raise UserError(f"--nce_layers {','.join(map(str, layers))} goes beyond the generator, whose layers are "
                        f"numbered 0 to {depth - 1}; choose indices below {depth}")


class CUTModel(BaseModel):
    """CUT / FastCUT; expects batches from the `unaligned` dataset (A, B, A_paths, B_paths)."""

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        parser.set_defaults(no_dropout=True, init_type="xavier")
        g = parser.add_argument_group("CUT")
        g.add_argument("--CUT_mode", type=cut_mode, default="CUT", choices=CUT_MODES,
                       help="CUT, or FastCUT: no identity NCE, a 10 times stronger NCE, flip equivariance and a "
                            "shorter schedule (150 + 50 epochs); each mode sets the defaults of those flags")
        g.add_argument("--normG", type=str, default=None, choices=NORM_CHOICES,
                       help="normalisation layers of the generator; None: those of --norm")
        g.add_argument("--no_antialias", action="store_true",
                       help="halve the image size with stride-2 convolutions instead of a convolution and a blur")
        g.add_argument("--no_antialias_up", action="store_true",
                       help="double the image size with transposed convolutions instead of a blur-upsampling and "
                            "a convolution")
        g.add_argument("--stylegan2_G_num_downsampling", type=NumberRange(int, minimum=0), default=1,
                       help="halvings (and doublings) of the StyleGAN2 generators (--netG stylegan2, smallstylegan2)")
        if not is_train:
            return parser
        parser.set_defaults(pool_size=0)  # the official CUT has no image pool
        g.add_argument("--normD", type=str, default=None, choices=NORM_CHOICES,
                       help="normalisation layers of the discriminator; None: those of --norm")
        g.add_argument("--lambda_GAN", type=NumberRange(float, minimum=0), default=1.0,
                       help="weight of the GAN loss GAN(G(A))")
        g.add_argument("--lambda_NCE", type=NumberRange(float, minimum=0), default=1.0,
                       help="weight of the PatchNCE loss NCE(G(A), A) (default of the mode: CUT 1, FastCUT 10)")
        g.add_argument("--nce_idt", type=yes_no("--nce_idt"), nargs="?", const=True, default=True,
                       help="also PatchNCE between B and G(B), the identity (default of the mode: CUT on, FastCUT off)")
        g.add_argument("--nce_layers", type=layer_list, default="0,4,8,12,16",
                       help="indices of the generator's layers whose outputs PatchNCE compares")
        g.add_argument("--nce_includes_all_negatives_from_minibatch", type=yes_no(
                       "--nce_includes_all_negatives_from_minibatch"), nargs="?", const=True, default=False,
                       help="take the negatives of a patch from every image of the batch, not only its own (for "
                            "batches of crops of one image)")
        g.add_argument("--netF", type=str, default="mlp_sample", choices=NETF_CHOICES,
                       help="projection head of PatchNCE: mlp_sample = sampled patches through a two-layer MLP per "
                            "layer, then L2-normalised; sample = the sampled patches only normalised")
        g.add_argument("--netF_nc", type=NumberRange(int, minimum=1), default=256, help="width of the MLPs of mlp_sample")
        g.add_argument("--nce_T", type=NumberRange(float, above=0), default=0.07, help="temperature of PatchNCE")
        g.add_argument("--num_patches", type=NumberRange(int, minimum=1), default=256,
                       help="patches sampled per layer and image (all positions of a smaller layer)")
        g.add_argument("--flip_equivariance", type=yes_no("--flip_equivariance"), nargs="?", const=True,
                       default=False,
                       help="mirror G's input half of the time and its features back (default of the mode: FastCUT on)")
        return parser

    @staticmethod
    def dependent_defaults(known, is_train):
        return MODE_DEFAULTS[known.CUT_mode] if is_train else {}

    def __init__(self, opt):
        super().__init__(opt)
        self.nce_idt = self.isTrain and opt.nce_idt
        # G(B), the identity image: for the identity NCE, and for sincut's identity loss (--lambda_identity).
        self.identity_pass = self.nce_idt or (self.isTrain and getattr(opt, "lambda_identity", 0) > 0)
        self.loss_names = ["G_GAN", "D_real", "D_fake", "G", "NCE"] + (["NCE_Y"] if self.nce_idt else [])
        self.visual_names = ["real_A", "fake_B", "real_B"] + (["idt_B"] if self.identity_pass else [])
        netG = cut_generator(opt)
        self.model_names = ["G"]
        self.generator_names = ["G"]  # averaged with --ema_decay
        if not self.isTrain:
            self.netG = self.build_network(netG)
            return
        if opt.lambda_GAN == 0 and opt.lambda_NCE == 0:
            raise UserError("--lambda_GAN 0 and --lambda_NCE 0 leave the generator nothing to learn; "
                            "make at least one of them positive")
        if opt.input_nc != opt.output_nc:
            raise UserError(f"--model cut runs its generator on its own outputs (PatchNCE) and on B images, so it "
                            f"needs --input_nc equal to --output_nc (here {opt.input_nc} -> {opt.output_nc}); "
                            "make them equal")
        self.nce_layers = [int(index) for index in opt.nce_layers.split(",")]
        check_nce_layers(self.nce_layers, netG)
        heads = netG.feature_channels(self.nce_layers) if opt.netF == "mlp_sample" else []
        netF = init_weights(PatchSampleF(heads, opt.netF_nc), opt.init_type, opt.init_gain)
        if opt.netD in STYLEGAN2_DISCRIMINATORS and opt.normD:
            raise UserError(f"--normD applies to the PatchGAN discriminators only, not --netD {opt.netD}; leave it out")
        netD = define_cut_D(opt.output_nc, opt.ndf, opt.netD, opt.n_layers_D, opt.normD or opt.norm, opt.init_type,
                            opt.init_gain, opt.no_antialias,
                            stylegan2_resolution(opt) if opt.netD in STYLEGAN2_DISCRIMINATORS else None)
        if opt.compile:  # as build_network compiles forward: PatchNCE's encoder passes too
            netG.encode = torch.compile(netG.encode)
        self.netG, self.netD = self.build_network(netG), self.build_network(netD)
        # The head of `sample` has no weights to place, save or train.
        self.netF = self.build_network(netF) if heads else netF
        self.model_names = ["G", "F", "D"] if heads else ["G", "D"]
        self.fake_B_pool = ImagePool(opt.pool_size)
        self.criterionGAN = GANLoss(opt.gan_mode).to(self.device)
        self.optimizer_G = self.make_optimizer(itertools.chain(self.netG.parameters(), self.netF.parameters()))
        self.optimizer_D = self.make_optimizer(self.netD.parameters())
        self.flipped = False
        # PatchNCE's keys are G's encoder features of real_A (and real_B), which G's forward pass on
        # them computes anyway with the same weights: kept from it, they cost nothing, where the official
        # code encodes the images again. Only where that gives the same values: an image's features do
        # not depend on the rest of the batch and update no running statistics (instance norm or none,
        # and the StyleGAN2 encoder has no norm and no noise; G has no dropout, whose masks would differ),
        # and no compiled forward would recompile for the capturing hooks.
        batch_independent = opt.netG in STYLEGAN2_GENERATORS or (opt.normG or opt.norm) in ("instance", "none")
        self.keys_from_forward = batch_independent and not opt.compile
        self.keys = {}
        for name in self.loss_names:  # each stays 0 while its term is off
            setattr(self, "loss_" + name, torch.zeros((), device=self.device))

    def set_input(self, batch):
        """batch: dict with A, B, A_paths, B_paths; --direction BtoA swaps the domains."""
        self.real_A, self.real_B, self.image_paths = self.unpack_pair(batch)

    def forward(self):
        """A -> B: what test.py and the evaluation during training run."""
        self.fake_B = self.netG(self.real_A)

    def forward_training_visuals(self):
        """The identity image idt_B = G(B) (see identity_pass)."""
        if self.identity_pass:
            self.idt_B = self.netG(self.real_B)

    def training_forward(self):
        """G on A (and B for the identity terms) in one batch as the official code runs it (so batch
        norm sees both), or in two when --preprocess none gives them other sizes; mirrored left-right
        half of the time with --flip_equivariance (a draw from torch's CPU random generator). Keeps
        the encoder features of each input as PatchNCE's keys (self.keys) where they are the ones
        PatchNCE would compute: with keys_from_forward, for inputs neither mirrored nor padded."""
        inputs = [self.real_A, self.real_B] if self.identity_pass else [self.real_A]
        self.flipped = self.opt.flip_equivariance and bool(torch.rand(()) < 0.5)
        if self.flipped:
            inputs = [images.flip(3) for images in inputs]
        generator = self.without_sync(self.netG)
        padded = any(side % generator.size_multiple for images in inputs for side in images.shape[2:])
        capture = self.keys_from_forward and not (self.flipped or padded)
        sizes = [len(images) for images in inputs]
        with generator.capturing(self.nce_layers if capture else []) as captured:
            if len({images.shape[1:] for images in inputs}) == 1:
                outputs = self.netG(torch.cat(inputs)).split(sizes)
            else:
                outputs = [self.netG(images) for images in inputs]
        if len(captured) == 1:  # one pass over the whole batch: each input's share of every feature map
            captured = [list(shares) for shares in zip(*(feature.split(sizes) for feature in captured[0]))]
        self.keys = dict(zip(("A", "B"), captured))
        self.fake_B = outputs[0]
        if self.identity_pass:
            self.idt_B = outputs[1]

    def nce_loss(self, source, output, keys=None):
        """PatchNCE between G's encoder features of `output` (queries) and of `source` (keys: computed
        here unless given) at the same sampled positions: the mean over --nce_layers of lambda_NCE *
        the mean patch loss."""
        opt = self.opt
        # G's encoder runs outside DistributedDataParallel's forward (which calls forward only); its
        # gradients join those of G's own pass in the one backward, so DDP still averages them.
        encoder = self.without_sync(self.netG).encode
        queries = encoder(output, self.nce_layers)
        if self.flipped:  # `output` came from the mirrored input: mirror its features back
            queries = [feature.flip(3) for feature in queries]
        # The keys are constants of the loss (the official code detaches them), so no graph is kept.
        with torch.no_grad():
            keys = encoder(source, self.nce_layers) if keys is None else keys
            patch_ids = sample_patch_ids(keys, opt.num_patches)
            keys = self.netF(keys, patch_ids)
        queries = self.netF(queries, patch_ids)
        total = sum(patch_nce_loss(query, key, len(source), opt.nce_T,
                                   opt.nce_includes_all_negatives_from_minibatch).mean()
                    for query, key in zip(queries, keys))
        return total * opt.lambda_NCE / len(self.nce_layers)

    def discriminator_loss(self):
        """(GAN(D(fake), fake) + GAN(D(real B), real)) * 0.5, fakes through the pool (--pool_size)."""
        with self.autocast():
            fake = self.fake_B_pool.query(self.fake_B.detach())
            self.loss_D_fake = self.criterionGAN(self.netD(fake), False)
            self.loss_D_real = self.criterionGAN(self.netD(self.real_B), True)
            loss = (self.loss_D_fake + self.loss_D_real) * 0.5
            if self.opt.gan_mode == "wgangp":
                loss = loss + gradient_penalty(self.without_sync(self.netD), self.real_B, fake)
        return loss

    def generator_loss_terms(self):
        """lambda_GAN * GAN(D(G(A)), real) + the NCE term(s); sets loss_G and its parts."""
        opt = self.opt
        keys, self.keys = self.keys, {}  # used once: not kept alive into the next iteration
        with self.autocast():
            if opt.lambda_GAN > 0:
                prediction = self.without_sync(self.netD)(self.fake_B)
                self.loss_G_GAN = self.criterionGAN(prediction, True) * opt.lambda_GAN
            nce = 0.0
            if opt.lambda_NCE > 0:
                self.loss_NCE = nce = self.nce_loss(self.real_A, self.fake_B, keys.get("A"))
                if self.nce_idt:
                    self.loss_NCE_Y = self.nce_loss(self.real_B, self.idt_B, keys.get("B"))
                    nce = (self.loss_NCE + self.loss_NCE_Y) * 0.5
            self.loss_G = self.loss_G_GAN + nce
        return self.loss_G

    def optimize_parameters(self):
        """G's forward; D's step; G's (and the head's) step with D frozen."""
        with self.autocast():
            self.training_forward()
        self.set_requires_grad([self.netD], True)
        self.optimizer_D.zero_grad(set_to_none=True)
        self.backward(self.discriminator_loss(), self.optimizer_D)
        self.step(self.optimizer_D)
        self.set_requires_grad([self.netD], False)
        self.optimizer_G.zero_grad(set_to_none=True)
        self.backward(self.generator_loss_terms(), self.optimizer_G)
        self.step(self.optimizer_G)
