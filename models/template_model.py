"""A minimal model to copy when adding your own: `--model template`.

How to add a model named `my_idea`:
1. Copy this file to models/my_idea_model.py and rename the class to MyIdeaModel (the file name,
   without underscores, plus "Model"; case does not matter). `--model my_idea` then finds it.
2. Add its flags and change defaults in `modify_commandline_options`; give a numeric flag its allowed
   range as its type (`type=NumberRange(float, minimum=0)`), so that a bad value is refused in one line.
3. In `__init__`, name the losses, visuals and networks, and which networks are generators (those
   --ema_decay averages); build networks with `self.build_network` and optimisers with
   `self.make_optimizer` (schedulers and averages come from BaseModel.setup).
4. Fill in `set_input` (move tensors with `self.to_input`), `forward` and `optimize_parameters`
   (forward passes and losses inside `self.autocast()`, then `self.backward(loss, optimizer)` and
   `self.step(optimizer)`); store `self.loss_G`, the generator's total loss, which the plateau
   learning-rate policy watches.
Checkpoints (`<epoch>_net_<name>.pth`), visuals, loss logs and web pages then work unchanged.

This example learns a direct mapping A -> B on paired data with an L1 loss only (no GAN).
"""
from util.ranges import NumberRange

from .base_model import BaseModel
from .generators import define_G, generator_options
from .losses import l1_loss


class TemplateModel(BaseModel):
    """Paired regression A -> B: one generator trained with lambda_regression * |G(A) - B|."""

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        # The defaults this model wants (any flag can still be overridden on the command line).
        parser.set_defaults(dataset_mode="aligned")
        if is_train:
            parser.add_argument("--lambda_regression", type=NumberRange(float, minimum=0), default=1.0,
                                help="weight of the L1 regression loss")
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        self.loss_names = ["G"]  # printed, logged and plotted as loss_G
        self.visual_names = ["data_A", "output", "data_B"]  # shown on the web page and in visdom
        self.model_names = ["G"]  # saved as <epoch>_net_G.pth, the attribute is self.netG
        self.generator_names = ["G"]  # averaged with --ema_decay
        self.netG = self.build_network(define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm,
                                                not opt.no_dropout, opt.init_type, opt.init_gain,
                                                **generator_options(opt)))
        if self.isTrain:
            # Adam with --lr/--beta1, registered for schedules, checkpoints and --amp loss scaling.
            self.optimizer = self.make_optimizer(self.netG.parameters())

    def set_input(self, batch):
        """batch: dict from the dataset; move what the model needs to its device."""
        # Tensors to the device in the chosen memory format, domains swapped for --direction BtoA.
        self.data_A, self.data_B, self.image_paths = self.unpack_pair(batch)

    def forward(self):
        self.output = self.netG(self.data_A)

    def optimize_parameters(self):
        """Forward, loss, backward, step: the whole training iteration."""
        with self.autocast():  # mixed precision under --amp; losses are computed in fp32
            self.forward()
            self.loss_G = l1_loss(self.output, self.data_B) * self.opt.lambda_regression
        self.optimizer.zero_grad(set_to_none=True)
        self.backward(self.loss_G, self.optimizer)  # scaled under --amp fp16
        self.step(self.optimizer)
