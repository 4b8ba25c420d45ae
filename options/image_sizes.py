"""The options' checks of image sizes and preprocessing: what the chosen networks can take (the
smallest side; the StyleGAN2 discriminator's one resolution) and which --preprocess modes fit the
dataset and the phase."""
import data
from models import discriminators, generators
from models.stylegan2_networks import STYLEGAN2_DISCRIMINATORS, training_resolution
from util.errors import UserError


def check_image_sizes(opt):
    """UserError for image sizes or a --preprocess that the networks or the dataset of `opt` cannot take."""
    check_image_side(opt)
    check_zoom_and_patch(opt)
    check_stylegan2_discriminator_images(opt)


def smallest_image_side(opt):
    """(the networks' flags, the smallest image side in pixels they can take): the generator's, and
    when training the discriminator's, whichever is larger."""
    needed = {f"--netG {opt.netG}": generators.smallest_input_side(opt.netG)}
    if opt.isTrain:
        layers = f" --n_layers_D {opt.n_layers_D}" if opt.netD == "n_layers" else ""
        needed[f"--netD {opt.netD}{layers}"] = discriminators.smallest_input_side(opt.netD, opt.n_layers_D)
    return max(needed.items(), key=lambda item: item[1])


def check_image_side(opt):
    """UserError when the networks cannot take the images' side: --crop_size in the crop modes of
    --preprocess (every image's side), --load_size with scale_width (every image's width); with
    --preprocess none the images' own sizes decide (see data.base_dataset.require_trainable_shapes)."""
    if opt.preprocess in data.CROP_MODES:
        flag = "crop_size"
    elif opt.preprocess == "scale_width":
        flag = "load_size"
    else:
        return
    networks, side = smallest_image_side(opt)
    if getattr(opt, flag) < side:
        raise UserError(f"--{flag} {getattr(opt, flag)} is too small for {networks}; it must be at least {side}")


def check_zoom_and_patch(opt):
    """UserError for --preprocess zoom_and_patch where it does not apply: it is the training augmentation
    of the singleimage dataset."""
    if opt.preprocess != "zoom_and_patch":
        return
    if opt.dataset_mode != "singleimage":
        raise UserError(f"--preprocess zoom_and_patch cuts patches of one picture per domain, for --dataset_mode "
                        f"singleimage, not {opt.dataset_mode}; use another --preprocess or --dataset_mode singleimage")
    if not opt.isTrain:
        raise UserError("--preprocess zoom_and_patch is a training augmentation; test with --preprocess none "
                        "(the whole pictures, sincut's test default)")


def check_stylegan2_discriminator_images(opt):
    """UserError when a StyleGAN2 discriminator would be trained on images of another side than its
    resolution (the power of two nearest to min(--load_size, --crop_size)): it needs square crops of
    exactly that side."""
    if not (opt.isTrain and opt.netD in STYLEGAN2_DISCRIMINATORS):
        return
    resolution = training_resolution(opt.load_size, opt.crop_size)
    if opt.preprocess not in data.CROP_MODES or opt.crop_size != resolution:
        crops = f"--crop_size {opt.crop_size}" if opt.preprocess in data.CROP_MODES else f"--preprocess {opt.preprocess}"
        raise UserError(f"--netD {opt.netD} judges square images of its resolution, {resolution} px (the power of two "
                        f"nearest to min(--load_size, --crop_size)), not those of {crops}; train on crops of a power "
                        "of two with --preprocess resize_and_crop, crop or scale_width_and_crop, and --crop_size no "
                        "larger than --load_size")
