"""Option parsing: the original's defaults, model defaults, old flag names, bad values, saved options."""
import argparse
import re

import pytest

import models
from options.base_options import DeprecatedAlias, read_saved_options
from options.test_options import TestOptions
from options.train_options import TrainOptions
from util.errors import UserError
from util.ranges import NumberRange, ranged_actions

TRAIN_DEFAULTS = dict(
    name="experiment_name", checkpoints_dir=None, model="cycle_gan", input_nc=3, output_nc=3, ngf=64, ndf=64,
    netD="basic", netG="resnet_9blocks", n_layers_D=3, norm="instance", init_type="normal", init_gain=0.02,
    no_dropout=True, dataset_mode="unaligned", direction="AtoB", serial_batches=False, num_threads=4, batch_size=1,
    load_size=286, crop_size=256, max_dataset_size=float("inf"), preprocess="resize_and_crop", no_flip=False,
    display_winsize=256, epoch="latest", load_iter=0, verbose=False, suffix="", display_id=1,
    display_server="http://localhost", display_port=8097, display_env="main", display_ncols=4, display_freq=400,
    update_html_freq=1000, print_freq=100, no_html=False, save_latest_freq=5000, save_epoch_freq=5,
    save_by_iter=False, continue_train=False, epoch_count=1, phase="train", n_epochs=100, n_epochs_decay=100,
    beta1=0.5, lr=0.0002, gan_mode="lsgan", pool_size=50, lr_policy="linear", lr_decay_iters=50,
    lambda_A=10.0, lambda_B=10.0, lambda_identity=0.5, gpu_ids=[])


def parse_and_save(options, tmp_path, flags):
    """Parse as the entry points do, and write the options file as they do once their checks pass."""
    opt = options.parse(["--dataroot", str(tmp_path), "--checkpoints_dir", str(tmp_path / "ck"), *flags])
    options.save(opt)
    return opt


def parse_train(tmp_path, *flags):
    return parse_and_save(TrainOptions(), tmp_path, flags)


def parse_test(tmp_path, *flags):
    return parse_and_save(TestOptions(), tmp_path, flags)


def test_training_defaults_are_the_originals(tmp_path):
    opt = parse_train(tmp_path)
    for key, value in TRAIN_DEFAULTS.items():
        if key != "checkpoints_dir":
            assert getattr(opt, key) == value, key


def test_pix2pix_changes_its_defaults(tmp_path):
    opt = parse_train(tmp_path, "--model", "pix2pix")
    assert (opt.norm, opt.netG, opt.dataset_mode, opt.pool_size, opt.gan_mode, opt.lambda_L1) == \
        ("batch", "unet_256", "aligned", 0, "vanilla", 100.0)
    assert opt.no_dropout is False and not hasattr(opt, "lambda_A")
    assert parse_train(tmp_path, "--model", "pix2pix", "--norm", "instance").norm == "instance"


def test_test_defaults(tmp_path):
    opt = parse_test(tmp_path, "--crop_size", "128")
    assert (opt.model, opt.dataset_mode, opt.phase, opt.results_dir, opt.aspect_ratio, opt.num_test) == \
        ("test", "single", "test", "./results/", 1.0, None)
    assert opt.load_size == 128 and opt.no_flip and opt.serial_batches and not opt.eval
    assert opt.model_suffix == ""
    assert parse_test(tmp_path, "--load_size", "300").load_size == 300


@pytest.mark.parametrize("old,new,value,expected", [
    (["--niter", "7"], "n_epochs", None, 7), (["--niter_decay", "3"], "n_epochs_decay", None, 3),
    (["--which_epoch", "5"], "epoch", None, "5"), (["--loadSize", "300"], "load_size", None, 300),
    (["--fineSize", "128"], "crop_size", None, 128), (["--resize_or_crop", "crop"], "preprocess", None, "crop"),
    (["--which_model_netG", "unet_128"], "netG", None, "unet_128"),
    (["--which_model_netD", "pixel"], "netD", None, "pixel"), (["--no_lsgan"], "gan_mode", None, "vanilla"),
    (["--batchSize", "4"], "batch_size", None, 4), (["--nThreads", "2"], "num_threads", None, 2),
])
def test_old_flag_names_work_with_one_notice(tmp_path, capsys, old, new, value, expected):
    opt = parse_train(tmp_path, *old)
    assert getattr(opt, new) == expected
    notices = [line for line in capsys.readouterr().err.splitlines() if old[0] in line]
    assert len(notices) == 1 and "old name" in notices[0]


@pytest.mark.parametrize("flags, noted", [(["--r1_every", "16"], True), (["--r1_every", "16", "--r1_gamma", "1"], False),
                                           (["--r1_gamma", "1"], False), ([], False)])
def test_r1_every_without_r1_gamma_is_noted(tmp_path, capsys, flags, noted):
    parse_train(tmp_path, *flags)
    note = "note: --r1_every 16 has no effect without --r1_gamma (the R1 penalty is off)"
    assert (note in capsys.readouterr().err) == noted


@pytest.mark.parametrize("flags, noted", [(["--norm", "batch", "--batch_size", "4"], True),
                                           (["--norm", "batch", "--batch_size", "4", "--eval"], False),
                                           (["--norm", "batch"], False), (["--batch_size", "4"], True),
                                           (["--norm", "instance", "--batch_size", "4"], False)])
def test_batch_norm_test_batches_without_eval_are_noted(tmp_path, capsys, flags, noted):
    # pix2pix's default --norm is batch.
    parse_test(tmp_path, "--model", "pix2pix", *flags)
    note = "note: --norm batch without --eval normalises each test batch by its own statistics"
    assert (note in capsys.readouterr().err) == noted


def test_how_many_is_the_old_num_test(tmp_path, capsys):
    assert parse_test(tmp_path, "--how_many", "9").num_test == 9
    assert "--how_many is an old name" in capsys.readouterr().err


@pytest.mark.parametrize("flag,value,valid", [
    ("--model", "cyclegan", "cycle_gan"), ("--dataset_mode", "paired", "aligned"), ("--netG", "resnet_12blocks", "unet_256"),
    ("--netD", "huge", "pixel"), ("--norm", "group", "syncbatch"), ("--init_type", "zeros", "orthogonal"),
    ("--gan_mode", "hinge", "wgangp"), ("--lr_policy", "exp", "cosine"), ("--preprocess", "resize", "scale_width"),
])
def test_unknown_values_are_rejected_with_the_choices(tmp_path, capsys, flag, value, valid):
    with pytest.raises(SystemExit) as exit_info:
        parse_train(tmp_path, flag, value)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and value in err and valid in err


def test_options_file_marks_changed_values_and_reads_back(tmp_path):
    parse_train(tmp_path, "--name", "exp", "--netG", "resnet_6blocks", "--ngf", "8", "--max_dataset_size", "10")
    text = (tmp_path / "ck" / "exp" / "train_opt.txt").read_text()
    assert "netG: resnet_6blocks" in text and "[default: resnet_9blocks]" in text
    assert "lr: 0.0002" in text and "[default: 0.0002]" not in text
    saved = read_saved_options(tmp_path / "ck" / "exp" / "train_opt.txt", TrainOptions().build_parser(["--dataroot", "x"]))
    assert saved["netG"] == "resnet_6blocks" and saved["ngf"] == 8 and saved["no_dropout"] is True
    assert saved["max_dataset_size"] == 10.0 and saved["lr"] == 0.0002


def test_test_options_file_is_written(tmp_path):
    parse_test(tmp_path, "--name", "exp")
    assert "model: test" in (tmp_path / "ck" / "exp" / "test_opt.txt").read_text()


def test_suffix_is_formatted_from_the_options(tmp_path):
    assert parse_train(tmp_path, "--name", "exp", "--suffix", "{model}_{netG}_size{load_size}").name == \
        "exp_cycle_gan_resnet_9blocks_size286"
    with pytest.raises(UserError, match="--suffix"):
        parse_train(tmp_path, "--suffix", "{nonexistent}")


def test_gpu_ids(tmp_path, capsys):
    assert parse_train(tmp_path).gpu_ids == []
    assert "no CUDA GPU found" in capsys.readouterr().err
    opt = parse_train(tmp_path, "--gpu_ids", "-1")
    assert opt.gpu_ids == [] and str(opt.device) == "cpu"
    assert "no CUDA GPU" not in capsys.readouterr().err
    with pytest.raises(UserError, match="CUDA is not available"):
        parse_train(tmp_path, "--gpu_ids", "0")
    with pytest.raises(UserError, match="not a list of numbers"):
        parse_train(tmp_path, "--gpu_ids", "first")


def test_test_time_architecture_comes_from_train_opt(tmp_path, capsys):
    parse_train(tmp_path, "--name", "exp", "--netG", "resnet_6blocks", "--ngf", "8", "--norm", "batch")
    opt = parse_test(tmp_path, "--name", "exp")
    assert (opt.netG, opt.ngf, opt.norm, opt.no_dropout) == ("resnet_6blocks", 8, "batch", True)
    assert "from" in capsys.readouterr().err
    assert parse_test(tmp_path, "--name", "exp", "--ngf", "16").ngf == 16  # what the user types wins


def test_test_time_channel_counts_come_from_train_opt(tmp_path):
    parse_train(tmp_path, "--name", "exp", "--input_nc", "1", "--output_nc", "3", "--lambda_identity", "0")
    opt = parse_test(tmp_path, "--name", "exp", "--model", "cycle_gan")
    assert (opt.input_nc, opt.output_nc) == (1, 3)
    assert parse_test(tmp_path, "--name", "exp", "--model_suffix", "_A").input_nc == 1
    opt = parse_test(tmp_path, "--name", "exp", "--model_suffix", "_B")  # G_B maps B (3 channels) to A (1)
    assert (opt.input_nc, opt.output_nc) == (3, 1)
    assert parse_test(tmp_path, "--name", "exp", "--model_suffix", "_B", "--input_nc", "1").input_nc == 1


def test_wandb_project_name_is_a_silent_synonym(tmp_path, capsys):
    opt = parse_train(tmp_path, "--name", "wb", "--wandb_project_name", "my_project")
    assert opt.wandb_project == "my_project" and not hasattr(opt, "wandb_project_name")
    assert "wandb_project_name" not in capsys.readouterr().err  # no deprecation notice: a current name
    assert "wandb_project: my_project" in (tmp_path / "ck" / "wb" / "train_opt.txt").read_text()
    assert parse_train(tmp_path, "--name", "other").wandb_project == "CycleGAN-and-pix2pix"


def test_the_test_model_cannot_be_trained(tmp_path):
    with pytest.raises(UserError, match="cannot be trained"):
        parse_train(tmp_path, "--model", "test")


def test_help_lists_model_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        TrainOptions().parse(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--lambda_identity" in out and "--gpu_ids" in out and "--niter" not in out


def test_model_defaults_do_not_count_as_typed(tmp_path):
    parse_train(tmp_path, "--name", "p", "--model", "pix2pix", "--netG", "unet_128")
    assert parse_test(tmp_path, "--name", "p", "--model", "pix2pix").netG == "unet_128"


# --- allowed ranges of numeric flags -----------------------------------------------------------------

TRAIN_MODELS = [name for name in models.available_models() if name != "test"]

# (options class, model, flag, a value out of range, the range the message states)
OUT_OF_RANGE = [
    (TrainOptions, "cycle_gan", "--batch_size", "0", "an integer >= 1"),
    (TrainOptions, "cycle_gan", "--load_size", "0", "an integer from 1 to 16384"),
    (TrainOptions, "cycle_gan", "--load_size", "16385", "an integer from 1 to 16384"),
    (TrainOptions, "cycle_gan", "--crop_size", "-32", "an integer from 1 to 16384"),
    (TrainOptions, "cycle_gan", "--num_threads", "-1", "an integer >= 0"),
    (TrainOptions, "cycle_gan", "--max_dataset_size", "0", r"a number >= 1 \(or inf for no limit\)"),
    (TrainOptions, "cycle_gan", "--max_dataset_size", "nan", r"a number >= 1 \(or inf for no limit\)"),
    (TrainOptions, "cycle_gan", "--max_bad_images", "-1", "an integer >= 0"),
    (TrainOptions, "cycle_gan", "--display_winsize", "0", "an integer from 1 to 16384"),
    (TrainOptions, "cycle_gan", "--display_freq", "-1", "an integer >= 0"),
    (TrainOptions, "cycle_gan", "--update_html_freq", "-5", "an integer >= 0"),
    (TrainOptions, "cycle_gan", "--print_freq", "-1", "an integer >= 0"),
    (TrainOptions, "cycle_gan", "--save_latest_freq", "-1", "an integer >= 0"),
    (TrainOptions, "cycle_gan", "--save_epoch_freq", "0", "an integer >= 1"),
    (TrainOptions, "cycle_gan", "--n_epochs", "-1", "an integer >= 0"),
    (TrainOptions, "cycle_gan", "--n_epochs_decay", "-1", "an integer >= 0"),
    (TrainOptions, "cycle_gan", "--epoch_count", "0", "an integer >= 1"),
    (TrainOptions, "cycle_gan", "--lr", "-0.0002", "a number >= 0"),
    (TrainOptions, "cycle_gan", "--lr", "inf", "a number >= 0"),
    (TrainOptions, "cycle_gan", "--lr", "nan", "a number >= 0"),
    (TrainOptions, "cycle_gan", "--beta1", "1", "a number >= 0 and < 1"),
    (TrainOptions, "cycle_gan", "--beta1", "-0.5", "a number >= 0 and < 1"),
    (TrainOptions, "cycle_gan", "--beta2", "1", "a number >= 0 and < 1"),
    (TrainOptions, "cut", "--stylegan2_G_num_downsampling", "-1", "an integer >= 0"),
    (TrainOptions, "sincut", "--lambda_R1", "-1", "a number >= 0"),
    (TrainOptions, "sincut", "--random_scale_max", "0.5", "a number >= 1"),
    (TrainOptions, "cycle_gan", "--lambda_A", "-10", "a number >= 0"),
    (TrainOptions, "cycle_gan", "--lambda_B", "inf", "a number >= 0"),
    (TrainOptions, "cycle_gan", "--lambda_identity", "-0.5", "a number >= 0"),
    (TrainOptions, "pix2pix", "--lambda_L1", "-100", "a number >= 0"),
    (TrainOptions, "cycle_gan", "--r1_gamma", "-1", "a number >= 0"),
    (TrainOptions, "pix2pix", "--r1_gamma", "inf", "a number >= 0"),
    (TrainOptions, "cycle_gan", "--r1_every", "0", "an integer >= 1"),
    (TrainOptions, "cycle_gan", "--ema_decay", "1", "a number >= 0 and < 1"),
    (TrainOptions, "pix2pix", "--ema_decay", "-0.5", "a number >= 0 and < 1"),
    (TrainOptions, "cycle_gan", "--affine_smooth", "0", "an integer from 1 to 16384"),
    (TestOptions, "cycle_gan", "--affine_smooth", "16385", "an integer from 1 to 16384"),
    (TrainOptions, "template", "--lambda_regression", "nan", "a number >= 0"),
    (TrainOptions, "cut", "--lambda_GAN", "-1", "a number >= 0"),
    (TrainOptions, "cut", "--lambda_NCE", "inf", "a number >= 0"),
    (TrainOptions, "cut", "--nce_T", "0", "a number > 0"),
    (TrainOptions, "cut", "--num_patches", "0", "an integer >= 1"),
    (TrainOptions, "cut", "--netF_nc", "0", "an integer >= 1"),
    (TrainOptions, "cycle_gan", "--pool_size", "-1", "an integer >= 0"),
    (TrainOptions, "cycle_gan", "--lr_decay_iters", "0", "an integer >= 1"),
    (TrainOptions, "cycle_gan", "--keep_last", "-1", "an integer >= 0"),
    (TrainOptions, "cycle_gan", "--eval_freq", "-1", "an integer >= 0"),
    (TrainOptions, "cycle_gan", "--load_iter", "-1", "an integer >= 0"),
    (TrainOptions, "cycle_gan", "--ngf", "0", "an integer >= 1"),
    (TrainOptions, "cycle_gan", "--ndf", "0", "an integer >= 1"),
    (TrainOptions, "cycle_gan", "--n_layers_D", "0", "an integer >= 1"),
    (TrainOptions, "cycle_gan", "--input_nc", "0", "an integer >= 1"),
    (TrainOptions, "cycle_gan", "--output_nc", "-3", "an integer >= 1"),
    (TrainOptions, "cycle_gan", "--init_gain", "0", "a number > 0"),
    (TrainOptions, "cycle_gan", "--dist_timeout", "0", "an integer from 1 to 1000000000"),
    (TrainOptions, "cycle_gan", "--display_ncols", "-1", "an integer >= 0"),
    (TrainOptions, "cycle_gan", "--display_port", "0", "an integer from 1 to 65535"),
    (TrainOptions, "cycle_gan", "--display_port", "65536", "an integer from 1 to 65535"),
    (TrainOptions, "cycle_gan", "--seed", "-1", "an integer from 0 to 4294967295"),
    (TestOptions, "test", "--num_test", "0", "an integer >= 1"),
    (TestOptions, "test", "--aspect_ratio", "0", "a number from 0.01 to 100"),
    (TestOptions, "cycle_gan", "--aspect_ratio", "1000", "a number from 0.01 to 100"),
    (TestOptions, "test", "--load_iter", "-2", "an integer >= 0"),
    (TestOptions, "test", "--batch_size", "0", "an integer >= 1"),
    (TestOptions, "test", "--output_bits", "12", "8 or 16"),
    (TestOptions, "test", "--tile", "-1", "an integer >= 0"),
    (TestOptions, "cycle_gan", "--tile_overlap", "0", "an integer >= 4"),
]


def parse_with(options_class, tmp_path, *flags):
    """Parse as the entry points do (train or test options)."""
    return parse_and_save(options_class(), tmp_path, flags)


@pytest.mark.parametrize("options_class, model, flag, value, allowed", OUT_OF_RANGE,
                         ids=[f"{row[2]} {row[3]}" for row in OUT_OF_RANGE])
def test_out_of_range_values_are_refused_in_one_line(tmp_path, options_class, model, flag, value, allowed):
    with pytest.raises(UserError) as caught:
        parse_with(options_class, tmp_path, "--model", model, flag, value)
    message = str(caught.value)
    assert re.fullmatch(rf"{flag} \S+ is out of range; it must be {allowed}", message), message
    assert not (tmp_path / "ck" / "experiment_name" / f"{'train' if options_class is TrainOptions else 'test'}"
                "_opt.txt").exists()


def test_the_range_table_covers_every_bounded_numeric_flag():
    """A numeric flag added later without a row above makes this fail: every range is tried once."""
    tried = {(options_class, flag) for options_class, _, flag, _, _ in OUT_OF_RANGE}
    for options_class, model_names in ((TrainOptions, TRAIN_MODELS), (TestOptions, models.available_models())):
        for model in model_names:
            parser = options_class().build_parser(["--dataroot", "x", "--model", model])
            for flag, allowed, _ in ranged_actions(parser):
                bounded = allowed.describe() != "any integer"
                assert not bounded or (options_class, flag) in tried or (TrainOptions, flag) in tried, (model, flag)


def test_every_numeric_flag_declares_its_range():
    for options_class, model_names in ((TrainOptions, TRAIN_MODELS), (TestOptions, models.available_models())):
        for model in model_names:
            parser = options_class().build_parser(["--dataroot", "x", "--model", model])
            for action in parser._actions:
                numeric = action.type in (int, float) or isinstance(action.default, (int, float)) and \
                    not isinstance(action.default, bool) and action.nargs != 0
                if numeric and not isinstance(action, DeprecatedAlias) and action.default is not argparse.SUPPRESS:
                    assert isinstance(action.type, NumberRange), (model, action.option_strings)


@pytest.mark.parametrize("options_class, model", [(TrainOptions, name) for name in TRAIN_MODELS]
                         + [(TestOptions, name) for name in models.available_models()])
def test_every_default_is_in_range(tmp_path, options_class, model):
    parse_with(options_class, tmp_path, "--model", model)


@pytest.mark.parametrize("flags, name, expected", [
    (["--display_id", "0"], "display_id", 0), (["--display_id", "-1"], "display_id", -1),
    (["--pool_size", "0"], "pool_size", 0), (["--max_dataset_size", "inf"], "max_dataset_size", float("inf")),
    (["--max_dataset_size", "1"], "max_dataset_size", 1.0), (["--beta1", "0"], "beta1", 0.0),
    (["--lambda_identity", "0"], "lambda_identity", 0.0), (["--num_threads", "0"], "num_threads", 0),
    (["--print_freq", "0"], "print_freq", 0), (["--save_latest_freq", "0"], "save_latest_freq", 0),
    (["--keep_last", "0"], "keep_last", 0), (["--n_epochs", "0", "--n_epochs_decay", "1"], "n_epochs", 0),
    (["--display_port", "65535"], "display_port", 65535), (["--lr", "0"], "lr", 0.0),
    (["--seed", "0"], "seed", 0),
    (["--epoch_count", "3", "--n_epochs", "2", "--n_epochs_decay", "1"], "epoch_count", 3),
])
def test_values_at_the_edges_of_their_ranges_are_accepted(tmp_path, flags, name, expected):
    assert getattr(parse_train(tmp_path, *flags), name) == expected


def test_old_flag_names_are_range_checked_too(tmp_path):
    with pytest.raises(UserError, match=r"^--batch_size 0 is out of range"):
        parse_train(tmp_path, "--batchSize", "0")


def test_text_that_is_no_number_is_refused_by_argparse(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_train(tmp_path, "--lr", "fast")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("argument --lr: invalid float value: 'fast'")


@pytest.mark.parametrize("flags, message", [
    (["--n_epochs", "0", "--n_epochs_decay", "0"],
     r"--n_epochs 0 --n_epochs_decay 0 leave nothing to train; together they must be at least 1 epoch"),
    (["--epoch_count", "4", "--n_epochs", "2", "--n_epochs_decay", "1"],
     r"--epoch_count 4 starts after the last epoch \(--n_epochs \+ --n_epochs_decay = 3\), so nothing would be "
     r"trained; it must be from 1 to 3"),
    (["--crop_size", "23"], r"--crop_size 23 is too small for --netD basic; it must be at least 24"),
    (["--netD", "n_layers", "--n_layers_D", "4", "--crop_size", "47"],
     r"--crop_size 47 is too small for --netD n_layers --n_layers_D 4; it must be at least 48"),
    (["--netD", "pixel", "--crop_size", "4"],
     r"--crop_size 4 is too small for --netG resnet_9blocks; it must be at least 5"),
    (["--preprocess", "scale_width", "--load_size", "20"],
     r"--load_size 20 is too small for --netD basic; it must be at least 24"),
])
def test_flags_that_leave_nothing_to_train_or_do_not_fit_the_networks(tmp_path, flags, message):
    with pytest.raises(UserError, match=f"^{message}$"):
        parse_train(tmp_path, *flags)


def test_smallest_crop_sizes_are_accepted(tmp_path):
    assert parse_train(tmp_path, "--crop_size", "24", "--load_size", "24").crop_size == 24
    assert parse_train(tmp_path, "--netD", "pixel", "--netG", "unet_128", "--crop_size", "2").crop_size == 2
    assert parse_train(tmp_path, "--preprocess", "none", "--crop_size", "1").crop_size == 1  # images decide
    assert parse_test(tmp_path, "--crop_size", "5").crop_size == 5  # no discriminator at test time
    with pytest.raises(UserError, match="--crop_size 4 is too small for --netG resnet_9blocks"):
        parse_test(tmp_path, "--crop_size", "4")


def test_output_bits_takes_8_or_16(tmp_path):
    assert parse_test(tmp_path).output_bits == 8 and parse_test(tmp_path, "--output_bits", "16").output_bits == 16
    with pytest.raises(UserError, match=r"^--output_bits 12 is out of range; it must be 8 or 16$"):
        parse_test(tmp_path, "--output_bits", "12")


def test_help_shows_the_ranges(capsys):
    with pytest.raises(SystemExit):
        TrainOptions().parse(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "input batch size [an integer >= 1] (default: 1)" in help_text
    assert "[a number >= 0 and < 1]" in help_text and "[an integer from 1 to 65535]" in help_text


# --- CUT's flags: the official defaults of each --CUT_mode, and its yes/no flags -----------------------

CUT_SHARED_DEFAULTS = dict(lambda_GAN=1.0, nce_layers="0,4,8,12,16", nce_T=0.07, num_patches=256, netF="mlp_sample",
                           netF_nc=256, nce_includes_all_negatives_from_minibatch=False, no_antialias=False,
                           no_antialias_up=False, normG=None, normD=None, pool_size=0, init_type="xavier",
                           no_dropout=True, gan_mode="lsgan", dataset_mode="unaligned")


@pytest.mark.parametrize("mode, expected", [
    ("CUT", dict(CUT_mode="CUT", nce_idt=True, lambda_NCE=1.0, flip_equivariance=False, n_epochs=200,
                 n_epochs_decay=200)),
    ("fastcut", dict(CUT_mode="FastCUT", nce_idt=False, lambda_NCE=10.0, flip_equivariance=True, n_epochs=150,
                     n_epochs_decay=50)),
], ids=["CUT", "FastCUT in lower case"])
def test_cut_modes_set_the_official_defaults(tmp_path, mode, expected):
    opt = parse_train(tmp_path, "--model", "cut", "--CUT_mode", mode)
    for key, value in {**CUT_SHARED_DEFAULTS, **expected}.items():
        assert getattr(opt, key) == value, key


def test_flags_given_win_over_the_modes_defaults(tmp_path):
    opt = parse_train(tmp_path, "--model", "cut", "--nce_idt", "--lambda_NCE", "2", "--CUT_mode", "FastCUT",
                      "--flip_equivariance", "no", "--n_epochs", "3", "--pool_size", "5", "--init_type", "normal")
    assert (opt.nce_idt, opt.lambda_NCE, opt.flip_equivariance, opt.n_epochs, opt.n_epochs_decay) == \
        (True, 2.0, False, 3, 50)
    assert (opt.pool_size, opt.init_type) == (5, "normal")
    assert parse_train(tmp_path, "--model", "cut", "--nce_idt", "False").nce_idt is False
    assert parse_train(tmp_path, "--model", "cut", "--nce_includes_all_negatives_from_minibatch", "T") \
        .nce_includes_all_negatives_from_minibatch is True


@pytest.mark.parametrize("flags, message", [
    (["--nce_idt", "maybe"], r"--nce_idt 'maybe' is neither yes nor no; give --nce_idt alone, or --nce_idt True or "
                             r"--nce_idt False"),
    (["--nce_layers", "4,0"], r"--nce_layers '4,0' is not a list of layer indices; give distinct numbers >= 0 in "
                              r"ascending order, comma-separated, e.g. --nce_layers 0,4,8,12,16"),
    (["--nce_layers", "0,x"], r"--nce_layers '0,x' is not a list of layer indices; .*"),
])
def test_bad_cut_flag_values_are_refused_in_one_line(tmp_path, flags, message):
    with pytest.raises(UserError, match=f"^{message}$"):
        parse_train(tmp_path, "--model", "cut", *flags)


def test_cut_test_time_takes_the_mode_and_the_generator_flags_of_the_run(tmp_path, capsys):
    parse_train(tmp_path, "--name", "c", "--model", "cut", "--normG", "batch", "--no_antialias", "--netG",
                "resnet_6blocks")
    opt = parse_test(tmp_path, "--name", "c", "--model", "cut", "--CUT_mode", "FastCUT")
    assert (opt.CUT_mode, opt.normG, opt.no_antialias, opt.no_antialias_up, opt.netG) == \
        ("FastCUT", "batch", True, False, "resnet_6blocks")
    parse_train(tmp_path, "--name", "d", "--model", "cut")  # --normG left unset is read back unset
    assert parse_test(tmp_path, "--name", "d", "--model", "cut").normG is None
