// Background removal off the main thread: MODNet through onnxruntime-web (WebAssembly),
// both served by Feather itself. The model comes from GET /api/model, streamed so the
// page can show its download progress; one session per variant is kept for the next
// images.
import * as ort from "/vendor/ort/ort.wasm.min.mjs";

ort.env.wasm.wasmPaths = "/vendor/ort/";
// Threads need a cross-origin-isolated page; one thread works everywhere.
ort.env.wasm.numThreads = 1;

const MODNET_REF_SIZE = 512; // the size MODNet was trained around
const sessions = new Map(); // variant -> Promise<InferenceSession>

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
  if (!response.ok) throw new Error(await errorMessage(response));
  const total = Number(response.headers.get("Content-Length")) || 0;
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  post({ type: "model-progress", variant, loaded, total });
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    post({ type: "model-progress", variant, loaded, total });
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
      post({ type: "model-init", variant });
      const created = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
      post({ type: "model-ready", variant, bytes: bytes.length });
      return created;
    })();
    // A failed load is not cached: the next image tries again.
    loading.catch(() => sessions.delete(variant));
    sessions.set(variant, loading);
  }
  return sessions.get(variant);
}

// The model's input size: fixed dimensions when the model has them, else MODNet's
// reference rule (shorter side to 512 when both sides are smaller or both larger),
// rounded down to a multiple of 32.
function inputSize(model, width, height) {
  const meta = model.inputMetadata && model.inputMetadata[0];
  const shape = meta && meta.shape;
  if (shape && Number.isInteger(shape[2]) && Number.isInteger(shape[3]) && shape[2] > 0) {
    return { w: shape[3], h: shape[2] };
  }
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

function canvas2d(w, h) {
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  return { canvas, ctx };
}

async function removeBackground(blob, variant) {
  const model = await session(variant);
  const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image",
    premultiplyAlpha: "none", colorSpaceConversion: "none" });
  const { width, height } = bitmap;
  const { w, h } = inputSize(model, width, height);

  // RGB, normalised to [-1, 1] as MODNet expects, planar (CHW).
  const small = canvas2d(w, h);
  small.ctx.drawImage(bitmap, 0, 0, w, h);
  const rgba = small.ctx.getImageData(0, 0, w, h).data;
  const plane = w * h;
  const input = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    input[i] = rgba[4 * i] / 127.5 - 1;
    input[plane + i] = rgba[4 * i + 1] / 127.5 - 1;
    input[2 * plane + i] = rgba[4 * i + 2] / 127.5 - 1;
  }
  const feeds = { [model.inputNames[0]]: new ort.Tensor("float32", input, [1, 3, h, w]) };
  const results = await model.run(feeds);
  const matte = results[model.outputNames[0]].data;

  // The matte as a grey image, scaled back to the original size by the canvas.
  const matteImage = new ImageData(w, h);
  for (let i = 0; i < plane; i++) {
    const v = Math.round(Math.min(1, Math.max(0, matte[i])) * 255);
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
  return full.canvas.convertToBlob({ type: "image/png" });
}

self.onmessage = async (event) => {
  const { type, id, blob, variant } = event.data;
  if (type === "load") {
    try {
      await session(variant);
    } catch (error) {
      post({ type: "model-error", variant, message: String(error.message || error) });
    }
    return;
  }
  if (type !== "remove") return;
  try {
    const result = await removeBackground(blob, variant);
    post({ type: "done", id, blob: result });
  } catch (error) {
    post({ type: "error", id, message: String(error.message || error) });
  }
};
