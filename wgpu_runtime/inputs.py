"""Seeded example inputs for a model's input specs (bench and conformance use them)."""
from __future__ import annotations

import numpy as np

from .dtypes import BOOL, FLOAT32, STRING, is_integer


def random_inputs(specs, batch: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """One array per spec: unknown dims (-1 / None) become ``batch`` for the first dim and 1
    elsewhere (a fixed first dim of 1 also takes ``batch``); floats in [-1, 1), integers in
    [0, 4), booleans half true, strings short lowercase words."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        dims = list(spec.shape or ())
        shape = tuple(int(d) if d is not None and d >= 0 else (batch if i == 0 else 1) for i, d in enumerate(dims))
        if dims and dims[0] == 1:
            shape = (batch,) + shape[1:]
        dtype = spec.dtype or FLOAT32
        if dtype == BOOL:
            feeds[spec.name] = rng.random(shape) < 0.5
        elif dtype == STRING:
            letters = rng.integers(ord("a"), ord("z") + 1, size=(*shape, 6))
            lengths = rng.integers(1, 7, size=shape)
            words = [bytes(row[:k].astype(np.uint8)).decode() for row, k in
                     zip(letters.reshape(-1, 6), lengths.reshape(-1))]
            feeds[spec.name] = np.array(words, dtype=str).reshape(shape)
        elif is_integer(dtype):
            feeds[spec.name] = rng.integers(0, 4, size=shape).astype(np.int32)
        else:
            feeds[spec.name] = rng.uniform(-1, 1, size=shape).astype(np.float32)
    return feeds
