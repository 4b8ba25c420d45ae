"""One CycleGAN optimisation step on two fixed images; rank 0 saves gradients and weights.

Run alone (batch 2) or under `torchrun --nproc_per_node=2` (batch 1 per process, rank r taking image r):
    python tests/helpers/one_step.py OUT.pt [train.py flags]
Used by tests/test_distributed.py to check that DDP averages exactly what one process with the whole
batch computes.
"""
import contextlib
import io
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from models import create_model  # noqa: E402
from options.train_options import TrainOptions  # noqa: E402
from util.checkpoint import unwrap  # noqa: E402


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
    batch = {"A": images["A"][share], "B": images["B"][share], "A_paths": ["a"], "B_paths": ["b"]}
    model.set_input(batch)
    model.optimize_parameters()
    if opt.is_main:
        result = {}
        for name, net in model.networks().items():
            for key, param in unwrap(net).named_parameters():
                result[f"{name}.{key}"] = (param.detach().clone(), param.grad.detach().clone())
        for key, buffer in unwrap(model.netD_A).named_buffers():
            result[f"D_A.buffer.{key}"] = (buffer.clone(), None)
        torch.save(result, out)


if __name__ == "__main__":
    main()
