// The page's side of background removal: one module Web Worker (bg-worker.js), started
// on first use, and a promise per image. The worker asks for MODNet and falls back to the
// bundled U²-Netp when MODNet cannot be had; every answer says which model it used.

let worker = null;
let nextId = 1;
const pending = new Map(); // id -> {resolve, reject}
const listeners = new Set();

function start() {
  if (worker) return worker;
  worker = new Worker(new URL("./bg-worker.js", import.meta.url), { type: "module" });
  worker.onmessage = (event) => {
    const message = event.data;
    if (message.type === "done" || message.type === "error") {
      const waiting = pending.get(message.id);
      pending.delete(message.id);
      if (!waiting) return;
      if (message.type === "done") waiting.resolve({ blob: message.blob, model: message.model });
      else waiting.reject(new Error(message.message));
      return;
    }
    for (const listener of listeners) listener(message);
  };
  worker.onerror = (event) => {
    const error = new Error(`Background removal could not start: ${event.message || "worker error"}`);
    for (const waiting of pending.values()) waiting.reject(error);
    pending.clear();
    for (const listener of listeners) listener({ type: "model-error", message: error.message });
    worker = null;
  };
  return worker;
}

// Model events, each with the variant and the name of its model: model-progress
// {loaded, total}, model-init, model-ready {asked, and askedName and reason when the
// bundled model stands in for the one asked for}, model-error {message}.
export function onModelEvent(listener) {
  listeners.add(listener);
}

export function preloadModel(variant) {
  start().postMessage({ type: "load", variant });
}

// Resolves {blob, model}: a PNG of the image with its background made transparent, and
// the model that made it ({variant, name}), which may be the bundled one.
export function removeBackground(blob, variant) {
  const id = nextId++;
  const promise = new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
  start().postMessage({ type: "remove", id, blob, variant });
  return promise;
}
