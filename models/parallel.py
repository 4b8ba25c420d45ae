"""Networks under torchrun: batch norm over all ranks and DistributedDataParallel wrapping."""
import torch

from runtime.runtime import runtime_of

from .norms import to_cross_rank_batch_norm


def sync_batch_norm(net, opt):
    """Under torchrun, batch norm (--norm batch or syncbatch) computes its statistics over all ranks:
    PyTorch's SyncBatchNorm on GPUs, our CrossRankBatchNorm2d elsewhere (SyncBatchNorm is GPU-only)
    and for the penalties on input gradients (--gan_mode wgangp, --r1_gamma, sincut's --lambda_R1), which differentiate
    twice through the norm (SyncBatchNorm's backward cannot be: "derivative for
    batch_norm_backward_elemt is not implemented")."""
    runtime = runtime_of(opt)
    if not (runtime.distributed and opt.norm in ("batch", "syncbatch")):
        return net
    twice = getattr(opt, "gan_mode", None) == "wgangp" or max(getattr(opt, "r1_gamma", 0), getattr(opt, "lambda_R1", 0)) > 0
    if runtime.device.type == "cuda" and not twice:
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
    return to_cross_rank_batch_norm(net)


def data_parallel(net, opt):
    """Under torchrun, wrap `net` in DistributedDataParallel (gradients averaged over ranks)."""
    runtime = runtime_of(opt)
    if not runtime.distributed:
        return net
    device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(net, device_ids=device_ids)
