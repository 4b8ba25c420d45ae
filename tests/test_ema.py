"""EMA generators (--ema_decay, --raw_weights): the update and its warm-up, the model's averages (with
--compile too), the visuals, then train.py/test.py/export.py runs as a user makes them: which files
hold what, which weights each command uses, resuming with another decay, pix2pix. DDP, --amp and exact
resumes with EMA are tested in test_distributed.py, test_performance_flags.py and test_resume.py."""
import argparse
import contextlib
import io
import json
import re
import shutil
import warnings

import pytest
import torch
from torch import nn

import train
from conftest import entry_point, training_model
from engine import train_state
from models import checkpoint, create_model
from models.ema import WeightAverage, warmed_up_decay
from models.generators import define_G
from options.train_options import TrainOptions
from util.errors import UserError

TINY = ["--ngf", "8", "--ndf", "8", "--netG", "resnet_6blocks", "--gpu_ids", "-1", "--display_id", "0",
        "--num_threads", "0", "--load_size", "36", "--crop_size", "32", "--n_epochs", "1", "--n_epochs_decay", "0",
        "--seed", "1"]


# --- the update rule ----------------------------------------------------------------------------------

def small_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))


def test_the_decay_warms_up_to_its_value():
    assert [warmed_up_decay(0.9, n) for n in (0, 1, 2, 80, 81, 1000)] == \
        pytest.approx([0.1, 2 / 11, 0.25, 0.9, 0.9, 0.9])
    assert warmed_up_decay(0.0, 5) == 0.0


def test_updates_average_parameters_copy_buffers_and_leave_autograd_alone():
    raw = small_net()
    average = WeightAverage({"G": raw}, decay=0.9)
    start = {key: value.clone() for key, value in average.networks["G"].state_dict().items()}
    with torch.no_grad():
        for param in raw.parameters():
            param.add_(1.0)
    raw(torch.randn(4, 2, 5, 5))  # training mode: new batch-norm statistics
    average.update({"G": raw})
    averaged = average.networks["G"].state_dict()
    # The first update (d = 0.1) nearly copies the raw weights.
    for key, param in raw.named_parameters():
        assert torch.allclose(averaged[key], 0.1 * start[key] + 0.9 * param, atol=1e-6), key
    for key, buffer in raw.named_buffers():
        assert torch.equal(averaged[key], buffer), key
    # Later updates use the decay itself.
    average.updates = 200
    before = {key: value.clone() for key, value in averaged.items()}
    with torch.no_grad():
        for param in raw.parameters():
            param.mul_(-2.0)
    average.update({"G": raw})
    for key, param in raw.named_parameters():
        assert torch.allclose(average.networks["G"].state_dict()[key], 0.9 * before[key] + 0.1 * param, atol=1e-6)
    assert average.updates == 201
    # No autograd: the copies need no gradients, the update records no graph and touches no gradient.
    assert not any(param.requires_grad for param in average.networks["G"].parameters())
    assert all(param.grad_fn is None for param in average.networks["G"].parameters())
    assert all(param.requires_grad and param.grad is None for param in raw.parameters())


def test_state_round_trip_and_restart():
    raw = small_net()
    average = WeightAverage({"G": raw}, decay=0.9)
    with torch.no_grad():
        raw[0].weight.add_(1.0)
    average.update({"G": raw})
    other = WeightAverage({"G": small_net()}, decay=0.5)
    other.load_state_dict(average.state_dict())
    assert other.updates == 1 and other.decay == 0.5  # the decay is the current run's flag
    assert all(torch.equal(a, b) for a, b in zip(other.networks["G"].state_dict().values(),
                                                 average.networks["G"].state_dict().values()))
    other.restart({"G": raw})
    assert other.updates == 0
    assert all(torch.equal(a, b) for a, b in zip(other.networks["G"].state_dict().values(), raw.state_dict().values()))


# --- the model's averages -----------------------------------------------------------------------------

def build_model(tmp_path, *flags):
    return training_model(tmp_path, *TINY, *flags)


def a_batch():
    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(1, 3, 32, 32, generator=generator) * 2 - 1 for _ in range(2)]
    return {"A": images[0], "B": images[1], "A_paths": ["a"], "B_paths": ["b"]}


def weights_of(net):
    return {key: value.detach().clone() for key, value in net.state_dict().items()}


def test_each_generator_step_updates_the_averages_of_every_generator(tmp_path):
    model = build_model(tmp_path, "--ema_decay", "0.99")
    assert list(model.averaged_networks()) == ["G_A", "G_B"]
    initial = {name: weights_of(net) for name, net in model.generators().items()}
    model.set_input(a_batch())
    model.optimize_parameters()  # one generator step, one discriminator step
    assert model.average.updates == 1 and model.steps_taken == [1, 1]
    for name, net in model.generators().items():
        averaged = model.averaged_networks()[name]
        for key, param in net.named_parameters():
            kept = averaged.state_dict()[key]
            assert kept.dtype == torch.float32
            assert torch.allclose(kept, 0.1 * initial[name][key] + 0.9 * param.detach(), atol=1e-7), key


def test_with_compile_the_averages_run_their_own_weights(tmp_path):
    model = build_model(tmp_path, "--ema_decay", "0.9", "--compile")
    raw, averaged = model.netG_A, model.averaged_networks()["G_A"]
    assert "forward" in vars(raw)  # --compile replaced the raw network's forward
    with torch.no_grad():
        for param in raw.parameters():
            param.mul_(2.0)
        probe = a_batch()["A"]
        # Eager forwards (type(...).forward bypasses the compiled one; 32 px needs no size padding).
        assert torch.equal(averaged(probe), type(averaged).forward(averaged, probe))
        assert not torch.allclose(averaged(probe), type(raw).forward(raw, probe))


@pytest.mark.parametrize("raw_weights", [False, True], ids=["averages", "raw"])
def test_visuals_come_from_the_averages_and_leave_training_alone(tmp_path, raw_weights):
    model = build_model(tmp_path, "--ema_decay", "0.9", *(["--raw_weights"] if raw_weights else []))
    model.set_input(a_batch())
    model.optimize_parameters()
    trained_fake = model.fake_B.detach().clone()
    raw, averages = weights_of(model.netG_A), weights_of(model.averaged_networks()["G_A"])
    rng = torch.get_rng_state()
    visuals = train.output_visuals(model)
    with torch.no_grad():
        from_average = model.averaged_networks()["G_A"](model.real_A)
    expected = trained_fake if raw_weights else from_average
    assert torch.allclose(visuals["fake_B"], expected, atol=1e-6)
    assert not torch.allclose(from_average, trained_fake, atol=1e-4)
    assert model.netG_A is not model.averaged_networks()["G_A"]  # the trained network is back in place
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(a, b) for a, b in zip(raw.values(), weights_of(model.netG_A).values()))
    assert all(torch.equal(a, b) for a, b in zip(averages.values(),
                                                 weights_of(model.averaged_networks()["G_A"]).values()))


IDENTITY_VISUALS = {"cycle_gan": {"idt_A": ("G_A", "real_B"), "idt_B": ("G_B", "real_A")},
                    "cut": {"idt_B": ("G", "real_B")}}  # visual -> (generator, its input)


@pytest.mark.parametrize("raw_weights", [False, True], ids=["averages", "raw"])
@pytest.mark.parametrize("model_flags", [["--model", "cycle_gan", "--lambda_identity", "0.5"],
                                         ["--model", "cut", "--nce_idt", "--netF_nc", "16", "--num_patches", "16"]],
                         ids=["cycle_gan", "cut"])
def test_identity_visuals_come_from_the_weights_of_the_other_visuals(tmp_path, model_flags, raw_weights):
    model = build_model(tmp_path, *model_flags, "--ema_decay", "0.9", *(["--raw_weights"] if raw_weights else []))
    calls = {name: 0 for name in model.averaged_networks()}
    for name, average in model.averaged_networks().items():
        average.register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    model.set_input(a_batch())
    model.optimize_parameters()
    assert set(calls.values()) == {0}  # a training step without visuals runs no average
    identity = IDENTITY_VISUALS[model_flags[1]]
    trained = {label: getattr(model, label).detach().clone() for label in identity}
    raw, rng = {name: weights_of(net) for name, net in model.generators().items()}, torch.get_rng_state()
    visuals = train.output_visuals(model)
    assert torch.equal(torch.get_rng_state(), rng)  # training goes on as without visuals
    assert all(same(raw[name], weights_of(net)) for name, net in model.generators().items())
    for label, (generator, source) in identity.items():
        with torch.no_grad():
            from_average = model.averaged_networks()[generator](getattr(model, source))
        assert not torch.allclose(from_average, trained[label], atol=1e-4)
        assert torch.allclose(visuals[label], trained[label] if raw_weights else from_average, atol=1e-6), label


def test_a_state_without_averages_starts_them_from_the_weights(tmp_path):
    plain = build_model(tmp_path)
    plain.set_input(a_batch())
    plain.optimize_parameters()
    averaged = build_model(tmp_path, "--ema_decay", "0.9")
    averaged.load_training_state(plain.training_state())
    assert averaged.average.updates == 0
    for name, net in plain.generators().items():
        assert all(torch.equal(a, b) for a, b in zip(weights_of(net).values(),
                                                     weights_of(averaged.averaged_networks()[name]).values()))


def test_a_model_without_generators_cannot_average(tmp_path):
    with contextlib.redirect_stdout(io.StringIO()):
        opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--checkpoints_dir", str(tmp_path / "ck"),
                                    "--model", "template", *TINY, "--ema_decay", "0.9"])
    model = create_model(opt)
    model.generator_names = []
    with pytest.raises(UserError, match=r"--model template names no generators to average; train it without "
                                        r"--ema_decay"):
        model.setup()


@pytest.mark.parametrize("saved, given, outcome", [
    ({}, 0.0, None), ({"ema_decay": 0.9}, 0.9, None),
    ({}, 0.9, r"note: x was trained without --ema_decay; the generators' averages start from their current weights"),
    ({"ema_decay": 0.9}, 0.5, r"note: the generators' averages continue with --ema_decay 0.5 \(the run had 0.9\)"),
    ({"ema_decay": 0.9}, 0.0, UserError),
], ids=["off", "same", "turned on", "new decay", "turned off"])
def test_continuing_with_another_decay(saved, given, outcome, capsys):
    opt = argparse.Namespace(ema_decay=given)
    if outcome is UserError:
        with pytest.raises(UserError, match=r"^x was trained with --ema_decay 0.9, whose weights files hold the "
                                            r"generators' averages; continue it with --ema_decay 0.9"):
            train_state.check_ema_decay(saved, opt, "x")
        return
    train_state.check_ema_decay(saved, opt, "x")
    notes = capsys.readouterr().err.strip().splitlines()
    assert (len(notes) == 1 and re.fullmatch(outcome, notes[0])) if outcome else notes == []


# --- train.py, test.py, export.py ---------------------------------------------------------------------
# The commands run their `main` in this process: the same code as a user's command line, without a new
# interpreter's start-up (tests/test_resume.py runs train.py with --ema_decay as separate processes).

def run_main(path, *args):
    """Run an entry point's main with `args` as a user would; return (exit status, stdout, stderr)."""
    main = train.main if path == "train.py" else entry_point(path).main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(map(str, args)))
            status = 0
        except SystemExit as stop:
            status = stop.code
    return status, out.getvalue(), err.getvalue()


def ema_args(root):
    return ["--dataroot", root, "--name", "ema", *TINY, "--ema_decay", "0.9", "--eval_freq", "1", "--metrics", "l1"]


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory, shared_unaligned_root):
    """(checkpoints_dir, dataset) of a finished tiny CycleGAN run with --ema_decay 0.9, evaluated (l1) once;
    tests only read it."""
    checkpoints = tmp_path_factory.mktemp("ema_run") / "ck"
    status, _, err = run_main("train.py", *ema_args(shared_unaligned_root), "--checkpoints_dir", checkpoints)
    assert status == 0, err[-3000:]
    return checkpoints, shared_unaligned_root


def load(path):
    return torch.load(path, weights_only=True)


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key].cpu()) for key in a)


def test_which_file_holds_which_weights(tmp_path):
    weights = {"w": torch.ones(1)}
    files = {"G_A": checkpoint.mark_average(weights, 0.999), "G_A_raw": weights,  # averages, raw weights beside
             "G_B": weights,  # a run without EMA (or a save made before it was turned on)
             "G_C": checkpoint.mark_average(weights, 0.9),  # averages whose raw weights file was lost
             "G_D": weights, "G_D_raw": weights}  # averages saved by a version of ours without the mark
    for name, state in files.items():
        torch.save(state, tmp_path / f"latest_net_{name}.pth")
    folder = str(tmp_path)
    assert checkpoint.weights_file(folder, "latest", "G_A") == str(tmp_path / "latest_net_G_A.pth")
    assert checkpoint.weights_file(folder, "latest", "G_A", raw_weights=True) == str(tmp_path / "latest_net_G_A_raw.pth")
    assert checkpoint.weights_file(folder, "latest", "G_B", raw_weights=True) == str(tmp_path / "latest_net_G_B.pth")
    kinds = {name: checkpoint.weights_kind(str(tmp_path / f"latest_net_{name}.pth"),
                                           load(tmp_path / f"latest_net_{name}.pth")) for name in files}
    assert kinds == {"G_A": ("ema", 0.999), "G_A_raw": ("raw", None), "G_B": ("raw", None), "G_C": ("ema", 0.9),
                     "G_D": ("ema", None), "G_D_raw": ("raw", None)}
    with pytest.raises(UserError, match=r"^no raw weights file .*latest_net_G_C_raw.pth: latest_net_G_C.pth holds the "
                                        r"averaged \(EMA\) weights of --ema_decay 0.9; leave out --raw_weights"):
        checkpoint.require_raw_weights(str(tmp_path / "latest_net_G_C.pth"), *kinds["G_C"])
    checkpoint.require_raw_weights(str(tmp_path / "latest_net_G_B.pth"), *kinds["G_B"])
    assert checkpoint.describe_weights([("a/latest_net_G_A.pth", "ema", 0.999), ("a/latest_net_G_B.pth", "ema", 0.999),
                                        ("a/5_net_G_D.pth", "ema", None), ("a/5_net_D.pth", "raw", None)]) == \
        "EMA weights (decay 0.999) from latest_net_G_A.pth, latest_net_G_B.pth; EMA weights from 5_net_G_D.pth; " \
        "raw weights from 5_net_D.pth"


def test_the_mark_of_the_averages_leaves_plain_loading_alone(tmp_path):
    # What the original tool's test.py and a user's load_state_dict do with a file of ours: the mark in
    # _metadata names no module, so the weights load as they would without it.
    net = define_G(3, 3, 8, "resnet_6blocks", "batch", False)
    torch.save(checkpoint.mark_average(net.state_dict(), 0.9), tmp_path / "latest_net_G_A.pth")
    other = define_G(3, 3, 8, "resnet_6blocks", "batch", False)
    other.load_state_dict(load(tmp_path / "latest_net_G_A.pth"))
    assert same(net.state_dict(), other.state_dict())


def test_saves_hold_the_averages_under_the_usual_names_and_the_raw_weights_beside_them(ema_run):
    folder = ema_run[0] / "ema"
    state = load(folder / "latest_state.pth")
    assert state["model"]["ema"]["updates"] == 4 == state["model"]["steps_taken"][0]  # 4 images, 1 epoch
    for prefix in ("latest", "1", "best"):
        for name in ("G_A", "G_B"):
            assert same(load(folder / f"{prefix}_net_{name}.pth"), state["model"]["ema"]["networks"][name])
            assert same(load(folder / f"{prefix}_net_{name}_raw.pth"), state["model"]["networks"][name])
            assert not same(load(folder / f"{prefix}_net_{name}.pth"), state["model"]["networks"][name])
            assert checkpoint.average_decay(load(folder / f"{prefix}_net_{name}.pth")) == 0.9
            assert checkpoint.average_decay(load(folder / f"{prefix}_net_{name}_raw.pth")) is None
        assert same(load(folder / f"{prefix}_net_D_A.pth"), state["model"]["networks"]["D_A"])
    assert not list(folder.glob("*_net_D_*_raw.pth"))
    assert re.search(r"^ +ema_decay: 0.9\s+\[default: 0.0\]$", (folder / "train_opt.txt").read_text(), re.M)


def test_repair_rewrites_the_averages_and_the_raw_weights_from_the_state(ema_run, tmp_path):
    folder = tmp_path / "ema"
    shutil.copytree(ema_run[0] / "ema", folder)
    state = load(folder / "latest_state.pth")
    shutil.copy(folder / "latest_net_G_A_raw.pth", folder / "latest_net_G_A.pth")  # raw where the average belongs
    (folder / "latest_net_G_B_raw.pth").unlink()
    rewritten, removed = train_state.repair_weight_files(str(folder), state)
    assert sorted(rewritten) == [str(folder / "latest_net_G_A.pth"), str(folder / "latest_net_G_B_raw.pth")]
    assert same(load(folder / "latest_net_G_A.pth"), state["model"]["ema"]["networks"]["G_A"])
    assert same(load(folder / "latest_net_G_B_raw.pth"), state["model"]["networks"]["G_B"]) and removed == []


def test_the_evaluation_best_and_test_py_use_the_averages_and_raw_weights_on_request(ema_run, tmp_path):
    checkpoints, root = ema_run
    common = ["--dataroot", root, "--name", "ema", "--model", "cycle_gan", "--gpu_ids", "-1", "--num_threads", "0",
              "--crop_size", "32", "--checkpoints_dir", checkpoints, "--epoch", "best"]
    status, averages, _ = run_main("test.py", *common, "--metrics", "l1", "--results_dir", tmp_path / "averages")
    assert status == 0 and "weights: EMA weights (decay 0.9) from best_net_G_A.pth, best_net_G_B.pth" in averages
    status, raw, _ = run_main("test.py", *common, "--raw_weights", "--results_dir", tmp_path / "raw")
    assert status == 0 and "weights: raw weights from best_net_G_A_raw.pth, best_net_G_B_raw.pth" in raw
    # The evaluation that chose best_net_* measured the averages: test.py on them measures the same.
    best = json.loads((checkpoints / "ema" / "best_score.json").read_text())["metrics"]["l1"]
    tested = json.loads((tmp_path / "averages" / "ema" / "test_best" / "metrics.json").read_text())["metrics"]["l1"]
    assert {title: tested[title]["value"] for title in best} == pytest.approx(best, rel=1e-6)
    for picture in ("img_000_fake_B.png", "img_000_fake_A.png"):
        outputs = [(tmp_path / kind / "ema" / "test_best" / "images" / picture).read_bytes() for kind in ("averages", "raw")]
        assert outputs[0] != outputs[1]


def test_raw_weights_of_a_run_with_averages_that_lost_them_are_one_error_line(ema_run, tmp_path):
    checkpoints, root = ema_run
    shutil.copytree(checkpoints / "ema", tmp_path / "ck" / "ema")
    (tmp_path / "ck" / "ema" / "latest_net_G_A_raw.pth").unlink()
    status, _, err = run_main("test.py", "--dataroot", root, "--name", "ema", "--model", "cycle_gan",
                              "--checkpoints_dir", tmp_path / "ck", "--gpu_ids", "-1", "--crop_size", "32",
                              "--raw_weights", "--results_dir", tmp_path / "results")
    assert status == 2 and "Traceback" not in err
    assert re.fullmatch(r"error: no raw weights file \S+latest_net_G_A_raw.pth: latest_net_G_A.pth holds the averaged "
                        r"\(EMA\) weights of --ema_decay 0.9; leave out --raw_weights to use those, or pick an --epoch "
                        r"saved with its raw weights", err.strip().splitlines()[-1])


def test_test_py_tells_the_weights_by_what_each_save_holds_not_by_train_opt(ema_run, tmp_path):
    # train_opt.txt is rewritten by every later run of the experiment, so it describes the newest run, not
    # every save in the folder: here a continuation with --ema_decay 0.5 after the saves of decay 0.9.
    checkpoints, root = ema_run
    folder = tmp_path / "ck" / "ema"
    shutil.copytree(checkpoints / "ema", folder)
    options = folder / "train_opt.txt"
    options.write_text(options.read_text().replace("ema_decay: 0.9", "ema_decay: 0.5"))
    for name in ("G_A", "G_B"):
        # Save 7, made before --ema_decay was turned on: raw weights, nothing beside them.
        shutil.copy(folder / f"latest_net_{name}_raw.pth", folder / f"7_net_{name}.pth")
        # Save 5, made by a version of ours that did not mark the averages: only the raw file beside them tells.
        torch.save(dict(load(folder / f"1_net_{name}.pth")), folder / f"5_net_{name}.pth")
        shutil.copy(folder / f"1_net_{name}_raw.pth", folder / f"5_net_{name}_raw.pth")
    expected = {("latest", False): "EMA weights (decay 0.9) from latest_net_G_A.pth, latest_net_G_B.pth",
                ("latest", True): "raw weights from latest_net_G_A_raw.pth, latest_net_G_B_raw.pth",
                ("7", False): "raw weights from 7_net_G_A.pth, 7_net_G_B.pth",
                ("7", True): "raw weights from 7_net_G_A.pth, 7_net_G_B.pth",
                ("5", False): "EMA weights from 5_net_G_A.pth, 5_net_G_B.pth",
                ("5", True): "raw weights from 5_net_G_A_raw.pth, 5_net_G_B_raw.pth"}
    for (epoch, raw_weights), weights in expected.items():
        status, out, err = run_main("test.py", "--dataroot", root, "--name", "ema", "--model", "cycle_gan",
                                    "--checkpoints_dir", tmp_path / "ck", "--gpu_ids", "-1", "--num_threads", "0",
                                    "--crop_size", "32", "--num_test", "1", "--epoch", epoch,
                                    *(["--raw_weights"] if raw_weights else []), "--results_dir", tmp_path / "results")
        assert status == 0 and f"weights: {weights}\n" in out, (epoch, raw_weights, out[-1000:], err[-2000:])


def test_export_takes_the_averages_or_the_raw_weights(ema_run, tmp_path):
    checkpoints = ema_run[0]
    probe = torch.rand(1, 3, 36, 40) * 2 - 1
    outputs = {}
    for kind, file in (("averages", "latest_net_G_A.pth"), ("raw", "latest_net_G_A_raw.pth")):
        net = define_G(3, 3, 8, "resnet_6blocks", "instance", False)
        net.load_state_dict(load(checkpoints / "ema" / file))
        with torch.no_grad():
            outputs[kind] = net(probe)
    printed = {"averages": "exporting the EMA weights (decay 0.9) from latest_net_G_A.pth",
               "raw": "exporting the raw weights from latest_net_G_A_raw.pth"}
    for kind, flags in (("averages", []), ("raw", ["--raw_weights"])):
        status, out, err = run_main("scripts/export.py", "--name", "ema", "--checkpoints_dir", checkpoints,
                                    "--formats", "torchscript", "--out", tmp_path / kind, *flags)
        assert status == 0 and printed[kind] in out, err[-2000:]
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation
            exported = torch.jit.load(str(tmp_path / kind / "ema_G_A.pt"))(probe)
        other = "raw" if kind == "averages" else "averages"
        assert torch.allclose(exported, outputs[kind], atol=1e-5)
        assert not torch.allclose(exported, outputs[other], atol=1e-4)


def test_continuing_with_another_decay_or_without_one(ema_run, tmp_path):
    checkpoints, root = ema_run
    shutil.copytree(checkpoints / "ema", tmp_path / "ck" / "ema")
    common = ["--dataroot", root, "--name", "ema", *TINY, "--checkpoints_dir", tmp_path / "ck", "--continue_train",
              "--n_epochs", "2"]
    before = {path.name: path.read_bytes() for path in (tmp_path / "ck" / "ema").glob("*.*")}
    status, _, err = run_main("train.py", *common, "--ema_decay", "0")
    assert status == 2 and "Traceback" not in err
    assert re.fullmatch(r"error: \S+latest_state.pth was trained with --ema_decay 0.9, whose weights files hold the "
                        r"generators' averages; continue it with --ema_decay 0.9 \(or another decay above 0\), or "
                        r"start a new run with another --name", err.strip().splitlines()[-1])
    assert {path.name: path.read_bytes() for path in (tmp_path / "ck" / "ema").glob("*.*")} == before
    status, _, err = run_main("train.py", *common, "--ema_decay", "0.5")
    assert status == 0, err[-3000:]
    assert "note: the generators' averages continue with --ema_decay 0.5 (the run had 0.9)" in err
    state = load(tmp_path / "ck" / "ema" / "latest_state.pth")
    assert state["model"]["ema"]["updates"] == 8 and state["model"]["ema"]["decay"] == 0.5


def test_pix2pix_trains_and_tests_with_averaged_generators(tmp_path, aligned_root):
    common = ["--dataroot", aligned_root, "--name", "p2p", "--checkpoints_dir", tmp_path / "ck", "--model", "pix2pix"]
    status, _, err = run_main("train.py", *common, *TINY, "--ema_decay", "0.9")
    assert status == 0, err[-3000:]
    folder = tmp_path / "ck" / "p2p"
    state = load(folder / "latest_state.pth")
    averaged, raw = state["model"]["ema"]["networks"]["G"], state["model"]["networks"]["G"]
    assert same(load(folder / "latest_net_G.pth"), averaged) and same(load(folder / "latest_net_G_raw.pth"), raw)
    assert not (folder / "latest_net_D_raw.pth").exists()
    norms = [key for key in raw if key.endswith(("running_mean", "running_var"))]
    assert norms and all(torch.equal(averaged[key], raw[key]) for key in norms)  # batch-norm statistics copied
    assert not all(torch.equal(averaged[key], raw[key]) for key in raw if key.endswith("weight"))
    status, out, err = run_main("test.py", *common, "--gpu_ids", "-1", "--num_threads", "0", "--crop_size",
                                "32", "--results_dir", tmp_path / "results")
    assert status == 0, err[-3000:]
    assert "weights: EMA weights (decay 0.9) from latest_net_G.pth" in out
    assert len(list((tmp_path / "results" / "p2p" / "test_latest" / "images").glob("*_fake_B.png"))) == 2


def test_help_explains_the_flags(capsys):
    with pytest.raises(SystemExit):
        TrainOptions().parse(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "exponential moving average (EMA) of the generators' weights" in text
    assert "d = min(D, (1 + n) / (10 + n)) at update n" in text and "typical: 0.999" in text
    assert "0: off [a number >= 0 and < 1] (default: 0.0)" in text
    assert "--raw_weights use the generators' raw weights, not their average of --ema_decay" in text
