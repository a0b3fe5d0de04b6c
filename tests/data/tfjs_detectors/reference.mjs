// TFJS reference for tests/test_tfjs_nanodet.py: what @vladmandic/human itself computes from
// the same RGB pixels, on tfjs's wasm backend, offline.
//
//   node tests/data/tfjs_detectors/reference.mjs MODELS_DIR WORK_DIR
//
// WORK_DIR/images.json lists [{"name", "width", "height"}]; WORK_DIR/NAME.rgb holds that image's
// raw RGB bytes (written by the Python side, so both sides start from identical pixels).
// For each model (nanodet, centernet) and image this writes:
//   NAME.MODEL.input.f32      the model input as Human prepares it (float32, little-endian)
//   NAME.MODEL.OUTPUT.f32     each raw output tensor of model.execute on that input
//   human.json                {"versions", "config", "models": {MODEL: {"outputs": {name: shape},
//                             "detections": {NAME: [{class, label, score, boxRaw}]}}}}:
//                             Human's object module's results (human.detect with only object on).
// Uses vidsift/local/human/node_modules (tfjs 4.22 + human 3.3.6), as the face sidecar does.
import { createRequire } from 'node:module';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const humanRoot = path.resolve(here, '..', '..', '..', 'vidsift', 'local', 'human');
const require = createRequire(path.join(humanRoot, 'package.json'));
const [modelsDir, workDir] = process.argv.slice(2).map((p) => path.resolve(p));

globalThis.fetch = async (url) => {
  const href = typeof url === 'string' ? url : url.url ?? String(url);
  if (!href.startsWith('file://')) throw new Error(`network fetch refused: ${href}`);
  const body = await readFile(fileURLToPath(href));
  return new Response(body, { status: 200, headers: { 'content-type': href.endsWith('.json') ? 'application/json' : 'application/octet-stream' } });
};
for (const level of ['log', 'info', 'warn', 'debug']) console[level] = (...a) => process.stderr.write(`${a.join(' ')}\n`);

const humanDir = path.join(humanRoot, 'node_modules', '@vladmandic', 'human');
const wasmDir = path.join(humanRoot, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
const { Human } = require(path.join(humanDir, 'dist', 'human.node-wasm.js'));

const OBJECT = { minConfidence: 0.2, iouThreshold: 0.4, maxDetected: 100, skipFrames: 0, skipTime: 0 };
const images = JSON.parse(await readFile(path.join(workDir, 'images.json'), 'utf8'));
const report = { versions: {}, config: OBJECT, models: {} };

for (const name of ['nanodet', 'centernet']) {
  const human = new Human({
    backend: 'wasm', wasmPath: `${wasmDir}${path.sep}`, modelBasePath: `${pathToFileURL(modelsDir).href}/`,
    debug: false, async: false, warmup: 'none', cacheSensitivity: 0, skipAllowed: false,
    filter: { enabled: false }, gesture: { enabled: false }, face: { enabled: false }, body: { enabled: false },
    hand: { enabled: false }, segmentation: { enabled: false },
    object: { enabled: true, modelPath: `${name}.json`, ...OBJECT },
  });
  await human.load();
  const tf = human.tf;
  report.versions = { human: human.version, tfjs: tf.version_core, backend: tf.getBackend() };
  const model = human.models.models[name];
  const entry = { outputs: {}, detections: {} };
  for (const image of images) {
    const rgb = await readFile(path.join(workDir, `${image.name}.rgb`));
    const pixels = tf.tensor(new Uint8Array(rgb), [1, image.height, image.width, 3], 'int32');
    const input = tf.cast(pixels, 'float32');
    const size = model.inputs[0].shape;
    let prepared;
    if (name === 'nanodet') { // as human/src/object/nanodet.ts predict()
      prepared = tf.transpose(tf.div(tf.image.resizeBilinear(input, [size[2], size[3]], false), 255), [0, 3, 1, 2]);
    } else { // as human/src/object/centernet.ts predict()
      prepared = tf.image.resizeBilinear(input, [size[1], size[2]]);
    }
    await writeFile(path.join(workDir, `${image.name}.${name}.input.f32`), Buffer.from((await prepared.data()).buffer));
    const names = model.outputs.map((o) => o.name);
    let outs = model.execute(prepared, names);
    if (!Array.isArray(outs)) outs = [outs];
    for (let i = 0; i < names.length; i++) {
      entry.outputs[names[i]] = outs[i].shape;
      const safe = names[i].replace(/[^A-Za-z0-9_]+/g, '_');
      await writeFile(path.join(workDir, `${image.name}.${name}.${safe}.f32`), Buffer.from((await outs[i].data()).buffer));
    }
    const result = await human.detect(input);
    entry.detections[image.name] = result.object.map((o) => ({ class: o.class, label: o.label, score: o.score, boxRaw: o.boxRaw }));
    tf.dispose([pixels, input, prepared, ...outs]);
  }
  report.models[name] = entry;
}
await writeFile(path.join(workDir, 'human.json'), JSON.stringify(report, null, 1));
