"""The `test` model: runs one generator in one direction, e.g. a published pretrained CycleGAN.

Loads checkpoints_dir/name/<epoch>_net_G<model_suffix>.pth, so `--model_suffix _A` runs the
G_A of a CycleGAN experiment. Reads single images (dataset_mode single); test.py only.
"""
from util.errors import UserError

from .base_model import BaseModel
from .generators import define_G, generator_options


class TestModel(BaseModel):
    """One generator, no losses: visuals `real` and `fake`."""

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        if is_train:
            raise UserError("the test model cannot be trained; use --model cycle_gan or --model pix2pix with train.py")
        parser.set_defaults(dataset_mode="single")
        parser.add_argument("--model_suffix", type=str, default="",
                            help="load <epoch>_net_G<model_suffix>.pth, e.g. _A for the G_A of a CycleGAN experiment")
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        self.visual_names = ["real", "fake"]
        self.model_names = ["G" + opt.model_suffix]
        net = define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm, not opt.no_dropout,
                       opt.init_type, opt.init_gain, **generator_options(opt))
        setattr(self, "netG" + opt.model_suffix, self.build_network(net))

    def set_input(self, batch):
        """batch: dict with A (images) and A_paths."""
        self.real = self.to_input(batch["A"])
        self.image_paths = batch["A_paths"]

    def forward(self):
        self.fake = getattr(self, "netG" + self.opt.model_suffix)(self.real)

    def optimize_parameters(self):
        """Not trainable."""
        raise UserError("the test model cannot be trained")
