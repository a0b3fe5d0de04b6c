// Face attributes for vidsift's local Rekognition, from @vladmandic/human's bundled models.
//
// Why a Node process: the only offline, MIT-licensed set of real age/gender/emotion/face-mesh
// weights found in a package registry ships as TensorFlow.js graph models inside the npm
// package. Python keeps detection (yuface) and talks to this process over stdin/stdout.
//
// Protocol (one request at a time, in order):
//   request  = uint32 big-endian N, N bytes of JSON {"id", "attributes": bool, "descriptor": bool,
//              "images": [{"width", "height"}, ...]},
//              then width*height*3 bytes of RGB for each image, in order.
//   response = one line of JSON {"id", "results": [[face, ...] per image]} or {"id", "error"}.
// First line written is {"ready": true, "versions": {...}} once the models are loaded and warm.
// Nothing but protocol lines goes to stdout; diagnostics go to stderr.

import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// stdout carries the protocol only: anything a library logs goes to stderr instead.
for (const level of ['log', 'info', 'warn', 'debug']) {
  console[level] = (...args) => process.stderr.write(`${args.map(String).join(' ')}\n`);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const humanDir = path.join(here, 'node_modules', '@vladmandic', 'human');
const wasmDir = path.join(here, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');

// tfjs fetches models with fetch(); Node's fetch has no file:// support, and nothing may come
// from the network here, so file:// URLs are served from disk and everything else is refused.
const realFetch = globalThis.fetch;
globalThis.fetch = async (url, init) => {
  const href = typeof url === 'string' ? url : url.url ?? String(url);
  if (href.startsWith('file://')) {
    const body = await readFile(fileURLToPath(href));
    return new Response(body, { status: 200, headers: { 'content-type': href.endsWith('.json') ? 'application/json' : 'application/octet-stream' } });
  }
  if (process.env.VIDSIFT_HUMAN_ALLOW_NETWORK === '1') return realFetch(url, init);
  throw new Error(`network fetch refused (offline sidecar): ${href}`);
};

// The package's exports map does not expose the wasm build under a usable name: load it by path.
const { Human } = require(path.join(humanDir, 'dist', 'human.node-wasm.js'));

const config = {
  backend: 'wasm',
  wasmPath: `${wasmDir}${path.sep}`,
  modelBasePath: `${pathToFileURL(path.join(humanDir, 'models')).href}/`,
  debug: false,
  async: false,
  warmup: 'none',
  // Human is built for video and reuses results between similar frames; every request here
  // is an unrelated image, so caching and frame skipping are off.
  cacheSensitivity: 0,
  skipAllowed: false,
  filter: { enabled: false },
  gesture: { enabled: false },
  face: {
    enabled: true,
    // return: the aligned face crop comes back so that faceres can be run here (see faceresOutputs).
    detector: { rotation: true, maxDetected: 1, minConfidence: 0.2, skipFrames: 0, skipTime: 0, return: true },
    mesh: { enabled: true },
    iris: { enabled: true, skipFrames: 0, skipTime: 0 },
    // Run by emotions() below: Human truncates the probabilities to 2 decimals, caps them at
    // 0.99 and drops zeros; Rekognition reports them whole.
    emotion: { enabled: false },
    // Run by faceresOutputs() below instead: Human keeps only the age point estimate and a rescaled
    // gender margin, but the model outputs a full age distribution and a gender probability.
    description: { enabled: false },
    antispoof: { enabled: false },
    liveness: { enabled: false },
    attention: { enabled: false },
  },
  body: { enabled: false },
  hand: { enabled: false },
  object: { enabled: false },
  segmentation: { enabled: false },
};

const human = new Human(config);
// Loaded in main(): Human does not load a model whose part is disabled.
let faceres = null;
let emotionModel = null;
// The bundled emotion model's classes, in output order (its input is 64x64 gray, as Human reads it).
const EMOTIONS = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'];

// MediaPipe face-mesh indices of the points vidsift reports as Rekognition landmarks.
// Left/right are as seen in the image (image-left first), matching yuface's order.
const MESH_POINTS = {
  leftEyeBrowLeft: 70, leftEyeBrowUp: 105, leftEyeBrowRight: 107,
  rightEyeBrowLeft: 336, rightEyeBrowUp: 334, rightEyeBrowRight: 300,
  leftEyeLeft: 33, leftEyeRight: 133, leftEyeUp: 159, leftEyeDown: 145,
  rightEyeLeft: 362, rightEyeRight: 263, rightEyeUp: 386, rightEyeDown: 374,
  noseLeft: 129, noseRight: 358, mouthUp: 0, mouthDown: 17,
  upperJawlineLeft: 127, midJawlineLeft: 172, chinBottom: 152, midJawlineRight: 397, upperJawlineRight: 356,
};

function gap(mesh, a, b) {
  return Math.abs(mesh[a][1] - mesh[b][1]);
}

// Age, gender and the identity descriptor from Human's faceres model, fed exactly as Human
// feeds it (the aligned face crop resized to the model's input, scaled to 0..255), keeping the
// raw outputs: age_pred is a softmax over ages 0..99 (so its quantiles are a real uncertainty
// band), gender_pred a sigmoid, P(male), and global_pooling/Mean the 1024-d face descriptor
// Human's own face matching compares (what the local IndexFaces/SearchFacesByImage store).
async function faceresOutputs(faceTensor, wantDescriptor) {
  const model = faceres;
  if (!model || !faceTensor) return null;
  const tf = human.tf;
  const [, h, w] = model.inputs[0].shape;
  const batched = faceTensor.rank === 3 ? tf.expandDims(faceTensor, 0) : faceTensor;
  const resized = tf.image.resizeBilinear(batched, [h, w], false);
  const input = tf.mul(resized, 255);
  if (batched !== faceTensor) tf.dispose(batched);
  const outputs = model.execute(input);
  try {
    const byName = Object.fromEntries(model.outputs.map((o, i) => [o.name, outputs[i]]));
    const male = (await byName['gender_pred/Sigmoid'].data())[0];
    const ages = Array.from(await byName['age_pred/Softmax'].data());
    const out = { pMale: male, ageDistribution: ages };
    if (wantDescriptor) out.descriptor = Array.from(await byName['global_pooling/Mean'].data());
    return out;
  } finally {
    tf.dispose([resized, input, ...outputs]);
  }
}

// Emotion probabilities from Human's emotion model, fed exactly as Human feeds it: the aligned
// face crop resized to 64x64, to gray with BT.601 weights, scaled to -1..1. Softmax output.
async function emotions(faceTensor) {
  if (!emotionModel || !faceTensor) return null;
  const tf = human.tf;
  const [, h, w, channels] = emotionModel.inputs[0].shape;
  if (channels !== 1) throw new Error(`unexpected emotion model input: ${emotionModel.inputs[0].shape}`);
  const scores = tf.tidy(() => {
    const batched = faceTensor.rank === 3 ? tf.expandDims(faceTensor, 0) : faceTensor;
    const resized = tf.image.resizeBilinear(batched, [h, w], false);
    const gray = tf.sum(tf.mul(resized, tf.tensor1d([0.2989, 0.587, 0.114])), 3, true);
    return emotionModel.execute(tf.mul(tf.sub(gray, 0.5), 2));
  });
  try {
    const data = await scores.data();
    return EMOTIONS.map((emotion, i) => ({ emotion, score: data[i] }));
  } finally {
    tf.dispose(scores);
  }
}

async function describe(face, attributes, descriptor) {
  const mesh = face.mesh ?? [];
  const res = attributes || descriptor ? await faceresOutputs(face.tensor, descriptor) : null;
  const ag = attributes ? res : null;
  const out = {
    score: face.score,
    boxScore: face.boxScore,
    faceScore: face.faceScore,
    box: face.box,
    pMale: ag?.pMale ?? null,
    ageDistribution: ag?.ageDistribution ?? null,
    emotion: attributes ? await emotions(face.tensor) : null,
    rotation: face.rotation?.angle ?? null,
    points: {},
    eyeOpenness: null,
    mouthOpenness: null,
  };
  if (descriptor) out.descriptor = res?.descriptor ?? null;
  if (mesh.length > 450) {
    for (const [name, idx] of Object.entries(MESH_POINTS)) out.points[name] = [mesh[idx][0], mesh[idx][1]];
    // Eyelid gap over a reference span around each eye: the ratio Human's own blink gesture uses
    // (blink below 0.2). Image-left eye first.
    out.eyeOpenness = [gap(mesh, 145, 159) / gap(mesh, 223, 230), gap(mesh, 374, 386) / gap(mesh, 443, 450)];
    // Inner-lip gap over face height (forehead 10 to chin 152), as in Human's "mouth N% open".
    out.mouthOpenness = gap(mesh, 13, 14) / gap(mesh, 10, 152);
    const iris = face.annotations ?? {};
    const pupil = (a) => (a && a[0] ? [a[0][0], a[0][1]] : null);
    const leftIris = pupil(iris.rightEyeIris); // Human names eyes from the subject's side
    const rightIris = pupil(iris.leftEyeIris);
    if (leftIris) out.points.leftPupil = leftIris;
    if (rightIris) out.points.rightPupil = rightIris;
  }
  return out;
}

// attributes=false: face mesh and iris only (pose, landmarks), for Rekognition's DEFAULT set.
// descriptor=true: also faceres's 1024-d identity descriptor (IndexFaces, SearchFacesByImage).
async function analyse(width, height, rgb, attributes = true, descriptor = false) {
  const tensor = human.tf.tensor3d(rgb, [height, width, 3], 'int32');
  const batched = human.tf.expandDims(tensor, 0);
  try {
    const result = await human.detect(batched);
    const faces = result.face ?? [];
    try {
      const described = [];
      for (const face of faces) described.push(await describe(face, attributes, descriptor));
      return described;
    } finally {
      human.tf.dispose(faces.map((f) => f.tensor).filter(Boolean));
    }
  } finally {
    human.tf.dispose([tensor, batched]);
  }
}

function write(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function main() {
  await human.load();
  faceres = await human.tf.loadGraphModel(`${config.modelBasePath}faceres.json`);
  emotionModel = await human.tf.loadGraphModel(`${config.modelBasePath}emotion.json`);
  // Run every model once on zeros so that the first real request does not pay for kernel setup
  // (a blank frame alone would stop at the detector: no face, no mesh/emotion/faceres run).
  for (const model of [...Object.values(human.models.models), faceres, emotionModel]) {
    if (!model?.inputs?.[0]?.shape) continue;
    const shape = model.inputs[0].shape.map((d) => (d > 0 ? d : 1));
    const zeros = human.tf.zeros(shape, model.inputs[0].dtype ?? 'float32');
    const out = model.execute(zeros);
    human.tf.dispose([zeros, ...(Array.isArray(out) ? out : [out])]);
  }
  await analyse(64, 64, new Uint8Array(64 * 64 * 3));
  write({ ready: true, versions: { human: human.version, tfjs: human.tf.version_core, backend: human.tf.getBackend() } });

  let buffer = Buffer.alloc(0);
  let busy = false;
  const pump = async () => {
    if (busy) return;
    busy = true;
    try {
      for (;;) {
        if (buffer.length < 4) break;
        const headerLen = buffer.readUInt32BE(0);
        if (buffer.length < 4 + headerLen) break;
        const header = JSON.parse(buffer.subarray(4, 4 + headerLen).toString('utf8'));
        const sizes = header.images.map((im) => im.width * im.height * 3);
        const total = 4 + headerLen + sizes.reduce((a, b) => a + b, 0);
        if (buffer.length < total) break;
        let offset = 4 + headerLen;
        const results = [];
        try {
          for (let i = 0; i < header.images.length; i++) {
            const { width, height } = header.images[i];
            const rgb = new Uint8Array(buffer.subarray(offset, offset + sizes[i]));
            offset += sizes[i];
            results.push(await analyse(width, height, rgb, header.attributes !== false, header.descriptor === true));
          }
          write({ id: header.id, results });
        } catch (err) {
          write({ id: header.id, error: String(err?.stack ?? err) });
        }
        buffer = buffer.subarray(total);
      }
    } finally {
      busy = false;
    }
  };
  process.stdin.on('data', (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    pump();
  });
  process.stdin.on('end', () => process.exit(0));
}

main().catch((err) => {
  process.stderr.write(`human sidecar failed: ${err?.stack ?? err}\n`);
  process.exit(1);
});
