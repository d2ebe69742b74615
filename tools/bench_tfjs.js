#!/usr/bin/env node
// Time a TF.js graph model's predictions in Node on @tensorflow/tfjs's pure-JS CPU backend or on
// @tensorflow/tfjs-backend-wasm (XNNPACK; SIMD when Node's WebAssembly has it, one thread).
//
//   node tools/bench_tfjs.js MODEL_DIR [--runs N] [--warmup K] [--batch B] [--backend cpu|wasm]
//
// MODEL_DIR holds model.json and its shards (read with fs, no HTTP), or is a model's JSON file.
// Inputs: seeded uniform [-1, 1) float32 (integer and bool inputs: zeros) of the signature's
// shapes (else the Placeholders'), unknown dims = --batch. Each timed run is one model.execute() (executeAsync() for models
// that need it) plus reading every output back (dataSync). Prints one JSON object: median_ms, min_ms, p90_ms, times_ms,
// load_ms, first_ms, kernels (TF.js kernels run in one prediction, from tf.profile), backend,
// tfjs version (and for wasm: simd, threads). Uses the @tensorflow/tfjs and
// @tensorflow/tfjs-backend-wasm that tools/setup.sh installs in tests/tfjs (npm install there).
'use strict';
const fs = require('fs');
const path = require('path');
const {fileHandler, modelJson} = require(path.join(__dirname, '..', 'tests', 'tfjs', 'common.js'));

const NODE_MODULES = path.join(__dirname, '..', 'tests', 'tfjs', 'node_modules', '@tensorflow');
const TFJS = path.join(NODE_MODULES, 'tfjs');
const TFJS_WASM = path.join(NODE_MODULES, 'tfjs-backend-wasm');
const BACKENDS = ['cpu', 'wasm'];

function usage(msg) {
  process.stderr.write(`error: ${msg}\nusage: node tools/bench_tfjs.js MODEL_DIR [--runs N] [--warmup K] [--batch B] [--backend cpu|wasm]\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {runs: 20, warmup: 3, batch: 1, backend: 'cpu', model: null};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--runs' || a === '--warmup' || a === '--batch') {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < (a === '--warmup' ? 0 : 1)) usage(`${a} needs a ${a === '--warmup' ? 'non-negative' : 'positive'} integer`);
      opts[a.slice(2)] = v;
    } else if (a === '--backend') {
      opts.backend = argv[++i];
      if (!BACKENDS.includes(opts.backend)) usage(`--backend needs one of ${BACKENDS.join(', ')}${opts.backend === undefined ? '' : `, not ${opts.backend}`}`);
    } else if (a.startsWith('--')) {
      usage(`unknown option ${a}`);
    } else if (opts.model === null) {
      opts.model = a;
    } else {
      usage(`unexpected argument ${a}`);
    }
  }
  if (opts.model === null) usage('MODEL_DIR is required');
  return opts;
}

// The model's inputs: its signature's (names, dtypes, shapes), else its Placeholders as TF.js
// reads them; float32 from a seeded generator, integer and bool inputs zeros; unknown dims = batch.
function inputs(tf, model, modelDir, batch) {
  const json = JSON.parse(fs.readFileSync(modelJson(path, modelDir), 'utf8'));
  const sig = Object.values((json.signature || {}).inputs || {});
  const DTYPES = {DT_FLOAT: 'float32', DT_BOOL: 'bool'};     // other integers: int32, as TF.js reads them
  const specs = sig.length
    ? sig.map((s) => ({name: s.name, dtype: DTYPES[s.dtype] || 'int32',
      shape: ((s.tensorShape || {}).dim || []).map((d) => Number(d.size))}))
    : model.inputs;
  let seed = 12345;
  const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 1073741824 - 1; };
  const feed = {};
  for (const spec of specs) {
    const dims = (spec.shape || []).map((d) => (d == null || d < 0 ? batch : d));
    const n = dims.reduce((a, b) => a * b, 1);
    if (spec.dtype === 'float32') feed[spec.name] = tf.tensor(Float32Array.from({length: n}, rand), dims, 'float32');
    else feed[spec.name] = tf.zeros(dims, spec.dtype);
  }
  if (!Object.keys(feed).length) throw new Error(`${modelJson(path, modelDir)} has no inputs`);
  return feed;
}

let needsAsync = false;   // control flow or dynamic shapes: TF.js's execute() refuses, naming executeAsync

async function predict(tf, model, feed) {
  let out;
  if (!needsAsync) {
    try {
      out = model.execute(feed);
    } catch (e) {
      if (!String((e && e.message) || e).includes('executeAsync')) throw e;
      needsAsync = true;
    }
  }
  if (needsAsync) out = await model.executeAsync(feed);
  if (!Array.isArray(out)) out = out instanceof tf.Tensor ? [out] : Object.values(out);
  for (const t of out) t.dataSync();
  tf.dispose(out);
}

function median(sorted) {
  const m = sorted.length >> 1;
  return sorted.length % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
}

function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1) + 0.5))];
}

// Select the backend; tf.setBackend() resolves false (not throws) when a backend fails to start.
async function useBackend(tf, name) {
  const info = {};
  if (name === 'wasm') {
    const wasm = require(TFJS_WASM);   // registers 'wasm' with the tfjs-core that tfjs uses (same node_modules)
    wasm.setWasmPaths(path.join(TFJS_WASM, 'dist') + path.sep);   // the .wasm binaries on disk, read with fs
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);   // one thread: the machine's cores are shared
    info.simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    info.threads = 1;
    info.tfjs_backend_wasm = wasm.version_wasm;
  }
  if (!(await tf.setBackend(name)) || tf.getBackend() !== name) throw new Error(`TF.js backend ${name} failed to start`);
  await tf.ready();
  return info;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(modelJson(path, opts.model))) usage(`${modelJson(path, opts.model)} not found`);
  if (!fs.existsSync(TFJS)) usage(`@tensorflow/tfjs is not installed in tests/tfjs: run tools/setup.sh`);
  const warn = console.warn;   // TF.js's "speed things up with tfjs-node" banner
  console.warn = (...a) => { if (!String(a[0]).includes('tfjs-node')) warn(...a); };
  if (opts.backend === 'wasm' && !fs.existsSync(TFJS_WASM)) {
    usage(`@tensorflow/tfjs-backend-wasm is not installed in tests/tfjs: run tools/setup.sh`);
  }
  const tf = require(TFJS);
  const backendInfo = await useBackend(tf, opts.backend);
  let t0 = performance.now();
  const model = await tf.loadGraphModel(fileHandler(fs, path, opts.model));
  const loadMs = performance.now() - t0;
  const feed = inputs(tf, model, opts.model, opts.batch);
  t0 = performance.now();
  await predict(tf, model, feed);
  const firstMs = performance.now() - t0;
  const profile = await tf.profile(() => predict(tf, model, feed));
  for (let i = 0; i < opts.warmup; i++) await predict(tf, model, feed);
  const times = [];
  for (let i = 0; i < opts.runs; i++) {
    t0 = performance.now();
    await predict(tf, model, feed);
    times.push(performance.now() - t0);
  }
  const sorted = [...times].sort((a, b) => a - b);
  const r = (x) => Math.round(x * 100) / 100;
  process.stdout.write(JSON.stringify({
    model: path.resolve(opts.model), backend: tf.getBackend(), ...backendInfo, tfjs: tf.version.tfjs, node: process.version,
    batch: opts.batch, runs: opts.runs, warmup: opts.warmup, load_ms: r(loadMs), first_ms: r(firstMs),
    kernels: profile.kernels.length, median_ms: r(median(sorted)), min_ms: r(sorted[0]),
    p90_ms: r(percentile(sorted, 0.9)), times_ms: times.map(r),
  }) + '\n');
}

main().catch((e) => { process.stderr.write(`error: ${(e && e.message) || e}\n`); process.exit(1); });
