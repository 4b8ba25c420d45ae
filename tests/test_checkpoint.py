"""Weights files: the original tool's layout loads (stale InstanceNorm entries too), saves are atomic,
unsafe or mismatched files are refused with a clear message."""
import os
import pickle

import pytest
import torch

from models.generators import define_G, infer_generator_flags
from util.checkpoint import atomic_save, clean_state_dict, load_network, load_state_dict_file
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


def test_atomic_save_keeps_the_old_file_when_a_save_fails(tmp_path):
    path = tmp_path / "latest_net_G.pth"
    atomic_save({"w": torch.ones(2)}, str(path))
    with pytest.raises(Exception):
        atomic_save({"w": lambda: None}, str(path))  # cannot be pickled
    assert torch.equal(torch.load(path)["w"], torch.ones(2))
    assert os.listdir(tmp_path) == ["latest_net_G.pth"]


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
