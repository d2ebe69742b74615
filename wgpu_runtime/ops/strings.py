"""String ops (host: strings never live on the GPU): StringSplit, StringNGrams,
StaticRegexReplace, StringToHashBucketFast. Strings are numpy object arrays of str (bytes where
not UTF-8), as the weight decoder gives them.

StringToHashBucketFast is TensorFlow's ``Fingerprint64(s) % num_buckets``, Fingerprint64 being
farmhash's ``Hash64`` (the farmhashna variant) -- written here from the algorithm, and checked
against TensorFlow by the op cases. StaticRegexReplace uses Python's ``re`` for RE2 patterns: the
common syntax agrees (classes, anchors, groups, ``\\1`` in the rewrite); RE2-only syntax is
rejected by ``re`` with an error naming the pattern.
"""
from __future__ import annotations

import re

import numpy as np

from .registry import Case, register

S, I = "string", "int32"
_M = (1 << 64) - 1
_K0, _K1, _K2 = 0xC3A5C85C97CB3127, 0xB492B66FBE98F273, 0x9AE16A3B2F90404F


def _b(x) -> bytes:
    return x if isinstance(x, bytes) else str(x).encode("utf-8")


def _s(b: bytes):
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b


def _strings(a) -> np.ndarray:
    out = np.empty(np.shape(a), dtype=object)
    out.reshape(-1)[:] = [x for x in np.reshape(np.asarray(a, dtype=object), -1)]
    return out


# ------------------------------------------------------------------------- Fingerprint64
def _f64(s: bytes, i: int) -> int:
    return int.from_bytes(s[i:i + 8], "little")


def _f32(s: bytes, i: int) -> int:
    return int.from_bytes(s[i:i + 4], "little")


def _rot(v: int, r: int) -> int:
    return v if r == 0 else ((v >> r) | (v << (64 - r))) & _M


def _mix(v: int) -> int:
    return v ^ (v >> 47)


def _len16(u: int, v: int, mul: int) -> int:
    a = ((u ^ v) * mul) & _M
    a ^= a >> 47
    b = ((v ^ a) * mul) & _M
    b ^= b >> 47
    return (b * mul) & _M


def _len0to16(s: bytes) -> int:
    n = len(s)
    if n >= 8:
        mul = (_K2 + n * 2) & _M
        a = (_f64(s, 0) + _K2) & _M
        b = _f64(s, n - 8)
        c = (_rot(b, 37) * mul + a) & _M
        d = ((_rot(a, 25) + b) * mul) & _M
        return _len16(c, d, mul)
    if n >= 4:
        mul = (_K2 + n * 2) & _M
        return _len16(((_f32(s, 0) << 3) + n) & _M, _f32(s, n - 4), mul)
    if n > 0:
        y = s[0] + (s[n >> 1] << 8)
        z = n + (s[n - 1] << 2)
        return (_mix(((y * _K2) ^ (z * _K0)) & _M) * _K2) & _M
    return _K2


def _len17to32(s: bytes) -> int:
    n = len(s)
    mul = (_K2 + n * 2) & _M
    a = (_f64(s, 0) * _K1) & _M
    b = _f64(s, 8)
    c = (_f64(s, n - 8) * mul) & _M
    d = (_f64(s, n - 16) * _K2) & _M
    return _len16((_rot((a + b) & _M, 43) + _rot(c, 30) + d) & _M, (a + _rot((b + _K2) & _M, 18) + c) & _M, mul)


def _len33to64(s: bytes) -> int:
    n = len(s)
    mul = (_K2 + n * 2) & _M
    a = (_f64(s, 0) * _K2) & _M
    b = _f64(s, 8)
    c = (_f64(s, n - 8) * mul) & _M
    d = (_f64(s, n - 16) * _K2) & _M
    y = (_rot((a + b) & _M, 43) + _rot(c, 30) + d) & _M
    z = _len16(y, (a + _rot((b + _K2) & _M, 18) + c) & _M, mul)
    e = (_f64(s, 16) * mul) & _M
    f = _f64(s, 24)
    g = ((y + _f64(s, n - 32)) * mul) & _M
    h = ((z + _f64(s, n - 24)) * mul) & _M
    return _len16((_rot((e + f) & _M, 43) + _rot(g, 30) + h) & _M, (e + _rot((f + a) & _M, 18) + g) & _M, mul)


def _weak(s: bytes, i: int, a: int, b: int) -> tuple[int, int]:
    w, x, y, z = _f64(s, i), _f64(s, i + 8), _f64(s, i + 16), _f64(s, i + 24)
    a = (a + w) & _M
    b = _rot((b + a + z) & _M, 21)
    c = a
    a = (a + x + y) & _M
    b = (b + _rot(a, 44)) & _M
    return (a + z) & _M, (b + c) & _M


def fingerprint64(s: bytes) -> int:
    """farmhash Fingerprint64 (TensorFlow's Fingerprint64) of a byte string."""
    n = len(s)
    if n <= 16:
        return _len0to16(s)
    if n <= 32:
        return _len17to32(s)
    if n <= 64:
        return _len33to64(s)
    seed = 81
    x = seed
    y = (seed * _K1 + 113) & _M
    z = (_mix((y * _K2 + 113) & _M) * _K2) & _M
    v, w = (0, 0), (0, 0)
    x = (x * _K2 + _f64(s, 0)) & _M
    end = ((n - 1) >> 6) * 64
    last64 = end + ((n - 1) & 63) - 63
    off = 0
    while True:
        x = (_rot((x + y + v[0] + _f64(s, off + 8)) & _M, 37) * _K1) & _M
        y = (_rot((y + v[1] + _f64(s, off + 48)) & _M, 42) * _K1) & _M
        x ^= w[1]
        y = (y + v[0] + _f64(s, off + 40)) & _M
        z = (_rot((z + w[0]) & _M, 33) * _K1) & _M
        v = _weak(s, off, (v[1] * _K1) & _M, (x + w[0]) & _M)
        w = _weak(s, off + 32, (z + w[1]) & _M, (y + _f64(s, off + 16)) & _M)
        z, x = x, z
        off += 64
        if off == end:
            break
    mul = (_K1 + ((z & 0xFF) << 1)) & _M
    off = last64
    w = ((w[0] + ((n - 1) & 63)) & _M, w[1])
    v = ((v[0] + w[0]) & _M, v[1])
    w = ((w[0] + v[0]) & _M, w[1])
    x = (_rot((x + y + v[0] + _f64(s, off + 8)) & _M, 37) * mul) & _M
    y = (_rot((y + v[1] + _f64(s, off + 48)) & _M, 42) * mul) & _M
    x ^= (w[1] * 9) & _M
    y = (y + v[0] * 9 + _f64(s, off + 40)) & _M
    z = (_rot((z + w[0]) & _M, 33) * mul) & _M
    v = _weak(s, off, (v[1] * mul) & _M, (x + w[0]) & _M)
    w = _weak(s, off + 32, (z + w[1]) & _M, (y + _f64(s, off + 16)) & _M)
    z, x = x, z
    return _len16((_len16(v[0], w[0], mul) + _mix(y) * _K0 + z) & _M, (_len16(v[1], w[1], mul) + x) & _M, mul)


def _hash_bucket(attrs, x):
    n = int(attrs.get("num_buckets") or 1)
    flat = [fingerprint64(_b(v)) % n for v in np.reshape(np.asarray(x, dtype=object), -1)]
    return np.array(flat, np.int64).reshape(np.shape(x)).astype(np.int32)


def _words(n=None):
    base = ["", "a", "tf", "abc", "graph", "runtime!", "0123456789abcdef", "seventeen chars..",
            "a string of exactly thirty-two b", "x" * 33, "long " * 13, "y" * 64, "unicode: äöü €", "z" * 200]
    return _strings(np.array(base if n is None else base[:n], dtype=object))


register("StringToHashBucketFast", reference=_hash_bucket,
         shape=lambda attrs, ins: [(ins[0].shape, I)], dtypes=(S,),
         cases=[Case([_words()], attrs={"num_buckets": 1000}, note="lengths 0..200: every farmhash branch"),
                Case([_words(4).reshape(2, 2)], attrs={"num_buckets": 3})])


# ----------------------------------------------------------------------------- StringSplit
def _string_split(attrs, x, delimiter):
    skip = True if attrs.get("skip_empty") is None else bool(attrs.get("skip_empty"))
    delim = _b(np.reshape(np.asarray(delimiter, dtype=object), -1)[0])
    indices, values, width = [], [], 0
    for row, s in enumerate(np.reshape(np.asarray(x, dtype=object), -1)):
        s = _b(s)
        if not delim:
            tokens = [s[k:k + 1] for k in range(len(s))]
        else:
            tokens = re.split(b"[" + re.escape(delim) + b"]", s)
            if skip:
                tokens = [t for t in tokens if t]
        for k, t in enumerate(tokens):
            indices.append((row, k))
            values.append(_s(t))
        width = max(width, len(tokens))
    n = int(np.size(x))
    return (np.array(indices, np.int32).reshape(-1, 2), _strings(np.array(values, dtype=object)),
            np.array([n, width], np.int32))


register("StringSplit", reference=_string_split,
         shape=lambda attrs, ins: [((-1, 2), I), ((-1,), S), ((2,), I)], dtypes=(S,),
         cases=[Case([_strings(np.array(["a b  c", "", "hello world", "x,y z"], dtype=object)),
                      _strings(np.array(" ,", dtype=object))], note="any delimiter character, empties skipped"),
                Case([_strings(np.array(["a  b", " c"], dtype=object)), _strings(np.array(" ", dtype=object))],
                     attrs={"skip_empty": False}, note="empties kept"),
                Case([_strings(np.array(["abc", "de"], dtype=object)), _strings(np.array("", dtype=object))],
                     note="empty delimiter: characters")])


# ----------------------------------------------------------------------------- StringNGrams
def _ngrams(attrs, data, splits):
    sep = _b(attrs.get("separator") if attrs.get("separator") is not None else " ")
    widths = [int(w) for w in attrs.get("ngram_widths") or []]
    lpad, rpad = _b(attrs.get("left_pad") or ""), _b(attrs.get("right_pad") or "")
    pad_width = int(attrs.get("pad_width") if attrs.get("pad_width") is not None else -1)
    preserve = bool(attrs.get("preserve_short_sequences"))
    data = [_b(v) for v in np.reshape(np.asarray(data, dtype=object), -1)]
    splits = [int(v) for v in np.reshape(splits, -1)]

    def pad_of(w):
        return min(w - 1 if pad_width < 0 else pad_width, w - 1)

    def make(tokens, count, w):
        p = pad_of(w) if w <= len(tokens) + 2 * max(pad_width, 0) or pad_width < 0 else pad_width
        out = []
        for k in range(count):
            left = max(0, p - k)
            right = max(0, p - (count - (k + 1)))
            num = w - (left + right)
            start = 0 if left > 0 else k - p
            out.append(sep.join([lpad] * left + tokens[start:start + num] + [rpad] * right))
        return out

    grams, out_splits = [], [0]
    for r in range(len(splits) - 1):
        tokens = data[splits[r]:splits[r + 1]]
        row = []
        for w in widths:
            row += make(tokens, max(0, len(tokens) + 2 * pad_of(w) - w + 1), w)
        if preserve and not row and tokens:
            w = len(tokens) + 2 * max(pad_width, 0)
            p = max(pad_width, 0)
            row = [sep.join([lpad] * p + tokens + [rpad] * p)]
        grams += row
        out_splits.append(len(grams))
    return _strings(np.array([_s(g) for g in grams], dtype=object)), np.array(out_splits, np.int32)


register("StringNGrams", reference=_ngrams,
         shape=lambda attrs, ins: [((-1,), S), ((ins[1].size,), I)], dtypes=(S,),
         cases=[Case([_strings(np.array(list("abcdefg"), dtype=object)), np.array([0, 3, 3, 7], np.int64)],
                     attrs={"separator": " ", "ngram_widths": [2, 3], "left_pad": "<", "right_pad": ">",
                            "pad_width": -1, "preserve_short_sequences": False}, note="padded to width - 1"),
                Case([_strings(np.array(list("abcde"), dtype=object)), np.array([0, 1, 5], np.int64)],
                     attrs={"separator": "|", "ngram_widths": [3], "left_pad": "", "right_pad": "",
                            "pad_width": 0, "preserve_short_sequences": True}, note="short sequences kept")])


# ----------------------------------------------------------------------- StaticRegexReplace
def _regex_replace(attrs, x):
    pattern = _b(attrs.get("pattern") or "")
    rewrite = _b(attrs.get("rewrite") or "")
    count = 0 if attrs.get("replace_global", True) else 1
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise ValueError(f"regular expression {pattern!r}: {e}") from None
    out = [_s(rx.sub(rewrite, _b(v), count=count)) for v in np.reshape(np.asarray(x, dtype=object), -1)]
    return _strings(np.array(out, dtype=object).reshape(np.shape(x)))


register("StaticRegexReplace", reference=_regex_replace,
         shape=lambda attrs, ins: [(ins[0].shape, S)], dtypes=(S,),
         cases=[Case([_strings(np.array(["hello world", "aeiou", ""], dtype=object))],
                     attrs={"pattern": "[aeiou]", "rewrite": "_", "replace_global": True}),
                Case([_strings(np.array(["2024-01-05", "x 1-2"], dtype=object))],
                     attrs={"pattern": r"(\d+)-(\d+)", "rewrite": r"\2/\1", "replace_global": False},
                     note="groups, first match only")])
