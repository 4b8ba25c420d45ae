"""Weights files: the original tool's layout loads (stale InstanceNorm entries too), unsafe or mismatched
files are refused with a clear message, a set of files is saved as one commit and a failed write
(a full disk) leaves the old files and no temporary ones."""
import os
import pickle
import re
import subprocess
import sys

import pytest
import torch

from conftest import REPO_ROOT
from models.checkpoint import clean_state_dict, load_network, load_state_dict_file, missing_weights_message
from models.generators import define_G, infer_generator_flags
from util.atomic_files import write_files
from util.errors import UserError


def original_style_state_dict(net):
    """A state_dict as an old version of the original tool saved it: with InstanceNorm statistics."""
    state = dict(net.state_dict())
    for name, module in net.named_modules():
        if isinstance(module, torch.nn.InstanceNorm2d):
            state[f"{name}.running_mean"] = torch.zeros(module.num_features)
            state[f"{name}.running_var"] = torch.ones(module.num_features)
            state[f"{name}.num_batches_tracked"] = torch.tensor(7)
    return state


def test_original_checkpoint_with_stale_instance_norm_entries_loads_and_matches(tmp_path):
    torch.manual_seed(0)
    source = define_G(3, 3, 8, "resnet_9blocks", "instance")
    path = tmp_path / "latest_net_G.pth"
    torch.save(original_style_state_dict(source), path)
    assert any(key.endswith("running_mean") for key in torch.load(path))
    torch.manual_seed(1)
    target = define_G(3, 3, 8, "resnet_9blocks", "instance")
    load_network(target, str(path))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(source(x), target(x))


def test_wrapper_prefixes_are_stripped():
    net = define_G(3, 3, 4, "resnet_6blocks", "instance")
    wrapped = {f"module._orig_mod.{k}": v for k, v in net.state_dict().items()}
    assert set(clean_state_dict(net, wrapped)) == set(net.state_dict())


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"model.1.weight": RunsCode()}, handle)
    with pytest.raises(UserError, match="not a plain weights file"):
        load_state_dict_file(str(path))


def test_damaged_file_is_reported(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UserError, match="cannot read"):
        load_state_dict_file(str(path))


def test_mismatched_architecture_names_the_flags(tmp_path):
    path = tmp_path / "latest_net_G.pth"
    torch.save(define_G(3, 3, 8, "resnet_6blocks", "instance").state_dict(), path)
    with pytest.raises(UserError) as err:
        load_network(define_G(3, 3, 16, "resnet_6blocks", "instance"), str(path), "--netG resnet_6blocks --ngf 16")
    assert "--ngf 16" in str(err.value) and "model.1.weight" in str(err.value)


def test_a_failing_set_of_files_keeps_every_old_file_and_leaves_no_temporaries(tmp_path):
    first, second = tmp_path / "latest_net_G.pth", tmp_path / "latest_state.pth"
    write_files([(str(first), {"w": torch.ones(2)}), (str(second), b"old state")])
    with pytest.raises((AttributeError, pickle.PicklingError)):  # pickle refuses a local lambda
        write_files([(str(first), {"w": torch.zeros(2)}), (str(second), {"w": lambda: None})])  # cannot be pickled
    assert torch.equal(torch.load(first)["w"], torch.ones(2)) and second.read_bytes() == b"old state"
    assert sorted(os.listdir(tmp_path)) == ["latest_net_G.pth", "latest_state.pth"]


def test_saved_files_get_the_permissions_of_any_new_file(tmp_path):
    path = tmp_path / "latest_net_G.pth"
    write_files([(str(path), b"weights")])
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def write_under_file_size_limit(limit, files):
    """Run write_files(<files>, Python source) in a child process whose files may not grow beyond
    `limit` bytes, as on a full disk."""
    code = (f"import resource, sys, torch; resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
            "from util.atomic_files import write_files\n"
            "from util.errors import UserError\n"
            f"try: write_files({files})\n"
            "except UserError as err: sys.exit(str(err))\n")
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def test_a_full_disk_names_the_file_and_the_reason(tmp_path):
    small, large = str(tmp_path / "small.pth"), str(tmp_path / "large.pth")
    write_files([(small, b"previous"), (large, b"previous")])
    result = write_under_file_size_limit(100_000, f"[({small!r}, b'new'), ({large!r}, b'x' * 200_000)]")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert re.fullmatch(r"could not write .*large\.pth \(File too large\); free disk space, raise the quota or fix "
                        r"the folder's permissions \(the previous checkpoint is intact\)\n", result.stderr)
    assert sorted(os.listdir(tmp_path)) == ["large.pth", "small.pth"]  # no temporary file left
    assert open(small, "rb").read() == b"previous" and open(large, "rb").read() == b"previous"


def test_torch_save_errors_from_a_full_disk_keep_their_reason(tmp_path):
    # torch.save reports a failed write as a RuntimeError without the errno; the reason must survive.
    path = str(tmp_path / "weights.pth")
    result = write_under_file_size_limit(50_000, f"[({path!r}, {{'w': torch.zeros(100_000)}})]")
    assert "could not write" in result.stderr and "(File too large)" in result.stderr, result.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("net_g", ["resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256"])
@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
@pytest.mark.parametrize("dropout", [False, True])
def test_generator_flags_are_read_back_from_weights(net_g, norm, dropout):
    flags = infer_generator_flags(define_G(3, 3, 4, net_g, norm, dropout).state_dict())
    assert flags.startswith(f"--netG {net_g} --ngf 4 --norm {norm}")
    assert flags.endswith("(without --no_dropout)") == (dropout and net_g.startswith("resnet"))


def test_a_published_style_generator_is_read_as_instance_norm():
    state = original_style_state_dict(define_G(3, 3, 8, "resnet_9blocks", "instance"))
    assert infer_generator_flags(state) == "--netG resnet_9blocks --ngf 8 --norm instance"


def test_mismatch_message_says_which_flags_the_file_needs(tmp_path):
    path = tmp_path / "latest_net_G.pth"
    torch.save(define_G(3, 3, 8, "resnet_6blocks", "batch").state_dict(), path)
    with pytest.raises(UserError, match="it looks like --netG resnet_6blocks --ngf 8 --norm batch"):
        load_network(define_G(3, 3, 8, "resnet_9blocks", "instance"), str(path))


def test_a_missing_weights_file_is_explained_by_what_the_save_holds(tmp_path):
    for name in ("latest_net_G.pth", "latest_net_G_raw.pth", "latest_net_F.pth", "latest_net_D.pth", "5_net_G.pth"):
        (tmp_path / name).write_bytes(b"")
    path = str(tmp_path / "latest_net_G_A.pth")
    assert missing_weights_message(str(tmp_path), "latest", "G_A", path) == (
        f"no checkpoint {path}: save latest holds D, F, G, not G_A; test with the --model (and --model_suffix) the "
        "run was trained with")
    path = str(tmp_path / "7_net_G.pth")
    assert missing_weights_message(str(tmp_path), "7", "G", path) == (
        f"no checkpoint {path}; pick an existing --epoch/--load_iter (saved there: 5, latest)")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert missing_weights_message(str(empty), "latest", "G", "x") == (
        "no checkpoint x; pick an existing --epoch/--load_iter (nothing is saved there yet; train first)")
