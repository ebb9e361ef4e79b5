// Background removal off the main thread, through onnxruntime-web (WebAssembly), both
// served by Feather itself. The models come from GET /api/model, streamed so the page can
// show their download progress; one session per variant is kept for the next images.
//
// MODNet (variants full and quantized) is asked for first. When it cannot be had (the
// server has no network, say), the bundled U²-Netp (variant lite) is used instead for the
// rest of the page's life, and the page is told which model it got and why.
import * as ort from "/vendor/ort/ort.wasm.min.mjs";

ort.env.wasm.wasmPaths = "/vendor/ort/";
// Threads need a cross-origin-isolated page; one thread works everywhere.
ort.env.wasm.numThreads = 1;

const FALLBACK = "lite";
const NAMES = {
  full: "MODNet (full precision)",
  quantized: "MODNet (quantized)",
  lite: "U²-Netp (bundled)",
};

// ---------------------------------------------------------------- each model's own processing

const MODNET_REF_SIZE = 512; // the size MODNet was trained around

// MODNet: any size, a multiple of 32. Its reference rule: the shorter side to 512 when
// both sides are smaller or both larger, the aspect ratio kept.
function modnetSize(width, height) {
  let w = width;
  let h = height;
  if (Math.max(w, h) < MODNET_REF_SIZE || Math.min(w, h) > MODNET_REF_SIZE) {
    if (w >= h) {
      h = MODNET_REF_SIZE;
      w = Math.round((width / height) * MODNET_REF_SIZE);
    } else {
      w = MODNET_REF_SIZE;
      h = Math.round((height / width) * MODNET_REF_SIZE);
    }
  }
  return { w: Math.max(32, w - (w % 32)), h: Math.max(32, h - (h % 32)) };
}

// MODNet: RGB normalised to [-1, 1], planar (CHW).
function modnetInput(rgba, plane) {
  const input = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    input[i] = rgba[4 * i] / 127.5 - 1;
    input[plane + i] = rgba[4 * i + 1] / 127.5 - 1;
    input[2 * plane + i] = rgba[4 * i + 2] / 127.5 - 1;
  }
  return input;
}

// MODNet's matte is already an alpha in 0..1.
function clampedMatte(matte) {
  return (i) => Math.min(1, Math.max(0, matte[i]));
}

// U²-Netp, as its authors feed it: RGB divided by the image's largest value, then
// ImageNet's mean and standard deviation, planar (CHW).
const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

function imagenetInput(rgba, plane) {
  let max = 0;
  for (let i = 0; i < plane; i++) {
    max = Math.max(max, rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]);
  }
  const scale = 1 / Math.max(max, 1e-6);
  const input = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      input[c * plane + i] = (rgba[4 * i + c] * scale - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
    }
  }
  return input;
}

// U²-Netp's saliency map is scaled to 0..1 between its own minimum and maximum.
function minMaxMatte(matte) {
  let low = Infinity;
  let high = -Infinity;
  for (const v of matte) {
    if (v < low) low = v;
    if (v > high) high = v;
  }
  const range = Math.max(high - low, 1e-6);
  return (i) => (matte[i] - low) / range;
}

const PROCESSING = {
  modnet: { size: modnetSize, input: modnetInput, matte: clampedMatte },
  u2netp: { size: () => ({ w: 320, h: 320 }), input: imagenetInput, matte: minMaxMatte },
};
const FAMILY = { full: "modnet", quantized: "modnet", lite: "u2netp" };

// ---------------------------------------------------------------- loading

const sessions = new Map(); // variant -> Promise<InferenceSession>
const fallenBack = new Map(); // variant asked for -> why it could not be had

function post(message) {
  self.postMessage(message);
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error && typeof body.error === "object") return body.error.message;
    if (body && body.message) return body.message;
  } catch { /* not JSON */ }
  return `The model could not be loaded (HTTP ${response.status}).`;
}

async function fetchModel(variant) {
  const response = await fetch(`/api/model?variant=${encodeURIComponent(variant)}`);
  if (!response.ok) {
    const error = new Error(await errorMessage(response));
    error.status = response.status; // the page tells the user why in its own words
    throw error;
  }
  const total = Number(response.headers.get("Content-Length")) || 0;
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  post({ type: "model-progress", variant, name: NAMES[variant], loaded, total });
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    post({ type: "model-progress", variant, name: NAMES[variant], loaded, total });
  }
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

function session(variant) {
  if (!sessions.has(variant)) {
    const loading = (async () => {
      const bytes = await fetchModel(variant);
      post({ type: "model-init", variant, name: NAMES[variant] });
      return ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
    })();
    // A failed load is not kept: the next attempt tries again.
    loading.catch(() => sessions.delete(variant));
    sessions.set(variant, loading);
  }
  return sessions.get(variant);
}

// The model for `asked`: itself, or the bundled one when it cannot be had. Tells the
// page which one it is.
async function model(asked) {
  let variant = asked in NAMES ? asked : FALLBACK;
  if (variant !== FALLBACK && !fallenBack.has(variant)) {
    try {
      const found = await session(variant);
      post({ type: "model-ready", variant, name: NAMES[variant], asked });
      return { variant, session: found };
    } catch (error) {
      fallenBack.set(variant, { message: String(error.message || error), status: error.status || 0 });
    }
  }
  const why = fallenBack.get(variant);
  variant = FALLBACK;
  const found = await session(variant);
  post({ type: "model-ready", variant, name: NAMES[variant], asked, askedName: NAMES[asked],
    reason: why && why.message, reasonStatus: why && why.status });
  return { variant, session: found };
}

// ---------------------------------------------------------------- one image

function canvas2d(w, h) {
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  return { canvas, ctx };
}

async function removeBackground(blob, asked) {
  let chosen;
  try {
    chosen = await model(asked);
  } catch (error) {
    post({ type: "model-error", variant: asked, message: String(error.message || error) });
    throw error;
  }
  const { variant, session: found } = chosen;
  const processing = PROCESSING[FAMILY[variant]];
  const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image",
    premultiplyAlpha: "none", colorSpaceConversion: "none" });
  const { width, height } = bitmap;
  const { w, h } = processing.size(width, height);

  const small = canvas2d(w, h);
  small.ctx.drawImage(bitmap, 0, 0, w, h);
  const plane = w * h;
  const input = processing.input(small.ctx.getImageData(0, 0, w, h).data, plane);
  const feeds = { [found.inputNames[0]]: new ort.Tensor("float32", input, [1, 3, h, w]) };
  const output = found.outputNames[0]; // U²-Netp has seven; the first is the fused one
  const results = await found.run(feeds, [output]);
  const alphaAt = processing.matte(results[output].data);

  // The matte as a grey image, scaled back to the original size by the canvas.
  const matteImage = new ImageData(w, h);
  for (let i = 0; i < plane; i++) {
    const v = Math.round(alphaAt(i) * 255);
    matteImage.data[4 * i] = v;
    matteImage.data[4 * i + 1] = v;
    matteImage.data[4 * i + 2] = v;
    matteImage.data[4 * i + 3] = 255;
  }
  small.ctx.putImageData(matteImage, 0, 0);
  const full = canvas2d(width, height);
  full.ctx.drawImage(small.canvas, 0, 0, width, height);
  const alpha = full.ctx.getImageData(0, 0, width, height).data;
  full.ctx.clearRect(0, 0, width, height);
  full.ctx.drawImage(bitmap, 0, 0);
  const pixels = full.ctx.getImageData(0, 0, width, height);
  for (let i = 0; i < width * height; i++) {
    // The original's own transparency is kept where it is more transparent.
    pixels.data[4 * i + 3] = Math.min(pixels.data[4 * i + 3], alpha[4 * i]);
  }
  full.ctx.putImageData(pixels, 0, 0);
  bitmap.close();
  const png = await full.canvas.convertToBlob({ type: "image/png" });
  return { blob: png, model: { variant, name: NAMES[variant] } };
}

self.onmessage = async (event) => {
  const { type, id, blob, variant } = event.data;
  if (type === "load") {
    try {
      await model(variant);
    } catch (error) {
      post({ type: "model-error", variant, message: String(error.message || error) });
    }
    return;
  }
  if (type !== "remove") return;
  try {
    const result = await removeBackground(blob, variant);
    post({ type: "done", id, ...result });
  } catch (error) {
    post({ type: "error", id, message: String(error.message || error) });
  }
};
