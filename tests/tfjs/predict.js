// Load TF.js models from local folders and run them; driven by tests/tfjs_harness.py.
// Usage: node predict.js JOBS.json
// JOBS.json: {"jobs": [{"model_dir", "kind": "graph"|"layers", "inputs": [{"name"|null, "dtype",
//   "shape", "file"}], "outputs": [names]|null}], "out_dir"}. Inputs are raw little-endian files.
// Writes out_dir/result.json: [{"ok": true, "outputs": [{"dtype", "shape", "file"}]} |
//   {"ok": false, "error": "..."}], one per job, and the output files beside it.
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

// Model folder -> TF.js ModelArtifacts, reading model.json and its shards with fs.
function fileHandler(modelDir) {
  return {
    load: async () => {
      const json = JSON.parse(fs.readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
      const weightSpecs = [];
      const buffers = [];
      for (const group of json.weightsManifest || []) {
        for (const p of group.paths) buffers.push(fs.readFileSync(path.join(modelDir, p)));
        weightSpecs.push(...group.weights);
      }
      const all = Buffer.concat(buffers);
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        signature: json.signature,
        userDefinedMetadata: json.userDefinedMetadata,
        modelInitializer: json.modelInitializer,
        initializerSignature: json.initializerSignature,
        trainingConfig: json.trainingConfig,  // as tf.io's http/browser loaders do
        weightSpecs,
        weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
      };
    },
  };
}

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
  const handler = fileHandler(job.model_dir);
  const model = job.kind === 'layers'
    ? await tf.loadLayersModel(handler, {strict: true})
    : await tf.loadGraphModel(handler);
  const tensors = job.inputs.map(readInput);
  let feed;
  if (job.inputs.every((s) => s.name != null)) {
    feed = {};
    job.inputs.forEach((s, i) => { feed[s.name] = tensors[i]; });
    if (job.kind === 'layers') {
      const names = model.inputNames;
      const missing = names.filter((n) => !(n in feed));
      if (missing.length) throw new Error(`missing inputs ${missing} (model inputs: ${names})`);
      feed = names.map((n) => feed[n]);
    }
  } else {
    feed = tensors;
  }
  if (Array.isArray(feed) && feed.length === 1) feed = feed[0];
  let out;
  if (job.kind === 'layers') out = model.predict(feed);
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
    const data = await t.data();
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
