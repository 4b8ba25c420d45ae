"""--amp, --channels_last and --compile train the same models correctly; the loss watch stops on NaN."""
import argparse

import pytest
import torch

from conftest import run_script, training_model

TINY = ["--ngf", "4", "--ndf", "4", "--netG", "resnet_6blocks", "--gpu_ids", "-1", "--display_id", "0",
        "--num_threads", "0", "--load_size", "36", "--crop_size", "32", "--seed", "0"]


def build_model(tmp_path, *flags):
    return training_model(tmp_path, *TINY, *flags)


def batch():
    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(2, 3, 32, 32, generator=generator) * 2 - 1 for _ in range(2)]
    return {"A": images[0], "B": images[1], "A_paths": ["a0", "a1"], "B_paths": ["b0", "b1"]}


def train_steps(model, steps=2):
    """Run `steps` iterations; return {network: number of parameters that changed}."""
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in model.networks().items()}
    for _ in range(steps):
        model.set_input(batch())
        model.optimize_parameters()
    return {name: sum(not torch.equal(old, new) for old, new in zip(before[name], net.parameters()))
            for name, net in model.networks().items()}


def parameter_counts(model):
    return {name: len(list(net.parameters())) for name, net in model.networks().items()}


@pytest.mark.parametrize("flags", [["--amp", "bf16"], ["--amp", "bf16", "--channels_last"],
                                   ["--amp", "bf16", "--gan_mode", "wgangp", "--model", "pix2pix",
                                    "--dataset_mode", "unaligned", "--netG", "unet_128"]])
def test_mixed_precision_trains_every_parameter_with_fp32_losses(tmp_path, flags):
    model = build_model(tmp_path, *flags)
    changed = train_steps(model)
    fp32 = build_model(tmp_path, *[flag for flag in flags if flag not in ("--amp", "bf16")])
    # The same parameters learn as in fp32: all of them, except a WGAN critic's last bias, whose
    # gradient is zero by construction (it cancels between real and fake).
    assert changed == train_steps(fp32)
    assert sum(parameter_counts(model).values()) - sum(changed.values()) == (1 if "wgangp" in flags else 0)
    assert all(getattr(model, "loss_" + name).dtype == torch.float32 for name in model.loss_names)
    assert all(p.dtype == torch.float32 for net in model.networks().values() for p in net.parameters())
    assert bool(model.losses_finite())
    # The fused Adam under --amp; PyTorch's default in fp32 on the CPU, whose results it keeps bit for bit.
    assert [o.defaults["fused"] for o in model.optimizers + fp32.optimizers] == [True] * 2 + [None] * 2


def test_bf16_stays_close_to_fp32(tmp_path):
    losses = {}
    for amp in ("none", "bf16"):
        model = build_model(tmp_path, "--amp", amp)
        train_steps(model, steps=3)
        losses[amp] = model.get_current_losses()
    for name, value in losses["none"].items():
        assert losses["bf16"][name] == pytest.approx(value, rel=0.1, abs=0.05), name


def test_channels_last_puts_networks_and_inputs_in_that_format(tmp_path):
    model = build_model(tmp_path, "--channels_last")
    conv = model.netG_A.model[1].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    model.set_input(batch())
    assert model.real_A.is_contiguous(memory_format=torch.channels_last)


def test_compile_keeps_every_gradient_and_clean_names(tmp_path):
    # WGAN-GP's penalty differentiates D twice, which compiled code cannot: it runs D eagerly.
    eager, compiled = (build_model(tmp_path, "--gan_mode", "wgangp", *flags) for flags in ([], ["--compile"]))
    torch.manual_seed(1)  # the same random interpolates for both
    changed = train_steps(compiled)
    # Frozen-D phases drop no gradients: every parameter learns, except each critic's last bias,
    # whose gradient is zero by construction (it cancels between real and fake).
    assert sum(parameter_counts(compiled).values()) - sum(changed.values()) == 2
    assert bool(compiled.losses_finite())
    torch.manual_seed(1)
    assert train_steps(eager) == changed
    for name, value in eager.get_current_losses().items():
        assert compiled.get_current_losses()[name] == pytest.approx(value, rel=1e-3, abs=1e-4), name
    probe = batch()["A"]
    with torch.no_grad():
        assert torch.allclose(compiled.netG_A(probe), eager.netG_A(probe), atol=1e-3)
    for name, net in compiled.networks().items():
        keys = list(net.state_dict())
        assert keys == list(eager.networks()[name].state_dict()) and not any("_orig_mod" in k for k in keys)


def test_non_finite_losses_stop_training_before_any_save(tmp_path):
    import train
    model = build_model(tmp_path)
    model.set_input(batch())
    model.optimize_parameters()
    opt = argparse.Namespace(checkpoints_dir=str(tmp_path), name="m", n_epochs=1, n_epochs_decay=0,
                             device=torch.device("cpu"), compile=False)
    trainer = train.Trainer(opt, None, model, None, train.train_state.Progress(epoch=3, total_iters=17))
    trainer.watch_losses()
    trainer.check_losses()  # all finite: nothing happens
    model.loss_cycle_A = torch.tensor(float("nan"))
    trainer.progress.total_iters = 18
    trainer.watch_losses()
    trainer.progress.total_iters = 19
    trainer.watch_losses()
    with pytest.raises(train.UserError, match=r"NaN or infinite at image 18 \(epoch 3\)"):
        trainer.save("latest")
    assert not list(tmp_path.glob("m/*.pth"))


def test_train_and_test_with_amp_and_channels_last(tmp_path, unaligned_root):
    common = ["--dataroot", unaligned_root, "--name", "fast", "--checkpoints_dir", tmp_path / "ck"]
    result = run_script("train.py", *common, *TINY, "--amp", "bf16", "--channels_last", "--n_epochs", "1",
                        "--n_epochs_decay", "0", "--ema_decay", "0.9", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "speed:" not in result.stderr  # --amp given, and too short a run for --compile: no hint
    for name in ("latest_net_G_A.pth", "latest_net_G_A_raw.pth"):  # the generator's average (EMA), its weights
        state = torch.load(tmp_path / "ck" / "fast" / name, weights_only=True)
        assert all(t.dtype == torch.float32 for t in state.values())
    result = run_script("test.py", *common, "--model", "cycle_gan", "--amp", "bf16", "--channels_last",
                        "--batch_size", "2", "--gpu_ids", "-1", "--crop_size", "32", "--results_dir",
                        tmp_path / "results", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "weights: EMA weights (decay 0.9) from latest_net_G_A.pth, latest_net_G_B.pth" in result.stdout
    assert "speed:" not in result.stdout  # both flags given: nothing left to suggest
    assert len(list((tmp_path / "results" / "fast" / "test_latest" / "images").glob("*_fake_B.png"))) == 3


def test_fp16_needs_cuda(tmp_path, unaligned_root):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run_script("train.py", "--dataroot", unaligned_root, "--checkpoints_dir", tmp_path, *TINY,
                        "--amp", "fp16", cwd=tmp_path)
    assert result.returncode == 2 and "--amp fp16 needs a CUDA GPU" in result.stderr
