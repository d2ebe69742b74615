// Shared by predict.js (Node), tools/bench_tfjs.js (Node) and browser_predict.js (the page that
// tests/browser_harness.py serves): loaded with require() in Node, with a <script> tag in the
// browser (as `tfjsCommon`).
(function (root, factory) {
  if (typeof module === 'object' && module.exports) module.exports = factory();
  else root.tfjsCommon = factory();
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  // A model folder's model.json, or a model's JSON file itself (any name: published packages
  // ship several models in one folder, e.g. movenet-lightning.json + movenet-lightning.bin).
  function modelJson(path, model) {
    return model.endsWith('.json') ? model : path.join(model, 'model.json');
  }

  // Model folder (or JSON file) -> TF.js ModelArtifacts, reading the JSON and its shards from
  // disk (Node: pass its fs and path modules).
  function fileHandler(fs, path, model) {
    const file = modelJson(path, model);
    const modelDir = path.dirname(file);
    return {
      load: async () => {
        const json = JSON.parse(fs.readFileSync(file, 'utf8'));
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

  // What a model is fed: a {name: tensor} map when every input spec is named (a layers model
  // takes them in its inputNames order), else the tensors in order; one tensor alone.
  function buildFeed(model, kind, specs, tensors) {
    let feed;
    if (specs.every((s) => s.name != null)) {
      feed = {};
      specs.forEach((s, i) => { feed[s.name] = tensors[i]; });
      if (kind === 'layers') {
        const names = model.inputNames;
        const missing = names.filter((n) => !(n in feed));
        if (missing.length) throw new Error(`missing inputs ${missing} (model inputs: ${names})`);
        feed = names.map((n) => feed[n]);
      }
    } else {
      feed = tensors;
    }
    return Array.isArray(feed) && feed.length === 1 ? feed[0] : feed;
  }

  return {fileHandler, buildFeed, modelJson};
});
