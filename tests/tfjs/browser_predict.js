// Runs in headless Chromium, served with browser.html by tests/browser_harness.py (127.0.0.1).
// GET /jobs.json: {"backends": [name], "jobs": [{"model_url", "kind": "graph"|"layers",
//   "inputs": [{"name"|null, "dtype", "shape", "url"}], "outputs": [names]|null}]}.
// Per backend: POST /backend {"backend", "ok", "detail"|"error"}; then per job:
// POST /result {"backend", "job", "ok", "outputs": [{"dtype", "shape", "data": base64 LE bytes}]
//   | "error"}. Finally POST /done. Models load over HTTP (tf.loadGraphModel / tf.loadLayersModel
// with the model.json URL), as they do where users deploy them.
'use strict';

const ARRAYS = {float32: Float32Array, int32: Int32Array, bool: Uint8Array};

async function post(path, body) {
  const r = await fetch(path, {method: 'POST', headers: {'Content-Type': 'application/json'},
                               body: JSON.stringify(body)});
  if (!r.ok) throw new Error(`POST ${path}: HTTP ${r.status}`);
}

function log(line) {
  document.getElementById('log').textContent += line + '\n';
}

function base64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

// What the backend runs on, or why it cannot run: the reason TF.js gives is often only a console
// warning, so warnings are collected while the backend is set.
async function probe(name) {
  if (name === 'webgpu') {
    if (!navigator.gpu) return {error: 'navigator.gpu is undefined (WebGPU is not exposed: Chromium needs --enable-unsafe-webgpu on Linux)'};
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return {error: 'navigator.gpu.requestAdapter() returned null (no WebGPU adapter)'};
    const i = adapter.info || {};
    return {detail: `WebGPU adapter: ${[i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' / ') || 'no info'}`};
  }
  if (name === 'webgl') {
    const gl = document.createElement('canvas').getContext('webgl2');
    if (!gl) return {error: 'canvas.getContext("webgl2") returned null (no WebGL 2)'};
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    return {detail: `WebGL 2: ${ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER)}`};
  }
  return {detail: name === 'cpu' ? 'pure-JS CPU backend' : ''};
}

async function setBackend(name) {
  const found = await probe(name);
  if (found.error) return found;
  const warnings = [];
  const warn = console.warn, error = console.error;
  console.warn = (...a) => { warnings.push(a.join(' ')); warn(...a); };
  console.error = (...a) => { warnings.push(a.join(' ')); error(...a); };
  let ok = false;
  try {
    ok = await tf.setBackend(name);
  } catch (e) {
    warnings.push(String((e && e.message) || e));
  } finally {
    console.warn = warn;
    console.error = error;
  }
  if (!ok || tf.getBackend() !== name) {
    return {error: `tf.setBackend('${name}') failed (backend now ${tf.getBackend()}): ${warnings.join(' | ') || 'no reason given'}`};
  }
  await tf.ready();
  let detail = found.detail;
  if (name === 'webgl') {
    // Without float32 render targets TF.js falls back to half floats: not the float32 we compare.
    if (!tf.env().getBool('WEBGL_RENDER_FLOAT32_ENABLED')) {
      return {error: `${detail}: WEBGL_RENDER_FLOAT32_ENABLED is false (TF.js would compute in half floats)`};
    }
    detail += '; float32 render targets';
  }
  return {detail};
}

async function readInput(spec) {
  const r = await fetch(spec.url);
  if (!r.ok) throw new Error(`GET ${spec.url}: HTTP ${r.status}`);
  const Ctor = ARRAYS[spec.dtype];
  if (!Ctor) throw new Error(`unsupported input dtype ${spec.dtype}`);
  return tf.tensor(new Ctor(await r.arrayBuffer()), spec.shape, spec.dtype);
}

async function runJob(job) {
  const model = job.kind === 'layers'
    ? await tf.loadLayersModel(job.model_url, {strict: true})
    : await tf.loadGraphModel(job.model_url);
  const tensors = [];
  for (const spec of job.inputs) tensors.push(await readInput(spec));
  try {
    const feed = tfjsCommon.buildFeed(model, job.kind, job.inputs, tensors);
    let out;
    if (job.kind === 'layers') out = model.predict(feed);
    else if (job.outputs) out = await model.executeAsync(feed, job.outputs);
    else out = await model.executeAsync(feed);
    if (!Array.isArray(out)) out = out instanceof tf.Tensor ? [out] : Object.keys(out).map((k) => out[k]);
    const outputs = [];
    for (const t of out) {
      const data = await t.data();
      const bytes = t.dtype === 'bool' ? Uint8Array.from(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      outputs.push({dtype: t.dtype, shape: t.shape, data: base64(bytes)});
    }
    tf.dispose(out);
    return outputs;
  } finally {
    tf.dispose(tensors);
    model.dispose();
  }
}

async function main() {
  const spec = await (await fetch('/jobs.json')).json();
  for (const backend of spec.backends) {
    const set = await setBackend(backend);
    await post('/backend', {backend, ok: !set.error, ...set});
    log(`${backend}: ${set.error || set.detail}`);
    if (set.error) continue;
    for (let j = 0; j < spec.jobs.length; j++) {
      let result;
      try {
        result = {ok: true, outputs: await runJob(spec.jobs[j])};
      } catch (e) {
        result = {ok: false, error: String((e && e.message) || e)};
      }
      await post('/result', {backend, job: j, ...result});
      log(`${backend} job ${j}: ${result.ok ? 'ok' : result.error}`);
    }
  }
  await post('/done', {});
}

main().catch((e) => reportFatal((e && e.stack) || e));
