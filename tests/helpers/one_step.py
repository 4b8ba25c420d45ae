"""One optimisation step (CycleGAN, or the model of --model) on two fixed images; each process saves its
gradients, weights (and the generators' averages with --ema_decay) and WGAN-GP penalties.

Run alone (batch 2) or under `torchrun --nproc_per_node=2` (batch 1 per process, rank r taking image r):
    python tests/helpers/one_step.py OUT.pt [train.py flags]
Rank 0 writes OUT.pt, rank r > 0 writes OUT.pt.rank<r>. Used by tests/test_distributed.py to check
that DDP averages exactly what one process with the whole batch computes. The penalty's random
interpolation weights are drawn for the whole batch on every process, each taking its share, so
that they do not depend on how the batch is split.
"""
import contextlib
import io
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import models.cycle_gan_model  # noqa: E402
from models import create_model  # noqa: E402
from models.checkpoint import unwrap  # noqa: E402
from models.losses import gradient_penalty  # noqa: E402
from options.train_options import TrainOptions  # noqa: E402


def penalty_with_shared_weights(share, penalties):
    """gradient_penalty with the interpolation weights of the whole batch cut to `share`; appends
    every penalty's value to `penalties`."""
    generator = torch.Generator().manual_seed(2)

    def penalty(netD, real, fake, **kwargs):
        value = gradient_penalty(netD, real, fake, alpha=torch.rand(2, generator=generator)[share], **kwargs)
        penalties.append(value.detach().clone())
        return value
    return penalty


def main():
    out, flags = sys.argv[1], sys.argv[2:]
    folder = tempfile.mkdtemp()
    with contextlib.redirect_stdout(io.StringIO()):
        opt = TrainOptions().parse(["--dataroot", folder, "--checkpoints_dir", folder, "--name", "step",
                                    "--gpu_ids", "-1", "--pool_size", "0", "--seed", "0", *flags])
    model = create_model(opt)
    model.setup()
    generator = torch.Generator().manual_seed(1)
    images = {domain: torch.rand(2, 3, 32, 32, generator=generator) * 2 - 1 for domain in "AB"}
    share = slice(opt.rank, opt.rank + 1) if opt.world_size > 1 else slice(0, 2)
    penalties = []
    models.cycle_gan_model.gradient_penalty = penalty_with_shared_weights(share, penalties)
    batch = {"A": images["A"][share], "B": images["B"][share], "A_paths": ["a"], "B_paths": ["b"]}
    model.set_input(batch)
    model.optimize_parameters()
    result = {"penalties": penalties, "parameters": {}, "averages": {}}
    for name, net in model.networks().items():
        for key, param in unwrap(net).named_parameters():
            result["parameters"][f"{name}.{key}"] = (param.detach().clone(), param.grad.detach().clone())
    discriminator = "D_A" if "D_A" in model.model_names else "D"  # CycleGAN's first, or the only one
    for key, buffer in unwrap(getattr(model, "net" + discriminator)).named_buffers():
        result["parameters"][f"{discriminator}.buffer.{key}"] = (buffer.clone(), None)
    for name, net in model.averaged_networks().items():
        result["averages"].update({f"{name}.{key}": value.clone() for key, value in net.state_dict().items()})
    torch.save(result, out if opt.is_main else f"{out}.rank{opt.rank}")
    if opt.world_size > 1:
        # End at once: a gloo thread that drops a finished collective's tensors during Python's
        # shutdown aborts the process ("terminate called without an active exception").
        os._exit(0)


if __name__ == "__main__":
    main()
