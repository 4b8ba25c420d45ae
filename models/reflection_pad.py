"""Reflection padding that stays in its input's dtype under CPU autocast, with a fast backward pass there.

PyTorch's CPU autocast runs reflection padding in fp32. Under `--amp bf16` each ReflectionPad2d of a
generator therefore turned its bf16 input into fp32 and the convolution after it turned the result
back into bf16, and the backward pass converted both gradients again: four passes over the padded
feature map per layer that compute nothing. Padding only copies values, so in bf16 it gives exactly
what fp32 padding followed by the convolution's cast gives. Its gradient adds the gradients of the
reflected border pixels to those they copy; PyTorch's CPU kernel for that visits one value at a time
(in bf16 nearly twice as slow as in fp32, and 10 to 40 times slower than the forward pass), so under
autocast the gradient is folded with a few whole-tensor additions instead: the same sums, rounded to
bf16 after each addition in another order (bf16's own noise). Without CPU autocast (fp32,
TorchScript, CUDA, whose autocast already pads in the input's dtype) the padding and its gradient
are PyTorch's own, bit for bit.

Neither way keeps the unpadded input for the backward pass, which needs only its shape; PyTorch's own
padding keeps it. In a generator the input is the feature map a ReLU just produced, and the padded
map the conv saves is the only copy that needs to stay (see blocks.padded_relu): so in training the
fp32 padding runs PyTorch's backward kernel from a saved shape (_ReflectPadKeepingShape).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


def reflect_pad(x, padding: list[int]):
    """F.pad(x, padding, "reflect") for padding = [left, right, top, bottom], computed in x's own dtype
    even inside a CPU autocast region (then with the folding backward pass, _ReflectPadUnderAutocast)."""
    if not torch.jit.is_scripting():  # (TorchScript, which has no autocast, compiles only the other branch)
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return _ReflectPadUnderAutocast.apply(x, padding)
        if x.requires_grad and x.dim() == 4 and is_dense(x) and not torch.compiler.is_compiling():
            return _ReflectPadKeepingShape.apply(x, padding)  # (compiled graphs choose what to keep themselves)
    return F.pad(x, padding, "reflect")


def is_dense(x):
    """Whether x's values fill its memory without gaps in a standard layout (contiguous or channels-last)."""
    return x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)


class _ReflectPadKeepingShape(torch.autograd.Function):
    """PyTorch's reflection padding and its gradient, bit for bit, keeping only the input's shape and
    strides for the backward pass (PyTorch's own autograd formula keeps the input itself)."""

    @staticmethod
    def forward(ctx, x, padding):
        ctx.padding, ctx.size, ctx.stride = padding, x.shape, x.stride()
        return F.pad(x, padding, "reflect")

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        # The gradient in the input's layout, as PyTorch allocates it (the kernel zeroes it first and
        # reads nothing else of the tensor passed as the input: only its shape).
        grad_input = torch.empty_strided(ctx.size, ctx.stride, dtype=grad.dtype, device=grad.device)
        torch.ops.aten.reflection_pad2d_backward.grad_input(grad, grad_input, ctx.padding, grad_input=grad_input)
        return grad_input, None


class _ReflectPadUnderAutocast(torch.autograd.Function):
    """Reflection padding whose backward pass folds the gradient with whole-tensor additions."""

    @staticmethod
    def forward(ctx, x, padding):
        ctx.padding = padding
        return F.pad(x, padding, "reflect")

    @staticmethod
    def backward(ctx, grad):
        left, right, top, bottom = ctx.padding
        # Rows first, each row band folded along the width on its own: one copy of the inner part only.
        return fold_reflected(grad, top, bottom, -2, lambda rows: fold_reflected(rows, left, right, -1)), None


def fold_reflected(grad, before, after, dim, inner_fold=torch.clone):
    """The gradient of reflection padding by `before` and `after` values along `dim`: the inner part of
    `grad`, plus each padded value's gradient added to the value it mirrors. inner_fold: what each part
    goes through first (the fold along the other dimension; a copy at least, as the inner part is
    added to). Differentiable (its gradient is the padding again), so a second derivative passes through it."""
    size = grad.shape[dim] - before - after
    inner = inner_fold(grad.narrow(dim, before, size))
    if before:
        inner.narrow(dim, 1, before).add_(inner_fold(grad.narrow(dim, 0, before)).flip(dim))
    if after:
        inner.narrow(dim, size - 1 - after, after).add_(inner_fold(grad.narrow(dim, before + size, after)).flip(dim))
    return inner


class ReflectionPad2d(nn.ReflectionPad2d):
    """nn.ReflectionPad2d, printed and built alike (it holds no parameters), that pads in its input's
    dtype under CPU autocast (reflect_pad)."""

    def forward(self, x):
        return reflect_pad(x, list(self.padding))
