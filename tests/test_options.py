"""Option parsing: the original's defaults, model defaults, old flag names, bad values, saved options."""
import pytest

from options.base_options import read_saved_options
from options.test_options import TestOptions
from options.train_options import TrainOptions
from util.errors import UserError

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
