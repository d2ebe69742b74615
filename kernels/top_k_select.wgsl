// TopKV2 on long rows: a radix select finds the k largest elements of each row in a few passes
// over it, where ranking every element against every other (top_k.wgsl) costs n^2 per row.
//
// Each element has a unique 64-bit sort key: its value's order-preserving u32 (sort_key.wgsl)
// above its reversed index n - 1 - i (among equal values the lower index is the larger key:
// TensorFlow's tie order). The k largest keys are the top k.
// Pass by pass, 8 bits at a time from the top, the select narrows a prefix that the k-th largest
// key matches; a pass stops the search early once every key under the prefix is selected.
//
// Overrides: MODE 0 = histogram: one workgroup per BLOCK elements of a row counts the digit of
//                     this pass among the keys that match the row's prefix so far;
//            MODE 1 = choose: one workgroup per row sums the histograms and picks the digit bin
//                     that holds the k-th largest key; state[row] takes the longer prefix;
//            MODE 2 = gather: every element whose masked key is >= the prefix is one of the k;
//                     it takes a slot (an atomic counter) in cand_v / cand_i, unordered.
// top_k.wgsl then ranks the k candidates (ties by their original index) into the outputs.
// Template: T (f32 or i32), KEY (key_f32 or key_i32).
//
// state[row * 8 + ...]: 0 value prefix, 1 reversed-index prefix, 2 value mask, 3 index mask,
// 4 keys still to take under the prefix, 5 done (1: every key under the prefix is taken),
// 6 candidates gathered so far.

#include <sort_key.wgsl>

override MODE: u32 = 0u;

const LANES: u32 = 256u;            // one lane per digit value
const BLOCK: u32 = 4096u;           // elements one histogram workgroup reads (16 per lane)

struct Params {
    n: u32, k: u32, rows: u32, nblocks: u32,
    shift: u32,                     // this pass's digit: bits shift .. shift + 7 of ...
    word: u32,                      // ... the value key (0) or the reversed index (1)
    first: u32,                     // 1 on the first pass: no prefix yet, state not read
}

@group(0) @binding(0) var<storage, read> x: array<{{T}}>;
@group(0) @binding(1) var<storage, read_write> hist: array<u32>;          // [rows, nblocks, 256]
@group(0) @binding(2) var<storage, read_write> state: array<atomic<u32>>; // [rows, 8]
@group(0) @binding(3) var<storage, read_write> cand_v: array<{{T}}>;      // [rows, k]
@group(0) @binding(4) var<storage, read_write> cand_i: array<i32>;        // [rows, k]
@group(0) @binding(5) var<uniform> p: Params;

var<workgroup> bins: array<atomic<u32>, 256>;
var<workgroup> sums: array<u32, 256>;


struct Prefix { hi: u32, lo: u32, hmask: u32, lmask: u32 }

fn prefix_of(row: u32) -> Prefix {
    let s = row * 8u;
    return Prefix(atomicLoad(&state[s]), atomicLoad(&state[s + 1u]),
                  atomicLoad(&state[s + 2u]), atomicLoad(&state[s + 3u]));
}

fn histogram(g: u32, lid: u32) {
    if (g >= p.rows * p.nblocks) { return; }
    let row = g / p.nblocks;
    let start = (g - row * p.nblocks) * BLOCK;
    atomicStore(&bins[lid], 0u);
    workgroupBarrier();
    var pre = Prefix(0u, 0u, 0u, 0u);
    var end = min(start + BLOCK, p.n);
    if (p.first == 0u) {
        pre = prefix_of(row);
        if (atomicLoad(&state[row * 8u + 5u]) != 0u) { end = start; }   // this row is done
    }
    for (var i = start + lid; i < end; i += LANES) {
        let key = {{KEY}}(x[row * p.n + i]);
        let rev = p.n - 1u - i;
        if ((key & pre.hmask) == pre.hi && (rev & pre.lmask) == pre.lo) {
            let w = select(key, rev, p.word == 1u);
            atomicAdd(&bins[(w >> p.shift) & 255u], 1u);
        }
    }
    workgroupBarrier();
    hist[g * LANES + lid] = atomicLoad(&bins[lid]);
}

fn choose(row: u32, lid: u32) {
    if (row >= p.rows) { return; }
    var c = 0u;
    for (var b = 0u; b < p.nblocks; b++) { c += hist[(row * p.nblocks + b) * LANES + lid]; }
    sums[lid] = c;
    workgroupBarrier();
    if (lid != 0u) { return; }
    let s = row * 8u;
    var pre = Prefix(0u, 0u, 0u, 0u);
    var remaining = p.k;
    if (p.first == 0u) {
        if (atomicLoad(&state[s + 5u]) != 0u) { return; }
        pre = prefix_of(row);
        remaining = atomicLoad(&state[s + 4u]);
    }
    var above = 0u;                 // keys under the prefix in higher bins: all taken
    var bin = 0u;
    for (var t = 0u; t < LANES; t++) {
        let j = LANES - 1u - t;
        if (above + sums[j] >= remaining) { bin = j; break; }
        above += sums[j];
    }
    remaining -= above;
    let digit = bin << p.shift;
    let mask = 255u << p.shift;
    if (p.word == 0u) { pre.hi |= digit; pre.hmask |= mask; } else { pre.lo |= digit; pre.lmask |= mask; }
    atomicStore(&state[s], pre.hi);
    atomicStore(&state[s + 1u], pre.lo);
    atomicStore(&state[s + 2u], pre.hmask);
    atomicStore(&state[s + 3u], pre.lmask);
    atomicStore(&state[s + 4u], remaining);
    atomicStore(&state[s + 5u], select(0u, 1u, sums[bin] == remaining));
    atomicStore(&state[s + 6u], 0u);
}

fn gather(t: u32) {
    if (t >= p.rows * p.n) { return; }
    let row = t / p.n;
    let i = t - row * p.n;
    let v = x[t];
    let key = {{KEY}}(v) & atomicLoad(&state[row * 8u + 2u]);
    let rev = (p.n - 1u - i) & atomicLoad(&state[row * 8u + 3u]);
    let hi = atomicLoad(&state[row * 8u]);
    if (key > hi || (key == hi && rev >= atomicLoad(&state[row * 8u + 1u]))) {
        let slot = atomicAdd(&state[row * 8u + 6u], 1u);
        if (slot < p.k) {
            cand_v[row * p.k + slot] = v;
            cand_i[row * p.k + slot] = i32(i);
        }
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let g = wid.y * nwg.x + wid.x;
    if (MODE == 0u) {
        histogram(g, lid);
    } else if (MODE == 1u) {
        choose(g, lid);
    } else {
        gather(g * LANES + lid);
    }
}
