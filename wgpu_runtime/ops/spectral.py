"""Complex numbers and FFTs, on the host: Complex, ComplexAbs, Real, Imag; FFT, IFFT, RFFT, IRFFT.

complex64 lives on the host only; no kernel takes it. Ops producing complex values have no
registry cases (the shared comparison is for real dtypes): tests/test_dynamic_models.py checks
them against TensorFlow.
"""
from __future__ import annotations

import numpy as np

from .common import F, host_value, normal
from .registry import Case, register
from .shapes import broadcast


# ------------------------------------------------------------------------------- complex numbers
C64 = "complex64"
register("Complex", reference=lambda attrs, re, im: (re + 1j * im).astype(np.complex64),
         shape=lambda attrs, ins: [(broadcast(ins[0].shape, ins[1].shape), C64)], dtypes=(F,))
register("ComplexAbs", reference=lambda attrs, z: np.abs(z).astype(np.float32),
         shape=lambda attrs, ins: [(ins[0].shape, F)], host_inputs=(0,), dtypes=(C64,),
         cases=[Case([(np.arange(6).reshape(2, 3) - 2.5 + 1j * np.arange(6).reshape(2, 3) / 3).astype(np.complex64)])])
register("Real", reference=lambda attrs, z: np.real(z).astype(np.float32),
         shape=lambda attrs, ins: [(ins[0].shape, F)], host_inputs=(0,), dtypes=(C64,),
         cases=[Case([np.array([1 - 2j, 3.5 + 0j, -1j], np.complex64)])])
register("Imag", reference=lambda attrs, z: np.imag(z).astype(np.float32),
         shape=lambda attrs, ins: [(ins[0].shape, F)], host_inputs=(0,), dtypes=(C64,),
         cases=[Case([np.array([1 - 2j, 3.5 + 0j, -1j], np.complex64)])])


# ----------------------------------------------------------------------------------------- FFTs
def _fft_len(t):
    return int(np.reshape(t, -1)[0])


register("FFT", reference=lambda attrs, z: np.fft.fft(z).astype(np.complex64),
         shape=lambda attrs, ins: [(ins[0].shape, C64)], host_inputs=(0,), dtypes=(C64,))
register("IFFT", reference=lambda attrs, z: np.fft.ifft(z).astype(np.complex64),
         shape=lambda attrs, ins: [(ins[0].shape, C64)], host_inputs=(0,), dtypes=(C64,))
register("RFFT", reference=lambda attrs, x, n: np.fft.rfft(x.astype(np.float64), _fft_len(n)).astype(np.complex64),
         shape=lambda attrs, ins: [(ins[0].shape[:-1] + (_fft_len(host_value(ins[1], "fft_length")) // 2 + 1,), C64)],
         host_inputs=(1,), dtypes=(F,))
register("IRFFT", reference=lambda attrs, z, n: np.fft.irfft(z, _fft_len(n)).astype(np.float32),
         shape=lambda attrs, ins: [(ins[0].shape[:-1] + (_fft_len(host_value(ins[1], "fft_length")),), F)],
         host_inputs=(0, 1), dtypes=(C64,),
         tol=(1e-6, "an FFT in float64 (numpy) vs float32 (TF): sums of n terms"),
         cases=[Case([np.fft.rfft(normal((2, 8), 15)).astype(np.complex64), np.array([8], np.int32)])])
