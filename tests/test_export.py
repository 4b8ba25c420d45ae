"""scripts/export.py run as a user runs it: tiny trained CycleGANs (plain, and with --affine_output) exported to
TorchScript and ONNX."""
import re
import shutil

import numpy as np
import pytest
import torch

from conftest import run_script, write_images
from models.generators import define_G

onnxruntime = pytest.importorskip("onnxruntime")

TINY = ["--ngf", "8", "--ndf", "8", "--netG", "resnet_6blocks", "--n_epochs", "1", "--n_epochs_decay", "0",
        "--crop_size", "32", "--load_size", "36", "--gpu_ids", "-1", "--display_id", "0", "--num_threads", "0",
        "--seed", "0"]
DIFFERENCE = re.compile(r"^(torchscript|onnx): wrote .*; max abs difference from PyTorch (\S+)", re.MULTILINE)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A folder with checkpoints/tiny (one epoch of a tiny CycleGAN) and sample images (40x36)."""
    root = tmp_path_factory.mktemp("export")
    for folder, seed in (("trainA", 1), ("trainB", 2), ("testA", 3)):
        write_images(root / "data" / folder, 3, seed=seed)
    result = run_script("train.py", "--dataroot", root / "data", "--name", "tiny", "--checkpoints_dir",
                        root / "checkpoints", *TINY, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def export(root, *flags):
    return run_script("scripts/export.py", "--name", "tiny", "--checkpoints_dir", root / "checkpoints",
                      "--out", root / "out", *flags, cwd=root)


def differences(stdout):
    return {fmt: float(value) for fmt, value in DIFFERENCE.findall(stdout)}


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_exports_match_pytorch_and_onnx_takes_other_sizes(trained):
    result = export(trained, "--formats", "torchscript,onnx", "--sample_images", trained / "data" / "testA")
    assert result.returncode == 0, result.stderr[-3000:]
    found = differences(result.stdout)
    assert set(found) == {"torchscript", "onnx"} and all(d < 1e-4 for d in found.values()), result.stdout
    assert "(inputs 36x40, 28x31)" in result.stdout  # the sample image at two sizes
    scripted = torch.jit.load(trained / "out" / "tiny_G_A.pt")
    session = onnxruntime.InferenceSession(str(trained / "out" / "tiny_G_A.onnx"), providers=["CPUExecutionProvider"])
    # Neither size was traced and neither side is a multiple of 4: the ONNX axes are dynamic and it pads.
    image = torch.rand(2, 3, 45, 54) * 2 - 1
    onnx_out = session.run(None, {"image": image.numpy()})[0]
    assert onnx_out.shape == (2, 3, 45, 54)
    with torch.no_grad():
        np.testing.assert_allclose(onnx_out, scripted(image).numpy(), atol=1e-4)


def test_difference_above_tolerance_fails_loudly(trained):
    result = export(trained, "--formats", "onnx", "--tolerance", "0")
    if differences(result.stdout).get("onnx") == 0.0:
        pytest.skip("ONNX matched PyTorch exactly on this machine; --tolerance 0 cannot fail")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("error: export check failed: onnx differs by") and "--tolerance 0" in result.stderr


def test_missing_checkpoint_is_one_line_error(trained):
    result = export(trained, "--epoch", "7")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"error: no checkpoint {trained / 'checkpoints' / 'tiny' / '7_net_G_A.pth'}; "
                                      "pick an existing --epoch/--net (saved there: 1, latest)")


@pytest.fixture(scope="module")
def affine_trained(tmp_path_factory):
    """A folder with checkpoints/affine: a few iterations of a tiny CycleGAN with --affine_output."""
    root = tmp_path_factory.mktemp("export_affine")
    for folder, seed in (("trainA", 1), ("trainB", 2)):
        write_images(root / "data" / folder, 2, seed=seed)
    result = run_script("train.py", "--dataroot", root / "data", "--name", "affine", "--checkpoints_dir",
                        root / "checkpoints", *TINY, "--affine_output", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
@pytest.mark.parametrize("flags, formats", [
    ([], ["torchscript", "onnx"]),
    (["--netG", "resnet_6blocks", "--ngf", "8", "--no_dropout", "--affine_output"], ["torchscript"]),
], ids=["from train_opt.txt", "given"])
def test_an_affine_output_generator_exports_with_its_outputs(affine_trained, tmp_path, flags, formats):
    # The exports compute what the trained generator computes in PyTorch (ONNX, the slow one, once).
    folder = affine_trained / "checkpoints" / "affine"
    if flags:  # the flags given on the command line alone: no train_opt.txt to read them from
        shutil.copytree(folder, tmp_path / "checkpoints" / "affine", ignore=shutil.ignore_patterns("train_opt.txt"))
        folder = tmp_path / "checkpoints" / "affine"
    result = run_script("scripts/export.py", "--name", "affine", "--checkpoints_dir", folder.parent, "--out",
                        tmp_path / "out", "--formats", ",".join(formats), *flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    found = differences(result.stdout)
    assert set(found) == set(formats) and all(d < 1e-4 for d in found.values()), result.stdout
    generator = define_G(3, 3, 8, "resnet_6blocks", "instance", False, affine_output=True)
    generator.load_state_dict(torch.load(folder / "latest_net_G_A.pth", weights_only=True))
    image = torch.rand(2, 3, 36, 44, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        expected = generator.eval()(image)
        torch.testing.assert_close(torch.jit.load(tmp_path / "out" / "affine_G_A.pt")(image), expected,
                                   atol=1e-5, rtol=0)
    if "onnx" in formats:
        session = onnxruntime.InferenceSession(str(tmp_path / "out" / "affine_G_A.onnx"),
                                               providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(session.run(None, {"image": image.numpy()})[0], expected.numpy(), atol=1e-4)


def test_an_affine_output_generator_without_its_flag_is_one_line_error(affine_trained, tmp_path):
    shutil.copytree(affine_trained / "checkpoints" / "affine", tmp_path / "affine",
                    ignore=shutil.ignore_patterns("train_opt.txt"))
    result = run_script("scripts/export.py", "--name", "affine", "--checkpoints_dir", tmp_path, "--out",
                        tmp_path / "out", "--formats", "torchscript", "--netG", "resnet_6blocks", "--ngf", "8",
                        "--no_dropout", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith(
        "it looks like --netG resnet_6blocks --ngf 8 --norm instance --affine_output: pass these flags")
