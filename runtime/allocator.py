"""Keeping freed memory in the C heap for the next training step (glibc's malloc on Linux).

glibc serves an allocation above its mmap threshold with fresh pages from the kernel and gives them back
when it is freed. The threshold follows the sizes freed, but only up to 32 MiB on 64-bit Linux, so every
CPU tensor beyond that (CUT's 128-channel feature maps at 256 px and their gradients, CycleGAN's at
--batch_size 2 or 384 px and up) is mapped anew at every step, and the kernel zeroes each of its 4 KiB
pages at first touch. CUT's fp32 step at 256 px made 580,000 such page faults: 0.87 of its 6.9 s on a
2-core Intel Xeon with AMX-BF16. With a threshold of 2 GiB and no trimming of the heap's top, freed
buffers are reused: on that machine CUT through train.py took 6.26 instead of 6.96 s per iteration, with
a peak of 3.13 instead of 2.93 GiB; CycleGAN at batch 1 has no such buffers (9.27 against 9.40 s, 3.54-3.58
against 3.51 GiB), and at batch 2 a step took 1% less.

The process then keeps its peak heap until it exits: what a training process reaches every step anyway.
A phase whose buffers differ from a step's would allocate beside the kept ones instead, so train.py hands
the free pages back around each evaluation (`return_free_memory`): without that, fp32 training with
--eval_freq 1 peaked at 4.49 GiB, with it at 3.49 GiB (3.77 before either change).
"""
import ctypes
import platform

# mallopt's parameter numbers (glibc's malloc.h) and the largest value its C int takes.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
KEEP_BELOW_BYTES = 2 ** 31 - 1


def keep_freed_memory_for_reuse():
    """Have glibc's malloc keep freed blocks below 2 GiB for reuse instead of returning them to the
    kernel; whether it was applied (False outside Linux with glibc, or where glibc refuses the setting)."""
    if not on_glibc():
        return False
    libc = ctypes.CDLL(None)  # the C library this process already runs on
    # The mmap threshold first: setting the trim threshold alone would also stop the mmap threshold from
    # growing, and every allocation above 128 KiB would then be mapped anew.
    return bool(libc.mallopt(M_MMAP_THRESHOLD, KEEP_BELOW_BYTES)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP_BELOW_BYTES))


def return_free_memory():
    """Hand the heap's free pages back to the kernel (glibc's malloc_trim); nothing elsewhere."""
    if on_glibc():
        ctypes.CDLL(None).malloc_trim(0)


def on_glibc():
    """Whether this process runs on Linux's GNU C library, whose malloc these settings are for."""
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
