"""Colorization: pix2pix from the Lab lightness L (1 channel) to the colour channels ab (2 channels).

Trained and tested on the `colorization` dataset mode (natural RGB pictures, converted to Lab). The
losses and networks are pix2pix's; only the visuals differ: the grey input `real_A` and the pictures
`real_B_rgb` (the true colours) and `fake_B_rgb` (the generated ones), each L joined with its ab and
converted back to RGB, so that pages and loggers show colour pictures.
"""
from util.lab_color import lab_tensors_to_rgb, require_lab_layout

from .pix2pix_model import Pix2PixModel


class ColorizationModel(Pix2PixModel):
    """pix2pix on Lab data; visuals real_A, real_B_rgb, fake_B_rgb (the original's names and order)."""

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        parser = Pix2PixModel.modify_commandline_options(parser, is_train)
        parser.set_defaults(dataset_mode="colorization")
        return parser

    def __init__(self, opt):
        require_lab_layout(opt, "--model colorization")
        super().__init__(opt)
        self.visual_names = ["real_A", "real_B_rgb", "fake_B_rgb"]

    def compute_visuals(self):
        """The true and the generated colours as RGB pictures (from real_A's L and real_B's/fake_B's ab)."""
        self.real_B_rgb = lab_tensors_to_rgb(self.real_A, self.real_B)
        self.fake_B_rgb = lab_tensors_to_rgb(self.real_A, self.fake_B)
