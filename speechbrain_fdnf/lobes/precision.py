"""Where bfloat16 pays off: whether a device multiplies bfloat16 matrices in hardware.

The couplings lower their conditioners to bfloat16 in training steps only where this says so
(``training_precision: auto``).

Authors
 * speechbrain-fdnf developers
"""

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
