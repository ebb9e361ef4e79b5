// The upload form: files in (pick, drop, paste), a live preview per file as the options
// change (mode=preview), downloads one by one or as a ZIP (mode=final).
import { Aborted, ApiError, compress, compressWithAi } from "./api.js";
import { onModelEvent, preloadModel, removeBackground } from "./background.js";
import { uniqueNames, zipBlobs } from "./zip.js";

const $ = (selector, root = document) => root.querySelector(selector);
const form = $("#options");
const list = $("#files");
const items = [];
let nextId = 1;
let previewsNeedKey = false;

// ---------------------------------------------------------------- formatting

const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const sizeFormat = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined || Number.isNaN(bytes)) return "–";
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1_000_000) return `${sizeFormat.format(bytes / 1000)} KB`;
  return `${sizeFormat.format(bytes / 1_000_000)} MB`;
}

function formatSaving(original, output) {
  if (!original || output === null || output === undefined) return "–";
  const change = (1 - output / original) * 100;
  if (change >= 0) return `${numberFormat.format(change)} % smaller`;
  return `${numberFormat.format(-change)} % larger`;
}

const FORMAT_NAMES = { jpeg: "JPEG", png: "PNG", webp: "WebP", avif: "AVIF", gif: "GIF" };

// ---------------------------------------------------------------- options

const EDIT_DEFAULTS = { rotate: "0", brightness: "1", contrast: "1", saturation: "1", blur: "0" };
const CHECKS = ["flip", "flop", "grayscale", "sharpen"];

function value(id) {
  return $(`#${id}`).value.trim();
}

// [name, value] pairs of the Feather dialect; only what differs from the defaults.
// quality: the slider's number, or the visual-quality level chosen instead of it.
function quality() {
  return value("visualQuality") || value("quality");
}

function featherFields() {
  const fields = [["outputFormat", value("outputFormat")], ["quality", quality()]];
  for (const id of ["maxWidth", "maxHeight", "targetMB"]) if (value(id)) fields.push([id, value(id)]);
  fields.push(["stripMetadata", $("#stripMetadata").checked ? "true" : "false"]);
  for (const [id, fallback] of Object.entries(EDIT_DEFAULTS)) {
    if (value(id) && Number(value(id)) !== Number(fallback)) fields.push([id, value(id)]);
  }
  for (const id of CHECKS) if ($(`#${id}`).checked) fields.push([id, "true"]);
  const crop = ["cropX", "cropY", "cropWidth", "cropHeight"];
  if (crop.some((id) => value(id))) for (const id of crop) fields.push([id, value(id)]);
  const watermark = $("#watermarkFile").files[0];
  if (watermark) {
    fields.push(["watermarkFile", watermark]);
    for (const id of ["watermarkScale", "watermarkOpacity", "watermarkPosition"]) {
      fields.push([id, value(id)]);
    }
  }
  return fields;
}

function aiWanted() {
  return Boolean(value("apiKey")) && ($("#autoAltText").checked || $("#autoRenameSEO").checked);
}

// The FluxImage dialect for /api/batch: `format` instead of outputFormat (no "auto":
// the format the preview chose), quality within its 40-100.
function fluxFields(item) {
  const fields = featherFields().filter(([name]) => name !== "outputFormat" && name !== "quality");
  let format = value("outputFormat");
  if (format === "auto") format = (item.preview && item.preview.facts.format) || "webp";
  fields.push(["format", format === "jpeg" ? "jpg" : format]);
  fields.push(["quality", value("visualQuality") ||
    String(Math.min(100, Math.max(40, Number(value("quality")))))]);
  if ($("#autoAltText").checked) fields.push(["autoAltText", "true"]);
  if ($("#autoRenameSEO").checked) fields.push(["autoRenameSEO", "true"]);
  fields.push(["language", value("language")]);
  if (value("seoKeywords")) fields.push(["seoKeywords", value("seoKeywords")]);
  return fields;
}

let watermarkStamp = 0;
function optionsKey() {
  const fields = featherFields().map(([k, v]) => [k, v instanceof File ? `file:${watermarkStamp}` : v]);
  const ai = aiWanted() ? ["autoAltText", "autoRenameSEO", "language", "seoKeywords"]
    .map((id) => ($(`#${id}`).type === "checkbox" ? $(`#${id}`).checked : value(id))) : null;
  return JSON.stringify([fields, backgroundKey(), ai]);
}

function backgroundKey() {
  return $("#removeBackground").checked ? value("modelVariant") : "";
}

// ---------------------------------------------------------------- a small queue

// At most two requests at once: the server has a few workers shared by everyone.
const MAX_PARALLEL = 2;
let running = 0;
const waiting = [];

function slot() {
  if (running < MAX_PARALLEL) {
    running++;
    return Promise.resolve();
  }
  return new Promise((resolve) => waiting.push(resolve));
}

function release() {
  const next = waiting.shift();
  if (next) next();
  else running--;
}

async function queued(task) {
  await slot();
  try {
    return await task();
  } finally {
    release();
  }
}

// ---------------------------------------------------------------- background removal

// The bytes sent for an item: the original, or the original with its background removed.
async function sourceOf(item) {
  const variant = backgroundKey();
  if (!variant) return item.file;
  if (!item.cutouts.has(variant)) {
    setMessage(item, "Removing the background…");
    const cutout = removeBackground(item.file, variant).then(({ blob, model }) => {
      item.els.card.dataset.backgroundModel = model.variant; // may be the bundled stand-in
      return blob;
    });
    cutout.catch(() => item.cutouts.delete(variant));
    item.cutouts.set(variant, cutout);
  }
  return item.cutouts.get(variant);
}

function uploadName(item, source) {
  if (source === item.file) return item.file.name;
  const stem = item.file.name.replace(/\.[^.]+$/, "");
  return `${stem}.png`;
}

const modelStatus = $("#model-status");
const modelLabel = $("#model-label");
const modelProgress = $("#model-progress");
onModelEvent((event) => {
  modelStatus.hidden = false;
  if (event.type === "model-progress") {
    const mb = (n) => numberFormat.format(n / 1_000_000);
    if (event.total) {
      modelProgress.max = event.total;
      modelProgress.value = event.loaded;
      modelLabel.textContent = `Loading ${event.name}: ${mb(event.loaded)} of ${mb(event.total)} MB`;
    } else {
      modelProgress.removeAttribute("value");
      modelLabel.textContent = `Loading ${event.name}: ${mb(event.loaded)} MB`;
    }
  } else if (event.type === "model-init") {
    modelLabel.textContent = `Starting ${event.name}…`;
  } else if (event.type === "model-ready") {
    modelProgress.max = 1;
    modelProgress.value = 1;
    modelStatus.dataset.model = event.variant;
    // Which model cuts the images out, and why when it is not the one asked for.
    modelLabel.textContent = event.reason
      ? `${event.askedName} could not be loaded (${event.reason}); backgrounds are removed with ${event.name} instead.`
      : `Backgrounds are removed with ${event.name}.`;
  } else if (event.type === "model-error") {
    modelProgress.value = 0;
    modelLabel.textContent = `The model could not be loaded: ${event.message}`;
  }
  modelStatus.dataset.state = event.type;
});

// ---------------------------------------------------------------- cards

function setMessage(item, text, kind = "info") {
  item.els.message.textContent = text;
  item.els.card.classList.toggle("failed", kind === "error");
}

function setProgress(item, fraction) {
  item.els.progress.hidden = fraction === null;
  if (fraction !== null) item.els.progress.value = Math.round(fraction * 100);
}

function showResult(item, result, stage) {
  const { facts } = result;
  if (item.afterUrl) URL.revokeObjectURL(item.afterUrl);
  item.afterUrl = URL.createObjectURL(result.blob);
  item.els.after.src = item.afterUrl;
  item.els.compare.dataset.state = "ready";
  const format = FORMAT_NAMES[facts.format] || facts.format || "";
  const original = item.file.size;
  item.els.result.textContent = `${formatBytes(facts.outputBytes)}${format ? ` ${format}` : ""}`;
  item.els.result.dataset.stage = stage;
  item.els.result.title = stage === "preview"
    ? "Preview encoding; the download is encoded with full effort" : "The downloaded file";
  item.els.saving.textContent = formatSaving(original, facts.outputBytes);
  if (facts.width && facts.height) item.els.dimensions.textContent = `${facts.width} × ${facts.height} px`;
  item.els.card.dataset.stage = stage;
  updateSummary();
}

function addCard(file) {
  const fragment = $("#file-card").content.cloneNode(true);
  const card = fragment.querySelector(".card");
  const els = {
    card,
    compare: $(".compare", card),
    before: $(".before", card),
    after: $(".after", card),
    divider: $(".divider", card),
    name: $(".name", card),
    progress: $(".progress", card),
    original: $(".original", card),
    result: $(".result", card),
    saving: $(".saving", card),
    dimensions: $(".dimensions", card),
    altText: $(".alt-text", card),
    message: $(".message", card),
    download: $(".download", card),
    remove: $(".remove", card),
  };
  const item = { id: nextId++, file, els, cutouts: new Map(), preview: null, final: null,
    controller: null, error: null, afterUrl: null, beforeUrl: URL.createObjectURL(file) };
  card.dataset.id = String(item.id);
  els.name.textContent = file.name;
  els.name.title = file.name;
  els.original.textContent = formatBytes(file.size);
  els.before.src = item.beforeUrl;
  els.before.alt = `${file.name}, original`;
  els.after.alt = `${file.name}, compressed`;
  els.divider.setAttribute("aria-label", `Compare original and result of ${file.name}`);
  els.divider.setAttribute("aria-valuetext", "50 % original");
  els.divider.addEventListener("input", () => {
    els.compare.style.setProperty("--split", `${els.divider.value}%`);
    els.divider.setAttribute("aria-valuetext", `${els.divider.value} % original`);
  });
  els.download.setAttribute("aria-label", `Download ${file.name}`);
  els.remove.setAttribute("aria-label", `Remove ${file.name}`);
  els.download.addEventListener("click", () => downloadOne(item));
  els.remove.addEventListener("click", () => removeItem(item));
  list.append(card);
  items.push(item);
  return item;
}

function removeItem(item) {
  if (item.controller) item.controller.abort();
  URL.revokeObjectURL(item.beforeUrl);
  if (item.afterUrl) URL.revokeObjectURL(item.afterUrl);
  const index = items.indexOf(item);
  const focusNext = items[index + 1] || items[index - 1];
  items.splice(index, 1);
  item.els.card.remove();
  updateSummary();
  if (focusNext) focusNext.els.download.focus();
  else $("#pick").focus();
}

function updateSummary() {
  const done = items.filter((item) => (item.final || item.preview) && !item.error);
  const failed = items.filter((item) => item.error).length;
  $("#download-all").disabled = done.length === 0;
  $("#clear-all").disabled = items.length === 0;
  if (!items.length) {
    $("#summary").textContent = "No images yet.";
    return;
  }
  const before = done.reduce((sum, item) => sum + item.file.size, 0);
  const after = done.reduce((sum, item) => sum + (item.final || item.preview).facts.outputBytes, 0);
  let text = `${items.length} image${items.length === 1 ? "" : "s"}`;
  if (done.length) text += ` · ${formatBytes(before)} → ${formatBytes(after)} (${formatSaving(before, after)})`;
  if (failed) text += ` · ${failed} failed`;
  $("#summary").textContent = text;
}

// ---------------------------------------------------------------- work

async function refresh(item) {
  if (item.controller) item.controller.abort();
  const controller = new AbortController();
  item.controller = controller;
  const key = optionsKey();
  item.final = null;
  item.els.card.dataset.busy = "true";
  try {
    const source = await sourceOf(item);
    if (controller.signal.aborted) return;
    setMessage(item, "Waiting…");
    const result = await queued(async () => {
      if (controller.signal.aborted) throw new Aborted("aborted");
      setMessage(item, "Uploading…");
      setProgress(item, 0);
      const options = {
        mode: "preview", signal: controller.signal,
        onProgress: (fraction) => {
          setProgress(item, fraction);
          if (fraction >= 1) setMessage(item, "Compressing…");
        },
      };
      const key = value("apiKey");
      try {
        return await compress(source, uploadName(item, source), featherFields(),
          { ...options, apiKey: previewsNeedKey ? key : "" });
      } catch (error) {
        // A server that requires a key (REQUIRE_API_KEY) says 401: from then on the
        // previews carry it. Elsewhere they go without, and cost the key no credits.
        if (!(error instanceof ApiError) || error.status !== 401 || previewsNeedKey || !key) throw error;
        previewsNeedKey = true;
        return compress(source, uploadName(item, source), featherFields(), { ...options, apiKey: key });
      }
    });
    item.error = null;
    item.preview = { ...result, key };
    showResult(item, result, "preview");
    setMessage(item, "");
  } catch (error) {
    if (error instanceof Aborted || controller.signal.aborted) return;
    failed(item, error);
  } finally {
    if (item.controller === controller) {
      item.controller = null;
      setProgress(item, null);
      delete item.els.card.dataset.busy;
    }
  }
}

function failed(item, error) {
  item.error = error;
  item.preview = null;
  item.els.compare.dataset.state = "error";
  item.els.result.textContent = "–";
  item.els.saving.textContent = "–";
  setMessage(item, error.message || String(error), "error");
  updateSummary();
}

// The final encoding for the current options (made once, reused by both download paths).
async function finalOf(item) {
  const key = optionsKey();
  if (item.final && item.final.key === key) return item.final;
  const source = await sourceOf(item);
  const result = await queued(async () => {
    setMessage(item, "Preparing the download…");
    setProgress(item, 0);
    const options = { apiKey: value("apiKey"), onProgress: (f) => setProgress(item, f) };
    if (aiWanted()) return compressWithAi(source, uploadName(item, source), fluxFields(item), options);
    return compress(source, uploadName(item, source), featherFields(), { ...options, mode: "final" });
  }).finally(() => setProgress(item, null));
  item.final = { ...result, key, name: result.name || defaultName(item, result) };
  item.error = null;
  if (result.facts.format || result.facts.width) showResult(item, result, "final");
  else {
    item.els.result.textContent = formatBytes(result.facts.outputBytes);
    item.els.saving.textContent = formatSaving(item.file.size, result.facts.outputBytes);
    item.els.card.dataset.stage = "final";
  }
  if (result.altText !== undefined) {
    item.els.altText.hidden = !result.altText;
    item.els.altText.textContent = result.altText ? `Alt text: ${result.altText}` : "";
  }
  setMessage(item, `Ready: ${item.final.name}`);
  updateSummary();
  return item.final;
}

function defaultName(item, result) {
  const stem = item.file.name.replace(/\.[^.]+$/, "") || "image";
  const ext = { jpeg: "jpg" }[result.facts.format] || result.facts.format || "img";
  return `${stem}-compressed.${ext}`;
}

function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

async function downloadOne(item) {
  item.els.download.disabled = true;
  try {
    const result = await finalOf(item);
    save(result.blob, result.name);
  } catch (error) {
    if (!(error instanceof Aborted)) failed(item, error);
  } finally {
    item.els.download.disabled = false;
  }
}

async function downloadAll() {
  const button = $("#download-all");
  const status = $("#zip-status");
  const chosen = items.filter((item) => !item.error);
  button.disabled = true;
  let done = 0;
  status.textContent = `Preparing ${chosen.length} image${chosen.length === 1 ? "" : "s"}…`;
  const outcomes = await Promise.all(chosen.map(async (item) => {
    try {
      const result = await finalOf(item);
      done++;
      status.textContent = `Prepared ${done} of ${chosen.length}…`;
      return result;
    } catch (error) {
      if (!(error instanceof Aborted)) failed(item, error);
      return null;
    }
  }));
  const results = outcomes.filter(Boolean);
  if (!results.length) {
    status.textContent = "Nothing could be prepared; see the messages next to the images.";
    updateSummary();
    return;
  }
  const names = uniqueNames(results.map((r) => r.name));
  const zip = await zipBlobs(results.map((r, i) => ({ name: names[i], blob: r.blob })));
  save(zip, "feather-images.zip");
  const skipped = chosen.length - results.length;
  status.textContent = `ZIP ready: ${results.length} image${results.length === 1 ? "" : "s"}, ${formatBytes(zip.size)}`
    + (skipped ? ` (${skipped} failed)` : "") + ".";
  updateSummary();
}

// ---------------------------------------------------------------- input

function addFiles(fileList) {
  const files = [...fileList].filter((file) => file && file.size > 0);
  for (const file of files) refresh(addCard(file));
  if (files.length) updateSummary();
}

let debounce = null;
function optionsChanged() {
  for (const output of form.querySelectorAll("output[data-for]")) {
    const input = $(`#${output.dataset.for}`);
    output.textContent = input.step && input.step.includes(".") ? Number(input.value).toFixed(2) : input.value;
  }
  $("#quality-value").textContent = value("quality");
  $("#quality").disabled = Boolean(value("visualQuality"));
  clearTimeout(debounce);
  debounce = setTimeout(() => items.forEach(refresh), 350);
}

form.addEventListener("input", (event) => {
  if (["apiKey", "seoKeywords", "autoAltText", "autoRenameSEO", "language"].includes(event.target.id)) {
    for (const item of items) item.final = null; // the AI fields only change downloads
    return;
  }
  if (event.target.id === "watermarkFile") watermarkStamp++;
  optionsChanged();
});
form.addEventListener("change", (event) => {
  if (event.target.type === "checkbox" || event.target.tagName === "SELECT" || event.target.type === "file") {
    if (event.target.id === "removeBackground" || event.target.id === "modelVariant") {
      if ($("#removeBackground").checked) preloadModel(value("modelVariant"));
    }
  }
});
form.addEventListener("submit", (event) => event.preventDefault());

$("#reset-edits").addEventListener("click", () => {
  for (const [id, fallback] of Object.entries(EDIT_DEFAULTS)) $(`#${id}`).value = fallback;
  for (const id of CHECKS) $(`#${id}`).checked = false;
  for (const id of ["cropX", "cropY", "cropWidth", "cropHeight"]) $(`#${id}`).value = "";
  optionsChanged();
});
$("#clear-watermark").addEventListener("click", () => {
  $("#watermarkFile").value = "";
  watermarkStamp++;
  optionsChanged();
});

const picker = $("#file-input");
$("#pick").addEventListener("click", () => picker.click());
picker.addEventListener("change", () => {
  addFiles(picker.files);
  picker.value = "";
});
$("#download-all").addEventListener("click", () => downloadAll().finally(updateSummary));
$("#clear-all").addEventListener("click", () => {
  for (const item of [...items]) removeItem(item);
  $("#zip-status").textContent = "";
});

// Drop anywhere on the page.
let dragDepth = 0;
const hasFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
document.addEventListener("dragenter", (event) => {
  if (!hasFiles(event)) return;
  dragDepth++;
  document.body.classList.add("dragging");
});
document.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) document.body.classList.remove("dragging");
});
document.addEventListener("dragover", (event) => {
  if (hasFiles(event)) event.preventDefault();
});
document.addEventListener("drop", (event) => {
  if (!hasFiles(event)) return;
  event.preventDefault();
  dragDepth = 0;
  document.body.classList.remove("dragging");
  addFiles(event.dataTransfer.files);
});
document.addEventListener("paste", (event) => {
  const files = [...(event.clipboardData?.files || [])];
  if (files.length) {
    event.preventDefault();
    addFiles(files);
  }
});

updateSummary();
document.documentElement.dataset.ready = "true";
