"""A minimal model to copy when adding your own: `--model template`.

How to add a model named `my_idea`:
1. Copy this file to models/my_idea_model.py and rename the class to MyIdeaModel (the file name,
   without underscores, plus "Model"; case does not matter). `--model my_idea` then finds it.
2. Add its flags and change defaults in `modify_commandline_options`.
3. In `__init__`, name the losses, visuals and networks; build networks with `self.build_network`
   and the optimisers (append them to `self.optimizers`; schedulers come from BaseModel.setup).
4. Fill in `set_input`, `forward` and `optimize_parameters`; store `self.loss_G`, the generator's
   total loss, which the plateau learning-rate policy watches.
Checkpoints (`<epoch>_net_<name>.pth`), visuals, loss logs and web pages then work unchanged.

This example learns a direct mapping A -> B on paired data with an L1 loss only (no GAN).
"""
import torch

from .base_model import BaseModel
from .generators import define_G


class TemplateModel(BaseModel):
    """Paired regression A -> B: one generator trained with lambda_regression * |G(A) - B|."""

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        # The defaults this model wants (any flag can still be overridden on the command line).
        parser.set_defaults(dataset_mode="aligned")
        if is_train:
            parser.add_argument("--lambda_regression", type=float, default=1.0, help="weight of the L1 regression loss")
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        self.loss_names = ["G"]  # printed, logged and plotted as loss_G
        self.visual_names = ["data_A", "output", "data_B"]  # shown on the web page and in visdom
        self.model_names = ["G"]  # saved as <epoch>_net_G.pth, the attribute is self.netG
        self.netG = self.build_network(define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm,
                                                not opt.no_dropout, opt.init_type, opt.init_gain))
        if self.isTrain:
            self.criterion = torch.nn.L1Loss()
            self.optimizer = torch.optim.Adam(self.netG.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
            self.optimizers = [self.optimizer]

    def set_input(self, batch):
        """batch: dict from the dataset; move what the model needs to its device."""
        a_to_b = self.opt.direction == "AtoB"
        self.data_A = batch["A" if a_to_b else "B"].to(self.device, non_blocking=True)
        self.data_B = batch["B" if a_to_b else "A"].to(self.device, non_blocking=True)
        self.image_paths = batch["A_paths" if a_to_b else "B_paths"]

    def forward(self):
        self.output = self.netG(self.data_A)

    def optimize_parameters(self):
        """Forward, loss, backward, step: the whole training iteration."""
        self.forward()
        self.optimizer.zero_grad(set_to_none=True)
        self.loss_G = self.criterion(self.output, self.data_B) * self.opt.lambda_regression
        self.loss_G.backward()
        self.optimizer.step()
