"""Where bfloat16 pays off: whether a device multiplies bfloat16 matrices in hardware; and float32 that is
float32 on a GPU.

The couplings lower their conditioners to bfloat16 in training steps only where this says so
(``training_precision: auto``). Everywhere else the flow's products are float32 in full
(:func:`full_float32`), also where SpeechBrain has turned TensorFloat-32 on.

Authors
 * speechbrain-fdnf developers
"""

import contextlib
import functools

import torch


@functools.lru_cache(maxsize=None)
def _native_bfloat16(device_type, index):
    if device_type == "cuda":
        with torch.cuda.device(index or 0):
            try:
                return torch.cuda.is_bf16_supported(including_emulation=False)
            except TypeError:  # a torch without the argument never counted emulation
                return torch.cuda.is_bf16_supported()
    if device_type == "cpu":  # bfloat16 dot products in hardware (AVX512-BF16 or AMX); private probes, so guarded
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)
    return False


def has_native_bfloat16(device):
    """Whether ``device`` multiplies bfloat16 matrices in hardware, where lowered conditioners pay off.

    True on CUDA GPUs with native bfloat16 (Ampere and later) and on CPUs with AVX512-BF16 or
    AMX; elsewhere bfloat16 is emulated and slower than float32.

    Example
    -------
    >>> isinstance(has_native_bfloat16("cpu"), bool)
    True
    """
    device = torch.device(device)
    return _native_bfloat16(device.type, device.index)


@contextlib.contextmanager
def full_float32():
    """Inside the block, float32 matrix products and convolutions on CUDA in full float32, not TensorFloat-32;
    the settings before are restored after it (on a CPU it changes nothing).

    SpeechBrain turns TensorFloat-32 on for every CUDA product when it is imported (``allow_tf32`` in
    ``speechbrain.utils.quirks``). Its 10-bit mantissa is the rounding that a flow's inverse cannot undo (a rounded
    conditioner input is a step function, :class:`~speechbrain_fdnf.lobes.couplings.SplitCoupling`): on an H200 the
    codes of a trained f-DNF moved by 5e-2 between the GPU and the CPU with it, by 3e-5 without. The flows run
    their transforms inside this block (``SequentialFlow``); bfloat16 autocast, where training lowers the
    conditioners on purpose, is not affected by it.

    Example
    -------
    >>> torch.backends.cuda.matmul.allow_tf32 = True  # as SpeechBrain leaves it
    >>> with full_float32():
    ...     torch.backends.cuda.matmul.allow_tf32
    False
    >>> torch.backends.cuda.matmul.allow_tf32
    True
    """
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
