// Load TF.js models from local folders and run them; driven by tests/tfjs_harness.py.
// Usage: node predict.js JOBS.json
// JOBS.json: {"jobs": [{"model_dir", "kind": "graph"|"layers", "inputs": [{"name"|null, "dtype",
//   "shape", "file"}], "outputs": [names]|null, "async": bool}], "out_dir"}. Inputs are raw little-endian files.
// Writes out_dir/result.json: [{"ok": true, "outputs": [{"dtype", "shape", "file"}]} |
//   {"ok": false, "error": "..."}], one per job, and the output files beside it.
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
const {fileHandler, buildFeed} = require('./common.js');

const ARRAYS = {float32: Float32Array, int32: Int32Array, bool: Uint8Array};

function readInput(spec) {
  const raw = fs.readFileSync(spec.file);
  const Ctor = ARRAYS[spec.dtype];
  if (!Ctor) throw new Error(`unsupported input dtype ${spec.dtype}`);
  const copy = new Uint8Array(raw.byteLength);
  copy.set(raw);
  return tf.tensor(new Ctor(copy.buffer), spec.shape, spec.dtype);
}

async function runJob(job, index, outDir) {
  const handler = fileHandler(fs, path, job.model_dir);
  const model = job.kind === 'layers'
    ? await tf.loadLayersModel(handler, {strict: true})
    : await tf.loadGraphModel(handler);
  const tensors = job.inputs.map(readInput);
  const feed = buildFeed(model, job.kind, job.inputs, tensors);
  let out;
  if (job.kind === 'layers') out = model.predict(feed);
  else if (job.outputs && job.async) out = await model.executeAsync(feed, job.outputs);
  else if (job.outputs) out = model.execute(feed, job.outputs);
  else out = await model.executeAsync(feed);
  if (!Array.isArray(out)) {
    if (out instanceof tf.Tensor) out = [out];
    else {  // named outputs (graph model with a dict signature): signature order
      const keys = Object.keys(out);
      out = keys.map((k) => out[k]);
    }
  }
  const outputs = [];
  for (let k = 0; k < out.length; k++) {
    const t = out[k];
    let data = await t.data();
    // TF.js sometimes labels a tensor float32 while its data is an Int32Array (an int output
    // through Identity, e.g. the detection counts of an exported object detector): the values
    // are what a TF.js user reads, so send them as float32.
    if (t.dtype === 'float32' && !(data instanceof Float32Array)) data = Float32Array.from(data);
    const file = path.join(outDir, `job${index}-out${k}.bin`);
    const bytes = t.dtype === 'bool' ? Uint8Array.from(data) : data;
    fs.writeFileSync(file, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    outputs.push({dtype: t.dtype, shape: t.shape, file});
  }
  tf.dispose(out);
  tf.dispose(tensors);
  if (model.dispose) model.dispose();
  return outputs;
}

async function main() {
  const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  await tf.setBackend('cpu');
  const results = [];
  for (let i = 0; i < spec.jobs.length; i++) {
    try {
      results.push({ok: true, outputs: await runJob(spec.jobs[i], i, spec.out_dir)});
    } catch (e) {
      results.push({ok: false, error: String((e && e.message) || e), stack: String((e && e.stack) || '')});
    }
  }
  fs.writeFileSync(path.join(spec.out_dir, 'result.json'), JSON.stringify(results));
}

// Silence TF.js's "speed things up with tfjs-node" banner: it would mix with real errors.
const warn = console.warn;
console.warn = (...a) => { if (!String(a[0]).includes('tfjs-node')) warn(...a); };
main().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
