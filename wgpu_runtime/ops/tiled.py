"""Kernel variants of matmuls and convolutions, chosen per adapter through wgpu_runtime.tuning.

Three kinds of kernels serve each family ("matmul", "conv2d", "depthwise"): the register-blocked
ones without workgroup memory (matmul.wgsl, conv2d*.wgsl, depthwise.wgsl: variant "regblock");
"texture" (conv2d_texture*.wgsl, depthwise_texture.wgsl, and for 2-D matmuls with a weight as B
the 1x1 convolution: the operands in textures, what llvmpipe runs fastest, as it fetches texels
as vector gathers and loads storage buffers lane by lane; wgpu_runtime/textures.py); and
workgroup-memory tiled ones for GPUs with fast shared memory (matmul_tiled.wgsl,
conv2d_tiled.wgsl, depthwise_tiled.wgsl), one variant per tile shape. Matmuls also have
"subgroup" (matmul_subgroup.wgsl: the register-blocked kernel with B handed between the 8 lanes
of a subgroup by broadcasts) where llvmpipe runs subgroups of 8 (ops.conv.use_subgroups).
Few-row products by a weight (a classifier at batch 1) have "subgroup_gemv" where the adapter has
subgroups (matmul_gemv_subgroup.wgsl: lanes along K, subgroupAdd; any subgroup width).
Products whose output is too small to keep a big GPU busy (under FILL_GROUPS workgroups) but
whose K is long also have split-K forms of the tiles and of matmul.wgsl (name + SPLIT_SUFFIX):
each workgroup sums a chunk of K into a partial-sums buffer and a second pass adds the chunks
up and runs the epilogue (matmul_splitk.wgsl, conv_splitk.wgsl).
This module lists the variants that fit a device and a problem (workgroup storage, invocations
per workgroup, llvmpipe's loop cap, texture sizes), orders them (software adapters: the texture
kernel first from TEXTURE_MIN_MACS, then the register-blocked one; hardware: the tile that suits
the problem's size first, the texture kernel last), asks
:func:`wgpu_runtime.tuning.choose`, and launches the tiled kernels. ``LAUNCHED`` counts the
variants lowered, per (family, variant, device name): what tests and benchmarks read to know
which ran.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from .. import textures, tuning
from ..tuning import Variant
from . import conv_uniform
from .common import cdiv
from .launch import LOOP_CAP, WORKGROUP, grid_1d, grid_z

LOOP_BUDGET = LOOP_CAP - 5535     # loop iterations one invocation may run, with a margin
REGBLOCK = Variant("regblock")    # the register-blocked kernels (matmul.wgsl, conv2d*.wgsl, depthwise.wgsl)
SUBGROUP = Variant("subgroup")    # matmul_subgroup.wgsl (llvmpipe with subgroups of 8)
SPLIT_SUFFIX = "_splitk"          # a variant's split-K form: K split over workgroups, a second pass adds the
                                  # partial sums and runs the epilogue (matmul_splitk.wgsl, conv_splitk.wgsl)
MIN_SPLIT_K4 = 16                 # vec4 K steps (64 products) each split sums at least
SPLIT_FIRST_MIN = 4               # K chunks from which a split-K form is the default on hardware (_split_first)
REGBLOCK_SPLIT = Variant(REGBLOCK.name + SPLIT_SUFFIX, (("split", True),))   # matmul.wgsl, K split
SUBGROUP_MIN_M = 9                # rows from which it is the default (at <= 8 it measured no faster)
GEMV = Variant("subgroup_gemv")   # matmul_gemv_subgroup.wgsl: few rows by a weight, lanes along K, subgroupAdd
GEMV_MAX_M = 8                    # rows it takes (its accumulators: one per row in each lane)
GEMV_LANES = 32                   # the subgroup width its grid is sized for (NVIDIA's; others loop or idle)
GEMV_MIN_LANES = 4                # the narrowest subgroup it may meet (llvmpipe with 128-bit vectors)
TEXTURE = Variant("texture")      # conv2d_texture*.wgsl, depthwise_texture.wgsl: operands in textures (textures.py)
UNIFORM = Variant("uniform")      # conv2d_uniform.wgsl: at most 4 input channels, the filter in the uniform block
TEXTURE_MIN_MACS = 1 << 16        # multiply-adds from which it is the default on software adapters (a
                                  # copy into a texture costs more than it saves below: 32^3 matmul 0.21
                                  # ms against 0.17 for the register-blocked kernel, 64^3 0.21 against 0.36)
DEPTHWISE_TEXTURE_MIN_MACS = 1 << 13   # the same for depthwise convolutions, whose register-blocked
                                  # kernel loads several storage-buffer texels per output: 9.2k
                                  # multiply-adds 0.085 ms either way, 18k 0.084 against 0.161, 576
                                  # 0.099 against 0.049 (GPU time, 2026-12-05)
COLUMN_LANES_MAX_M = 32           # rows up to which the texture convolution's lanes take channel
                                  # blocks, not pixels (texture_launch): [m, k] x [k, n] GPU time on
                                  # lavapipe / llvmpipe GL, channel ÷ pixel lanes: m = 1, k 1280, n
                                  # 1000 (a classifier) 0.47 / 0.36; m = 8, 512² 0.17 / 0.19; m =
                                  # 32 0.61 / 0.53; m = 64 1.08 / 1.00 (pixel lanes all busy there)
LAUNCHED: Counter = Counter()     # (family, variant name, device name) -> lowerings
HALF_SUFFIX = "_f16"              # the families of the f16 kernels (precision="float16"): <family>_f16


@dataclass(frozen=True)
class Tile:
    """A workgroup computes a bm x bn block of the output, stepping bk along K; each invocation
    tm rows x tn columns (tm, tn, bk multiples of 4). ``prefetch``: each K step's tiles are
    loaded into registers during the previous step's products (tile_stage.wgsl's PREFETCH)."""
    bm: int
    bn: int
    bk: int
    tm: int
    tn: int
    prefetch: bool = False

    @property
    def name(self) -> str:
        return f"tiled_{self.bm}x{self.bn}_k{self.bk}_{self.tm}x{self.tn}" + ("_pf" if self.prefetch else "")

    @property
    def invocations(self) -> int:
        return (self.bm // self.tm) * (self.bn // self.tn)

    def groups(self, m: int, n: int, nz: int = 1) -> int:
        """Workgroups covering ``nz`` m x n outputs (before any split of K)."""
        return nz * cdiv(m, self.bm) * cdiv(n, self.bn)

    @property
    def shared_bytes(self) -> int:
        """Workgroup memory: the transposed A tile (rows padded by 4) and the B tile."""
        return 4 * self.bk * (self.bm + 4) + 4 * self.bk * self.bn

    @property
    def loads(self) -> tuple[int, int]:
        """vec4 loads per invocation and K step of the A and B tiles."""
        return self.bm * self.bk // 4 // self.invocations, self.bk * self.bn // 4 // self.invocations

    def fits(self, device) -> bool:
        a, b = self.loads
        even = a * self.invocations * 4 == self.bm * self.bk and b * self.invocations * 4 == self.bk * self.bn
        return (even and a > 0 and b > 0
                and self.invocations <= _limit(device, "max-compute-invocations-per-workgroup", 256)
                and self.shared_bytes <= _limit(device, "max-compute-workgroup-storage-size", 16384))

    def k4_chunk(self) -> int:
        """vec4 K steps one invocation sums (a multiple of bk / 4) within llvmpipe's loop cap,
        counting every loop of a K step as if it ran (none unrolled)."""
        a, b = self.loads
        steps = (LOOP_BUDGET - 64) // (2 + self.bk + a + b)
        return steps * self.bk // 4

    def variant(self) -> Variant:
        return Variant(self.name, (("tile", self),))


# The tiles offered, biggest first: 128x128 for big products on a big GPU, narrow ones (32
# columns) for convolutions with few output channels, 32x32 for small products. The big ones
# also with register prefetching (after their plain forms in the order: not measured on a GPU
# yet, so never a default; `tune` times them).
_PLAIN = [Tile(128, 128, 16, 8, 8), Tile(128, 128, 8, 8, 8), Tile(128, 64, 16, 8, 4), Tile(64, 128, 16, 4, 8),
          Tile(64, 64, 32, 4, 4), Tile(64, 64, 16, 4, 4), Tile(128, 32, 16, 8, 4), Tile(64, 32, 16, 4, 4),
          Tile(32, 32, 16, 4, 4)]
TILES = [x for t in _PLAIN
         for x in ((t, replace(t, prefetch=True)) if t.bm * t.bn >= 64 * 128 else (t,))]
FILL_GROUPS = 256     # workgroups that keep a big GPU busy (an H200 has 132 multiprocessors)


def _limit(device, key: str, default: int) -> int:
    """A device limit; WebGPU's default where the device (or a stand-in) does not say."""
    limits = getattr(device, "limits", None) or {}
    return int(limits.get(key, default))


def _pow2(n: int) -> int:
    """The smallest power of two >= n (1 for 0)."""
    return 1 << max(0, int(n) - 1).bit_length()


def _bucket(n: int) -> int:
    """log2 bucket of a size (0 for 0 and 1)."""
    return min(max(0, int(n) - 1).bit_length(), 16)


def _offered(device, m: int, n: int) -> list[Tile]:
    """The tiles that fit the device and are at most twice an m x n output (32 wide ones for
    any output)."""
    return [t for t in TILES if t.fits(device) and t.bm <= max(32, 2 * m) and t.bn <= max(32, 2 * n)]


def split_chunk(k4: int, step: int, groups: int, cap: int) -> int:
    """vec4 K steps each workgroup sums in a split-K launch of a product reducing ``k4`` vec4s
    whose launch without splitting has ``groups`` workgroups: enough splits to reach
    FILL_GROUPS workgroups, each summing a multiple of ``step`` (the tile's bk / 4) and at
    least MIN_SPLIT_K4 vec4s, at most ``cap`` (llvmpipe's loop cap); 0 where that leaves fewer
    than 2 splits (nothing to gain)."""
    step = max(1, step)
    least = cdiv(MIN_SPLIT_K4, step) * step
    splits = min(cdiv(FILL_GROUPS, max(1, groups)), k4 // least)
    if splits < 2:
        return 0
    chunk = min(cap, cdiv(cdiv(k4, splits), step) * step)
    return chunk if cdiv(k4, chunk) >= 2 else 0


def _split(v: Variant) -> Variant:
    """The split-K form of variant ``v`` (its name + SPLIT_SUFFIX)."""
    return Variant(v.name + SPLIT_SUFFIX, (*v.params, ("split", True)))


def _order(device, m: int, n: int, nz: int, k4: int = 0) -> list[Variant]:
    """The candidates for ``nz`` m x n outputs reducing ``k4`` vec4s. Software adapters: the
    register-blocked kernel first. Hardware: among the tiles no bigger than m and n rounded up to
    powers of two, the biggest that still launches FILL_GROUPS workgroups (else the one
    launching the most), then the other tiles, then the register-blocked kernel (first for
    matrix-vector shapes). Each tile launching fewer than FILL_GROUPS workgroups is followed by
    its split-K form where ``k4`` allows 2 chunks (split_count; last on software adapters); on
    hardware the best tile's comes first where _split_first says (most of a big GPU idle: a
    small output over a long K, the last layers of a CNN at batch 1)."""
    tiles = _offered(device, m, n)
    variants = [t.variant() for t in tiles]
    groups = [t.groups(m, n, nz) for t in tiles]
    counts = {i: split_count(k4, t.bk // 4, groups[i], t.k4_chunk()) for i, t in enumerate(tiles)}
    splits = {i: _split(variants[i]) for i, c in counts.items() if c >= 2}
    if device.is_software or min(m, n) < 16 or not tiles:
        return [REGBLOCK, *variants, *splits.values()]
    snug = [i for i, t in enumerate(tiles) if t.bm <= _pow2(m) and t.bn <= _pow2(n)] or list(range(len(tiles)))
    full = [i for i in snug if groups[i] >= FILL_GROUPS]
    best = full[0] if full else max(snug, key=lambda i: groups[i])
    order = [best, *(i for i in range(len(tiles)) if i != best)]
    ranked = [x for i in order for x in (variants[i], splits.get(i)) if x is not None]
    if _split_first(groups[best], counts[best]):
        ranked.remove(splits[best])
        ranked.insert(0, splits[best])
    return [*ranked, REGBLOCK]


def split_count(k4: int, step: int, groups: int, cap: int) -> int:
    """How many K chunks the split-K form of a launch of ``groups`` workgroups runs (split_chunk;
    0 where it has none: a launch filling the GPU, or K too short for 2 chunks)."""
    if groups >= FILL_GROUPS:
        return 0
    chunk = split_chunk(k4, step, groups, cap)
    return cdiv(k4, chunk) if chunk else 0


def _split_first(groups: int, splits: int) -> bool:
    """Whether a split-K form comes before its plain launch on hardware: where the plain launch
    leaves most of a big GPU idle (under FILL_GROUPS / 4 workgroups) and the split multiplies
    its workgroups at least by SPLIT_FIRST_MIN (fewer would hardly pay for the second pass)."""
    return groups < FILL_GROUPS // 4 and splits >= SPLIT_FIRST_MIN


def fits_textures(device, *texels: int) -> bool:
    """Whether operands of these many vec4s each fit textures on ``device`` (textures.extent)."""
    return all(textures.extent(device, n) is not None for n in texels)


def texture_first(device) -> bool:
    """Whether the texture variant comes first on ``device`` (from TEXTURE_MIN_MACS): on
    software adapters, whose storage-buffer loads run lane by lane."""
    return device.is_software


def _offer_software_first(device, candidates: list[Variant], macs: int, min_macs: int = TEXTURE_MIN_MACS,
                   variant: Variant = TEXTURE) -> None:
    """Add ``variant`` (the texture variant, or another reading its operand from a texture copy)
    to ``candidates``: first on software adapters from ``min_macs`` multiply-adds, else second
    there, last on hardware."""
    if not texture_first(device):
        candidates.append(variant)
    else:
        candidates.insert(0 if macs >= min_macs else 1, variant)


def _half(device, family: str, m: int, n: int, nz: int) -> tuple[str, list[Variant]]:
    """Under precision="float16": the workgroup-tiled variants only (the kernels with an f16
    compute type, precision.py), tuned apart from the float32 ones (family ``<family>_f16``)."""
    tiles = [v for v in _order(device, m, n, nz) if v.get("tile") is not None]
    if not tiles:
        raise ValueError(f"precision='float16': no workgroup tile fits {device.name}'s limits")
    return family + HALF_SUFFIX, tiles


def half_launches(device) -> int:
    """How many f16 kernels (precision="float16") have been lowered for ``device`` so far."""
    return sum(n for (family, _, name), n in LAUNCHED.items() if family.endswith(HALF_SUFFIX) and name == device.name)


def _choose(device, family: str, shape_class: tuple, candidates: list[Variant]) -> Variant:
    v = tuning.choose(device, family, shape_class, candidates)
    LAUNCHED[(family, v.name, device.name)] += 1
    return v


# --------------------------------------------------------------------------------- matmul
def matmul_variant(device, m: int, n: int, k: int, nbatch: int, subgroup: bool = False,
                   texture: bool = False, half: bool = False, blocked_groups: int = 0,
                   gemv: bool = False) -> Variant:
    """The variant running an m x k by k x n product (``nbatch`` of them) on ``device``;
    ``subgroup``: whether matmul_subgroup.wgsl may run (the device and the dtype allow it), then
    first from SUBGROUP_MIN_M rows, else right after the register-blocked kernel; ``texture``:
    whether the texture convolution may run it (a float32 product with a weight as B, no
    residual: ops.conv.texture_matmul), then first on software adapters from TEXTURE_MIN_MACS
    (also at M = 1: MobileNetV2's classifier measured 1.0 against 4.9 ms for the subgroup kernel).
    ``half``: precision="float16" (_half). ``blocked_groups``: the workgroups matmul.wgsl
    launches for the product without splitting; under FILL_GROUPS its split-K form
    (REGBLOCK_SPLIT) is a candidate too, on hardware first for few-row products launching under
    FILL_GROUPS / 4 (a classifier at batch 1: one workgroup would sum all of K). ``gemv``:
    whether matmul_gemv_subgroup.wgsl may run it (the device has subgroups, B is a float32
    weight, one product), then a candidate up to GEMV_MAX_M rows: first on hardware, last on
    software adapters."""
    shape_class = (_bucket(m), _bucket(n), _bucket(k), _bucket(nbatch))
    if half:
        family, tiles = _half(device, "matmul", m, n, nbatch)
        return _choose(device, family, shape_class, tiles)
    k4, n4 = cdiv(k, 4), cdiv(n, 4)
    candidates = _order(device, m, n, nbatch, k4)
    count = split_count(k4, 1, blocked_groups, LOOP_BUDGET)
    if count >= 2:
        first = (not device.is_software and candidates[0].name == REGBLOCK.name
                 and _split_first(blocked_groups, count))
        candidates.insert(0 if first else len(candidates), REGBLOCK_SPLIT)
    if subgroup:
        candidates.insert(0 if m >= SUBGROUP_MIN_M else 1, SUBGROUP)
    if gemv and nbatch == 1 and 0 < m <= GEMV_MAX_M and 0 < k4 and gemv_fits(m, k4):
        candidates.insert(len(candidates) if device.is_software else 0, GEMV)
    if texture and nbatch == 1 and fits_textures(device, m * k4, (4 * k4 + 1) * n4):
        _offer_software_first(device, candidates, nbatch * m * n * k)
    return _choose(device, "matmul", shape_class, candidates)


def gemv_groups(n: int) -> int:
    """Workgroups matmul_gemv_subgroup.wgsl is launched with for n output columns: one column
    per subgroup of GEMV_LANES lanes (narrower subgroups idle, wider ones loop)."""
    return cdiv(n, WORKGROUP // GEMV_LANES)


def gemv_fits(m: int, k4: int) -> bool:
    """Whether matmul_gemv_subgroup.wgsl's lanes stay under llvmpipe's loop cap for m rows over
    k4 vec4s at the narrowest subgroup: each lane's K loop runs k4 / GEMV_MIN_LANES times,
    with m + 2 loop iterations counted per step (its row loop and the loop's own; measured at
    width 4: m = 2 right up to k4 = 60000, wrong at 65536)."""
    return cdiv(k4, GEMV_MIN_LANES) * (m + 2) <= LOOP_BUDGET


def launch_matmul(ctx, v: Variant, bindings: list, m: int, n: int, k4: int, n4: int, nz: int, splits: int,
                  chunk: int, batch: dict, alpha: float, template: dict, constants: dict) -> None:
    """matmul_tiled.wgsl with tile ``v`` over ``nz`` = batch x splits products, each split
    summing ``chunk`` vec4 K steps (a multiple of the tile's bk / 4); ``batch``: the batch
    layout uniforms (rank, a_mat, b_mat, shape/a/b lo/hi) matmul.wgsl takes too."""
    t: Tile = v.get("tile")
    groups_m, groups_n = cdiv(m, t.bm), cdiv(n4, t.bn // 4)
    ctx.dispatch("matmul_tiled.wgsl", bindings, grid_1d(groups_m * groups_n * nz, 1),
                 params={"M": m, "N": n, "K4": k4, "N4": n4, "groups_m": groups_m, "groups_n": groups_n,
                         "nz": nz, "splits": splits, "k4_chunk": chunk, "alpha": alpha, **batch},
                 template={**template, "TM": t.tm, "TN": t.tn, "BM": t.bm, "BN": t.bn, "BK": t.bk},
                 constants={**constants, "PREFETCH": t.prefetch})


# ---------------------------------------------------------------------------- convolution
def conv_variant(device, g, m: int, n4: int, k4: int, transposed: bool, half: bool = False) -> Variant:
    """The variant of an implicit-matmul convolution over geometry ``g`` (conv.Geometry): ``m``
    output pixels, ``4*n4`` output and ``4*k4`` input channels per tap (``transposed``:
    Conv2DBackpropInput's gather; ``half``: precision="float16", _half). Software adapters run the texture kernel first from
    TEXTURE_MIN_MACS, hardware ones offer it last."""
    shape_class = (_bucket(m), _bucket(4 * n4), _bucket(4 * k4), g.kh, g.kw, g.sh, g.sw, int(transposed))
    if half:                # precision="float16": the tiled kernel (_half)
        family, tiles = _half(device, "conv2d", m, 4 * n4, 1)
        return _choose(device, family, shape_class, tiles)
    candidates = _order(device, m, 4 * n4, 1, g.kh * g.kw * k4)
    macs = m * 16 * n4 * k4 * g.kh * g.kw
    if fits_textures(device, g.n * g.h * g.w * k4, (g.kh * g.kw * 4 * k4 + 1) * n4):
        _offer_software_first(device, candidates, macs)
    if uniform_fits(g, n4, transposed) and fits_textures(device, g.n * g.h * g.w * k4):
        _offer_software_first(device, candidates, macs, variant=UNIFORM)
    return _choose(device, "conv2d", shape_class, candidates)


def uniform_fits(g, n4: int, transposed: bool) -> bool:
    """Whether conv2d_uniform.wgsl takes a convolution over geometry ``g`` (conv.Geometry) into
    4 * n4 output channels: at most 4 input channels, at most conv_uniform.MAX_TERMS
    multiply-adds per output pixel (its body is unrolled), not Conv2DBackpropInput's gather."""
    return (not transposed and g.c <= conv_uniform.MAX_CHANNELS
            and g.kh * g.kw * g.c * 4 * n4 <= conv_uniform.MAX_TERMS)


def is_pointwise(g) -> bool:
    """A 1x1 convolution at stride 1 without padding: output pixel m reads input pixel m."""
    return g.kh == g.kw == g.sh == g.sw == 1 and g.pt == g.pl == 0 and g.h == g.oh and g.w == g.ow


def texture_launch(g, m: int, n4: int):
    """conv2d_texture*.wgsl's launch for ``m`` output pixels x ``n4`` channel vec4s over
    geometry ``g``: (grid, template, constants). Up to 8 pixels x 8 channel vec4s per invocation, workgroups of 8 (one
    llvmpipe SIMD batch: 64 measured no faster on MobileNetV2's convolutions, and wasted lanes
    on small ones; a fixed size keeps one pipeline for every shape). At most COLUMN_LANES_MAX_M
    pixels: the lanes take blocks of 4 channel vec4s of the same pixels (``COLUMN_LANES``; the
    kernel is then conv2d_texture.wgsl, whose lanes fetch their own filter texels)."""
    tm = min(8, _pow2(m))
    nv = 4 if n4 <= 4 else 8
    wg = 8
    constants = {"WG": wg, "POINTWISE": is_pointwise(g)}
    if m <= COLUMN_LANES_MAX_M:     # 4 channel vec4s per lane: twice the workgroups of 8 (a classifier
        # [1, 1280] x [1280, 1000]: 0.77x the time of 8 per lane; 16 x 320 x 1280: 0.92x)
        return (cdiv(m, tm), cdiv(n4, 4 * wg), 1), {"TM": tm, "NV": 4}, {**constants, "COLUMN_LANES": True}
    return grid_z(cdiv(cdiv(m, tm), wg), cdiv(n4, nv)), {"TM": tm, "NV": nv}, constants


def conv_launch(v: Variant, g, m: int, n4: int, k4: int, transposed: bool):
    """conv2d_tiled.wgsl's launch for tile ``v``: (kernel, grid, template, constants, per-pass
    uniforms, splits). Without splitting, the passes split the taps * k4 vec4 K steps within
    llvmpipe's loop cap; the split-K form (``v`` from _split) runs one pass whose workgroups
    each sum a chunk of K (split_chunk) into their own slice of a partial-sums buffer (SPLIT),
    ``splits`` slices that conv_splitk.wgsl adds up; splits is 1 otherwise."""
    t: Tile = v.get("tile")
    groups_n = cdiv(n4, t.bn // 4)
    groups = t.groups(m, 4 * n4)
    pointwise = is_pointwise(g)
    total, chunk = g.kh * g.kw * k4, t.k4_chunk()
    split = split_chunk(total, t.bk // 4, groups, chunk) if v.get("split") else 0
    template = {"T": "f32", "TM": t.tm, "TN": t.tn, "BM": t.bm, "BN": t.bn, "BK": t.bk}
    constants = {"POINTWISE": pointwise, "SPLIT": bool(split), "PREFETCH": t.prefetch}
    if split:
        splits = cdiv(total, split)
        passes = [{"q0": 0, "q1": total, "groups_n": groups_n, "groups": groups, "chunk": split}]
        return "conv2d_tiled.wgsl", grid_1d(groups * splits, 1), template, constants, passes, splits
    passes = [{"q0": q, "q1": min(total, q + chunk), "groups_n": groups_n, "groups": groups,
               "chunk": min(total, q + chunk) - q} for q in range(0, total, chunk)]
    return "conv2d_tiled.wgsl", grid_1d(groups, 1), template, constants, passes, 1


# ------------------------------------------------------------------------------ depthwise
@dataclass(frozen=True)
class PatchTile:
    """depthwise_tiled.wgsl: a workgroup computes th x tw output pixels x cb channel vec4s from
    its input patch in workgroup memory; each invocation ry pixels of one column."""
    cb: int
    tw: int
    th: int
    ry: int

    @property
    def name(self) -> str:
        return f"patch_{self.th}x{self.tw}_c{4 * self.cb}_r{self.ry}"

    @property
    def invocations(self) -> int:
        return self.cb * self.tw * (self.th // self.ry)

    def patch(self, g) -> tuple[int, int]:
        """Input rows and columns the patch of a th x tw output block spans."""
        return (self.th - 1) * g.sh + (g.kh - 1) * g.dh + 1, (self.tw - 1) * g.sw + (g.kw - 1) * g.dw + 1

    def fits(self, device, g) -> bool:
        ph, pw = self.patch(g)
        loops = 2 * cdiv(ph * pw * self.cb, self.invocations) + g.kh * (1 + g.kw * (1 + self.ry)) + 64
        return (self.invocations <= _limit(device, "max-compute-invocations-per-workgroup", 256)
                and 16 * ph * pw * self.cb <= _limit(device, "max-compute-workgroup-storage-size", 16384)
                and loops <= LOOP_BUDGET)

    def variant(self) -> Variant:
        return Variant(self.name, (("tile", self),))


PATCH_TILES = [PatchTile(8, 8, 8, 2), PatchTile(8, 4, 4, 1), PatchTile(16, 4, 8, 2)]


def depthwise_variant(device, g, c4: int) -> Variant:
    """The variant of a depthwise convolution over geometry ``g`` with ``c4`` channel vec4s:
    software adapters first the texture kernel (depthwise_texture.wgsl, where the operands fit
    textures, from DEPTHWISE_TEXTURE_MIN_MACS), then the register-blocked one; hardware ones the
    patch tiles first."""
    tiles = [t for t in PATCH_TILES if t.fits(device, g)]
    variants = [t.variant() for t in tiles]
    if not device.is_software and g.sh > 1:         # a smaller patch per output at stride 2
        variants.sort(key=lambda v: v.get("tile").th)
    ordered = [REGBLOCK, *variants] if device.is_software else [*variants, REGBLOCK]
    if fits_textures(device, g.n * g.h * g.w * c4, (g.kh * g.kw + 1) * c4):
        _offer_software_first(device, ordered, g.n * g.oh * g.ow * 4 * c4 * g.kh * g.kw, DEPTHWISE_TEXTURE_MIN_MACS)
    shape_class = (_bucket(g.n * g.oh * g.ow), _bucket(4 * c4), g.kh, g.kw, g.sh, g.sw)
    return _choose(device, "depthwise", shape_class, ordered)


def pool_texture(device, texels: int, reads: int) -> bool:
    """Whether a float32 pooling window (pool_main.wgsl) reads its input of ``texels`` vec4s from a
    texture copy (pool_texture.wgsl): where texture kernels come first, from as many window reads
    as a depthwise texture kernel's multiply-adds, if the input fits a texture."""
    return texture_first(device) and reads >= DEPTHWISE_TEXTURE_MIN_MACS and fits_textures(device, texels)


def depthwise_launch(v: Variant, g, c4: int):
    """depthwise_tiled.wgsl's launch for tile ``v``: (kernel, grid, template, uniforms)."""
    t: PatchTile = v.get("tile")
    ph, pw = t.patch(g)
    owb, ohb, cgroups = cdiv(g.ow, t.tw), cdiv(g.oh, t.th), cdiv(c4, t.cb)
    grid = grid_1d(g.n * ohb * owb * cgroups, 1)
    template = {"CB": t.cb, "TW": t.tw, "TH": t.th, "RY": t.ry, "PATCH": ph * pw * t.cb}
    params = {"c4": c4, "owb": owb, "ohb": ohb, "h": g.h, "w": g.w, "oh": g.oh, "ow": g.ow, "kh": g.kh,
              "kw": g.kw, "stride_h": g.sh, "stride_w": g.sw, "dil_h": g.dh, "dil_w": g.dw, "pad_t": g.pt,
              "pad_l": g.pl, "ph": ph, "pw": pw, "cgroups": cgroups, "nb": g.n}
    return "depthwise_tiled.wgsl", grid, template, params


def variant_names(family: str) -> list[str]:
    """Every variant name the lowerings of ``family`` ("matmul", "conv2d", "depthwise") may
    offer, on some device for some problem."""
    tiles = [t.name + suffix for t in TILES for suffix in ("", SPLIT_SUFFIX)]
    if family == "matmul":
        return [REGBLOCK.name, REGBLOCK_SPLIT.name, SUBGROUP.name, GEMV.name, TEXTURE.name] + tiles
    if family == "conv2d":
        return [REGBLOCK.name, TEXTURE.name, UNIFORM.name] + tiles
    if family == "depthwise":
        return [REGBLOCK.name, TEXTURE.name] + [t.name for t in PATCH_TILES]
    raise ValueError(f"unknown kernel family {family!r}")
