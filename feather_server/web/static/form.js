// The upload form: files in (pick, drop, paste); a live preview for each card on screen
// as the options change (mode=preview, at most PREVIEW_SIDE pixels a side, sizes marked
// as estimates); downloads one by one or as a ZIP (mode=final, the real size shown from
// then on); a large comparison view with zoom and pan to 1:1 pixels.
//
// Requests go through one scheduler (scheduler.js): two at once, the user's own work
// first, and after a 429 they wait out Retry-After and go again by themselves. Only what
// an option changes is previewed again, and only for cards on screen: the others are
// previewed when they are scrolled to, or made final by a download.
import { Aborted, ApiError, compress, compressWithAi, probeModel } from "./api.js";
import { onModelEvent, preloadModel, removeBackground } from "./background.js";
import { ORIGINAL, PREVIEW, PREVIEWS, Scheduler, USER, WORK } from "./scheduler.js";
import { Viewer } from "./viewer.js";
import { uniqueNames, zipBlobs } from "./zip.js";

const $ = (selector, root = document) => root.querySelector(selector);
const form = $("#options");
const list = $("#files");
const items = [];
let nextId = 1;
let previewsNeedKey = false;

// Previews are made at most this many pixels wide and high (a card shows far fewer).
const PREVIEW_SIDE = 1024;
// Originals the browser cannot show (HEIC, TIFF) are made viewable by the server, as a
// lossless PNG at most this many pixels a side.
const ORIGINAL_SIDE = 1600;
// A photo's bytes grow like its pixels ** 0.85 when it is scaled (finer detail per pixel
// at the smaller size): how a reduced preview's size is scaled to an estimate.
const PIXEL_EXPONENT = 0.85;

const scheduler = new Scheduler(2);
const viewer = new Viewer($("#viewer"));
let viewerItem = null;
viewer.onClose = () => {
  const item = viewerItem;
  viewerItem = null;
  if (item) item.els.compareButton.focus();
};

// ---------------------------------------------------------------- formatting

const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const sizeFormat = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const countFormat = new Intl.NumberFormat(undefined);

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined || Number.isNaN(bytes)) return "–";
  if (bytes < 1000) return `${Math.round(bytes)} B`;
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
const formatName = (format) => FORMAT_NAMES[format] || (format || "").toUpperCase();

// ---------------------------------------------------------------- options

const EDIT_DEFAULTS = { rotate: "0", brightness: "1", contrast: "1", saturation: "1", blur: "0" };
const CHECKS = ["flip", "flop", "grayscale", "sharpen"];
const CROP = ["cropX", "cropY", "cropWidth", "cropHeight"];

function value(id) {
  return $(`#${id}`).value.trim();
}

// quality: the slider's number, or the visual-quality level chosen instead of it.
function quality() {
  return value("visualQuality") || value("quality");
}

// [name, value] pairs of the Feather dialect; only what differs from the defaults.
function featherFields() {
  const fields = [["outputFormat", value("outputFormat")], ["quality", quality()]];
  for (const id of ["maxWidth", "maxHeight", "targetMB"]) if (value(id)) fields.push([id, value(id)]);
  fields.push(["stripMetadata", $("#stripMetadata").checked ? "true" : "false"]);
  for (const [id, fallback] of Object.entries(EDIT_DEFAULTS)) {
    if (value(id) && Number(value(id)) !== Number(fallback)) fields.push([id, value(id)]);
  }
  for (const id of CHECKS) if ($(`#${id}`).checked) fields.push([id, "true"]);
  if (CROP.some((id) => value(id))) for (const id of CROP) fields.push([id, value(id)]);
  const watermark = $("#watermarkFile").files[0];
  if (watermark) {
    fields.push(["watermarkFile", watermark]);
    for (const id of ["watermarkScale", "watermarkOpacity", "watermarkPosition"]) {
      fields.push([id, value(id)]);
    }
  }
  return fields;
}

// The upright original's largest side, when known: a size bound at least as large has
// no effect, so it is left out (and does not make a new preview).
function largestSide(item) {
  if (item.dims) return Math.max(item.dims.width, item.dims.height);
  return item.atLeast || Infinity;
}

// A preview's fields: the download's, bounded to PREVIEW_SIDE (but for a byte cap, which
// only means something at the real size).
function previewFields(item) {
  const fields = featherFields();
  if (value("targetMB")) return fields;
  const bounded = fields.filter(([name]) => name !== "maxWidth" && name !== "maxHeight");
  for (const name of ["maxWidth", "maxHeight"]) {
    const bound = Math.min(Number(value(name)) || Infinity, PREVIEW_SIDE);
    if (bound < largestSide(item)) bounded.push([name, String(bound)]);
  }
  return bounded;
}

function aiWanted() {
  return Boolean(value("apiKey")) && ($("#autoAltText").checked || $("#autoRenameSEO").checked);
}

// The FluxImage dialect for /api/batch: `format` instead of outputFormat (no "auto":
// the format the preview chose), quality within its 40-100.
function fluxFields(item) {
  const fields = featherFields().filter(([name]) => name !== "outputFormat" && name !== "quality");
  let format = value("outputFormat");
  if (format === "auto") format = (item.preview && item.preview.result.facts.format) || "webp";
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
const stamped = (fields) => fields.map(([k, v]) => [k, v instanceof File ? `file:${watermarkStamp}` : v]);

// What the download of an item depends on.
function finalKey() {
  const ai = aiWanted() ? ["autoAltText", "autoRenameSEO", "language", "seoKeywords"]
    .map((id) => ($(`#${id}`).type === "checkbox" ? $(`#${id}`).checked : value(id))) : null;
  // The key too: a download is charged to it, and a plan may refuse what another allows.
  return JSON.stringify([stamped(featherFields()), backgroundKey(), ai, value("apiKey")]);
}

// What an item's preview depends on: an option that changes none of it changes nothing.
function previewKey(item) {
  return JSON.stringify([stamped(previewFields(item)), backgroundKey()]);
}

function backgroundKey() {
  return $("#removeBackground").checked ? value("modelVariant") : "";
}

// The size of the download, from the upright original's: crop, quarter turns, the bounds.
function outputDims(item) {
  if (!item.dims) return null;
  let { width, height } = item.dims;
  if (CROP.every((id) => value(id))) {
    const [x, y, w, h] = CROP.map((id) => Number(value(id)));
    width = Math.max(1, Math.min(w, width - x));
    height = Math.max(1, Math.min(h, height - y));
  }
  if (Math.abs(Number(value("rotate")) || 0) % 180 === 90) [width, height] = [height, width];
  const scale = Math.min(1, (Number(value("maxWidth")) || Infinity) / width,
    (Number(value("maxHeight")) || Infinity) / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
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

const MODEL_NAMES = { quantized: "MODNet (quantized)", full: "MODNet (full precision)",
  lite: "U²-Netp (bundled)" };

// Why a model could not be had, in words for the person at the page (the operator's
// details are in the server's log).
function modelReason(status) {
  if (status === 502) return "this server could not download it";
  if (status === 503) return "it is not installed or not set up on this server";
  if (status === 0) return "the server could not be reached";
  return `the server answered ${status}`;
}

const bgCheck = $("#removeBackground");
const bgAvailability = $("#bg-availability");
let modelProbe = null;

function browserRunsModels() {
  return typeof WebAssembly === "object" && typeof Worker === "function"
    && typeof OffscreenCanvas === "function";
}

// Ask the server whether a model can be had (HEAD /api/model) before background removal
// is offered: the asked variant, then the bundled one. Once per page.
function checkModels() {
  if (modelProbe) return modelProbe;
  modelProbe = (async () => {
    bgAvailability.hidden = false;
    bgAvailability.dataset.state = "checking";
    bgAvailability.textContent = "Checking whether this server can remove backgrounds…";
    if (!browserRunsModels()) {
      return unavailable("This browser cannot remove backgrounds: it needs WebAssembly, Web "
        + "Workers and OffscreenCanvas, which a current Chrome, Edge, Firefox or Safari has.");
    }
    const asked = value("modelVariant");
    const tried = {};
    for (const variant of asked === "lite" ? ["lite"] : [asked, "lite"]) {
      let answer;
      try {
        answer = await scheduler.run(() => probeModel(variant), { priority: USER, budget: WORK });
      } catch (error) {
        answer = { ok: false, status: error instanceof ApiError ? error.status : 0 };
      }
      tried[variant] = answer;
      if (answer.ok) {
        bgCheck.disabled = false;
        bgAvailability.dataset.state = "available";
        bgAvailability.dataset.variant = variant;
        bgAvailability.textContent = variant === asked
          ? `Backgrounds can be removed with ${MODEL_NAMES[variant]}.`
          : `${MODEL_NAMES[asked]} cannot be used (${modelReason(tried[asked].status)}); `
            + `backgrounds will be removed with ${MODEL_NAMES[variant]} instead.`;
        return true;
      }
    }
    console.info("background removal: no model", tried);
    return unavailable("Background removal is not available on this server: it has no model "
      + "it can use (none is installed, and none could be downloaded). The person who runs it "
      + "can fix that; everything else on this page works.");
  })();
  return modelProbe;
}

function unavailable(text) {
  bgCheck.checked = false;
  bgCheck.disabled = true;
  $("#modelVariant").disabled = true;
  bgAvailability.dataset.state = "unavailable";
  bgAvailability.textContent = text;
  return false;
}

$("#bg-section").addEventListener("toggle", () => {
  if ($("#bg-section").open) checkModels();
});

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
    if (event.reason) console.info("background removal:", event.reason);
    modelLabel.textContent = event.reason
      ? `${event.askedName} could not be loaded (${modelReason(event.reasonStatus)}); `
        + `backgrounds are removed with ${event.name} instead.`
      : `Backgrounds are removed with ${event.name}.`;
  } else if (event.type === "model-error") {
    modelProgress.value = 0;
    console.info("background removal:", event.message);
    modelLabel.textContent = "Background removal could not start here: the model could not be "
      + "loaded. Untick it to go on; the person who runs this server can see why in its log.";
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

// The card's state for scripts and styles: working, waiting, stale, preview, final, failed.
function setState(item, state) {
  item.els.card.dataset.state = state;
}

function currentFinal(item) {
  return item.final && item.final.key === finalKey() ? item.final : null;
}

function currentPreview(item) {
  return item.preview && item.preview.key === previewKey(item) ? item.preview : null;
}

// What the card shows: the download when it is made for these options (real sizes),
// else the preview (sizes marked as estimates), scaled up when it was made reduced.
function render(item) {
  const { els } = item;
  const final = currentFinal(item);
  // Else the newest preview; else a download made for other options, shown as stale.
  const preview = final ? null : (currentPreview(item) || item.preview
    || (item.final && { result: item.final.result, url: item.final.url, key: null }));
  const shown = final || preview;
  if (!shown) return;
  const facts = shown.result.facts;
  const url = final ? final.url : preview.url;
  if (els.after.getAttribute("src") !== url) els.after.src = url;
  els.compare.dataset.state = "ready";
  els.compareButton.disabled = false;
  const format = formatName(facts.format);
  if (final) {
    els.result.textContent = `${formatBytes(facts.outputBytes)}${format ? ` ${format}` : ""}`;
    els.result.title = `${countFormat.format(facts.outputBytes)} bytes: the file Download saves`;
    els.saving.textContent = formatSaving(item.file.size, facts.outputBytes);
    if (facts.width && facts.height) els.dimensions.textContent = `${facts.width} × ${facts.height} px`;
    els.result.dataset.stage = "final";
    els.card.dataset.stage = "final";
    setState(item, "final");
  } else {
    const estimate = estimateOf(item, preview);
    els.result.textContent = `≈ ${formatBytes(estimate.bytes)}${format ? ` ${format}` : ""}`;
    els.result.title = estimate.reduced
      ? `Estimate from a preview made at ${estimate.preview.width} × ${estimate.preview.height} px; `
        + "the download is made at full size with full effort"
      : "Estimate from a faster preview encoding; the download is made with full effort";
    els.saving.textContent = `≈ ${formatSaving(item.file.size, estimate.bytes)}`;
    els.dimensions.textContent = estimate.dims
      ? `${estimate.reduced ? "≈ " : ""}${estimate.dims.width} × ${estimate.dims.height} px` : "–";
    els.result.dataset.stage = "preview";
    els.card.dataset.stage = "preview";
    els.card.dataset.reduced = estimate.reduced ? "true" : "false";
    setState(item, currentPreview(item) ? "preview" : "stale");
  }
  if (viewerItem === item) showInViewer(item, true);
  updateSummary();
}

// A preview's bytes and size at the download's size.
function estimateOf(item, preview) {
  const { facts } = preview.result;
  const made = { width: facts.width, height: facts.height };
  const full = outputDims(item);
  const reduced = Boolean(full && made.width && made.height
    && full.width * full.height > made.width * made.height * 1.02);
  const bytes = reduced
    ? facts.outputBytes * ((full.width * full.height) / (made.width * made.height)) ** PIXEL_EXPONENT
    : facts.outputBytes;
  return { bytes, reduced, preview: made, dims: reduced ? full : (made.width ? made : full) };
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
    compareButton: $(".open-compare", card),
    remove: $(".remove", card),
  };
  const item = { id: nextId++, file, els, cutouts: new Map(), preview: null, final: null,
    pendingPreview: null, pendingFinal: null, finalController: null, error: null,
    visible: false, dims: null, atLeast: 0, originalFromServer: false,
    beforeUrl: URL.createObjectURL(file), urls: new Set() };
  item.dimsReady = new Promise((resolve) => { item.dimsKnown = resolve; });
  card.dataset.id = String(item.id);
  setState(item, "working");
  els.name.textContent = file.name;
  els.name.title = file.name;
  els.original.textContent = formatBytes(file.size);
  els.before.alt = `${file.name}, original`;
  els.after.alt = `${file.name}, compressed`;
  els.before.addEventListener("load", () => beforeLoaded(item), { once: true });
  els.before.addEventListener("error", () => originalFromServer(item), { once: true });
  els.before.src = item.beforeUrl;
  els.divider.setAttribute("aria-label", `Compare original and result of ${file.name}`);
  els.divider.setAttribute("aria-valuetext", "50 % original");
  els.divider.addEventListener("input", () => {
    els.compare.style.setProperty("--split", `${els.divider.value}%`);
    els.divider.setAttribute("aria-valuetext", `${els.divider.value} % original`);
  });
  els.compare.addEventListener("dblclick", () => openViewer(item));
  els.download.setAttribute("aria-label", `Download ${file.name}`);
  els.compareButton.setAttribute("aria-label", `Compare ${file.name} at full size`);
  els.remove.setAttribute("aria-label", `Remove ${file.name}`);
  els.download.addEventListener("click", () => downloadOne(item));
  els.compareButton.addEventListener("click", () => openViewer(item));
  els.remove.addEventListener("click", () => removeItem(item));
  list.append(card);
  items.push(item);
  visibility.observe(card);
  return item;
}

function beforeLoaded(item) {
  if (!item.originalFromServer) {
    // <img> shows an image upright (EXIF orientation), as the server reads it.
    item.dims = { width: item.els.before.naturalWidth, height: item.els.before.naturalHeight };
  }
  item.dimsKnown();
}

// The browser cannot show this original (HEIC, TIFF): the server makes a PNG of it.
async function originalFromServer(item) {
  item.originalFromServer = true;
  item.els.compare.dataset.before = "server";
  const fields = [["outputFormat", "png"], ["quality", "100"], ["stripMetadata", "true"],
    ["maxWidth", String(ORIGINAL_SIDE)], ["maxHeight", String(ORIGINAL_SIDE)]];
  try {
    const result = await scheduler.run(
      () => compress(item.file, item.file.name, fields, { mode: "preview",
        apiKey: previewsNeedKey ? value("apiKey") : "" }),
      { priority: ORIGINAL, budget: PREVIEWS, onWait: () => waiting(item) });
    if (!items.includes(item)) return;
    const { facts } = result;
    if (facts.resized) item.atLeast = ORIGINAL_SIDE;
    else item.dims = { width: facts.width, height: facts.height };
    URL.revokeObjectURL(item.beforeUrl);
    item.beforeUrl = URL.createObjectURL(result.blob);
    item.els.before.src = item.beforeUrl;
    item.els.compare.title = `Your browser cannot show ${item.file.name}: the original is `
      + "shown as the server decodes it";
  } catch (error) {
    item.els.compare.dataset.before = "missing"; // the preview will say why
  } finally {
    item.dimsKnown();
  }
}

function removeItem(item) {
  for (const pending of [item.pendingPreview, item.pendingFinal]) {
    if (pending) pending.controller.abort();
  }
  visibility.unobserve(item.els.card);
  URL.revokeObjectURL(item.beforeUrl);
  for (const url of item.urls) URL.revokeObjectURL(url);
  const index = items.indexOf(item);
  const focusNext = items[index + 1] || items[index - 1];
  items.splice(index, 1);
  item.els.card.remove();
  if (viewerItem === item) viewer.close();
  updateSummary();
  if (focusNext) focusNext.els.download.focus();
  else $("#pick").focus();
}

function updateSummary() {
  const shown = items.filter((item) => !item.error && (currentFinal(item) || item.preview));
  const failed = items.filter((item) => item.error).length;
  $("#download-all").disabled = items.length === 0 || failed === items.length;
  $("#clear-all").disabled = items.length === 0;
  document.body.classList.toggle("has-images", items.length > 0);
  if (!items.length) {
    $("#summary").textContent = "No images yet.";
    return;
  }
  let before = 0;
  let after = 0;
  let estimated = false;
  for (const item of shown) {
    before += item.file.size;
    const final = currentFinal(item);
    if (final) after += final.result.facts.outputBytes;
    else {
      after += estimateOf(item, item.preview).bytes;
      estimated = true;
    }
  }
  const approx = estimated ? "≈ " : "";
  let text = `${items.length} image${items.length === 1 ? "" : "s"}`;
  if (shown.length) {
    text += ` · ${formatBytes(before)} → ${approx}${formatBytes(after)} (${approx}${formatSaving(before, after)})`;
  }
  if (failed) text += ` · ${failed} failed`;
  $("#summary").textContent = text;
}

// ---------------------------------------------------------------- waiting for the server

const queueStatus = $("#queue-status");
let queueTimer = null;

function waiting(item) {
  setState(item, "waiting");
  setMessage(item, "Waiting for the server's rate limit; this continues by itself.");
}

function showQueueStatus() {
  const parts = [];
  const work = Math.ceil(scheduler.waiting(WORK) / 1000);
  const previews = Math.ceil(scheduler.waiting(PREVIEWS) / 1000);
  if (work) parts.push(`downloads continue in ${work} s`);
  if (previews) parts.push(`previews continue in ${previews} s`);
  queueStatus.textContent = parts.length
    ? `The server asked this page to slow down (its rate limit): ${parts.join(", ")}, by themselves.`
    : "";
  queueStatus.hidden = !parts.length;
  clearTimeout(queueTimer);
  if (parts.length) queueTimer = setTimeout(showQueueStatus, 1000);
}
scheduler.onChange(showQueueStatus);

// ---------------------------------------------------------------- work

// Ask for a preview of `item` for the current options, unless nothing it depends on
// changed, its download is already made, or it is off screen (then it waits there).
async function wantPreview(item) {
  if (!items.includes(item)) return;
  if (!item.dimsSettled) {
    await item.dimsReady;
    item.dimsSettled = true;
    if (!items.includes(item)) return;
  }
  if (currentFinal(item) || currentPreview(item)) {
    render(item);
    return;
  }
  const key = previewKey(item);
  if (item.pendingPreview && item.pendingPreview.key === key) return;
  if (item.pendingPreview) item.pendingPreview.controller.abort();
  item.pendingPreview = null;
  if (!item.visible) {
    render(item);
    if (!item.preview && !item.final) {
      setState(item, "queued");
      setMessage(item, "Previewed when it is on screen; Download makes it at once.");
    }
    return;
  }
  const controller = new AbortController();
  item.pendingPreview = { key, controller };
  item.els.card.dataset.busy = "true";
  if (!item.preview) setState(item, "working");
  try {
    const source = await sourceOf(item);
    if (controller.signal.aborted) return;
    setMessage(item, "Waiting…");
    const fields = previewFields(item);
    const result = await scheduler.run(async () => {
      if (currentFinal(item)) throw new Aborted("the download is made"); // nothing to preview
      setMessage(item, "Uploading…");
      setProgress(item, 0);
      const options = {
        mode: "preview", signal: controller.signal,
        onProgress: (fraction) => {
          setProgress(item, fraction);
          if (fraction >= 1) setMessage(item, "Compressing…");
        },
      };
      const apiKey = value("apiKey");
      try {
        return await compress(source, uploadName(item, source), fields,
          { ...options, apiKey: previewsNeedKey ? apiKey : "" });
      } catch (error) {
        // A server that requires a key (REQUIRE_API_KEY) says 401: from then on the
        // previews carry it. Elsewhere they go without, and cost the key no credits.
        if (!(error instanceof ApiError) || error.status !== 401 || previewsNeedKey || !apiKey) throw error;
        previewsNeedKey = true;
        return compress(source, uploadName(item, source), fields, { ...options, apiKey });
      }
    }, { priority: PREVIEW, budget: PREVIEWS, signal: controller.signal, onWait: () => waiting(item) });
    if (item.preview) URL.revokeObjectURL(item.preview.url);
    const url = URL.createObjectURL(result.blob);
    item.urls.add(url);
    item.preview = { result, key, url };
    item.error = null;
    setMessage(item, "");
    render(item);
  } catch (error) {
    if (error instanceof Aborted || controller.signal.aborted) {
      if (currentFinal(item)) render(item);
      return;
    }
    failed(item, error);
  } finally {
    if (item.pendingPreview && item.pendingPreview.controller === controller) {
      item.pendingPreview = null;
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
  setState(item, "failed");
  setMessage(item, error.message || String(error), "error");
  updateSummary();
}

// The download for the current options (made once, reused by every path to it).
function finalOf(item) {
  const key = finalKey();
  if (item.final && item.final.key === key) return Promise.resolve(item.final);
  if (item.pendingFinal && item.pendingFinal.key === key) return item.pendingFinal.promise;
  if (item.pendingFinal) item.pendingFinal.controller.abort();
  const controller = new AbortController();
  const promise = makeFinal(item, key, controller);
  item.pendingFinal = { key, controller, promise };
  const clear = () => {
    if (item.pendingFinal && item.pendingFinal.promise === promise) item.pendingFinal = null;
  };
  promise.then(clear, clear);
  return promise;
}

async function makeFinal(item, key, controller) {
  const source = await sourceOf(item);
  setState(item, "working");
  setMessage(item, "Waiting…");
  item.els.card.dataset.busy = "true";
  let result;
  try {
    result = await scheduler.run(async () => {
      setMessage(item, "Preparing the download…");
      setProgress(item, 0);
      const options = { apiKey: value("apiKey"), onProgress: (f) => setProgress(item, f),
        signal: controller.signal };
      if (aiWanted()) return compressWithAi(source, uploadName(item, source), fluxFields(item), options);
      return compress(source, uploadName(item, source), featherFields(), { ...options, mode: "final" });
    }, { priority: USER, budget: WORK, signal: controller.signal, onWait: () => waiting(item) });
  } finally {
    setProgress(item, null);
    delete item.els.card.dataset.busy;
  }
  if (item.final) URL.revokeObjectURL(item.final.url);
  const url = URL.createObjectURL(result.blob);
  item.urls.add(url);
  item.final = { result, blob: result.blob, key, url, name: result.name || defaultName(item, result) };
  item.error = null;
  // The preview is not needed any more for these options.
  if (item.pendingPreview) item.pendingPreview.controller.abort();
  if (!result.facts.format && !result.facts.width) {
    // /api/batch reports bytes only: what the image is, is read from it.
    Object.assign(result.facts, await imageFacts(result.blob));
  }
  if (result.altText !== undefined) {
    item.els.altText.hidden = !result.altText;
    item.els.altText.textContent = result.altText ? `Alt text: ${result.altText}` : "";
  }
  setMessage(item, `Ready: ${item.final.name}`);
  render(item);
  return item.final;
}

async function imageFacts(blob) {
  const facts = { format: (blob.type || "").replace("image/", "") };
  try {
    const bitmap = await createImageBitmap(blob);
    Object.assign(facts, { width: bitmap.width, height: bitmap.height });
    bitmap.close();
  } catch { /* the size stays unknown */ }
  return facts;
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
  const chosen = items.filter((item) => !item.error || !(item.error instanceof ApiError)
    || item.error.status >= 500 || item.error.status === 0);
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

// ---------------------------------------------------------------- the comparison view

function showInViewer(item, keepView = false) {
  const final = currentFinal(item);
  const preview = item.preview;
  const shown = final || preview;
  const dims = final
    ? { width: final.result.facts.width, height: final.result.facts.height }
    : (outputDims(item) || (preview && { width: preview.result.facts.width,
      height: preview.result.facts.height }) || item.dims || { width: 1, height: 1 });
  const kind = formatName((item.file.type || "").replace("image/", "").replace("jpg", "jpeg"))
    || (item.file.name.split(".").pop() || "").toUpperCase();
  const original = `Original ${formatBytes(item.file.size)} ${kind}`.trim();
  let sizes = original;
  if (final) {
    const { facts } = final.result;
    sizes += ` · Result ${formatBytes(facts.outputBytes)} ${formatName(facts.format)}, `
      + `${facts.width} × ${facts.height} px (${formatSaving(item.file.size, facts.outputBytes)}): the file Download saves`;
  } else if (preview) {
    const estimate = estimateOf(item, preview);
    sizes += ` · Result ≈ ${formatBytes(estimate.bytes)} ${formatName(preview.result.facts.format)} `
      + "(a preview; the full-size result is being made)";
  }
  const notes = [];
  if (item.originalFromServer) {
    notes.push(`Your browser cannot show ${item.file.name}: the original is shown as the server `
      + `decodes it, at most ${ORIGINAL_SIDE} px a side.`);
  }
  if (!final) notes.push("Showing the preview until the full-size result arrives…");
  viewer.show({ title: item.file.name, beforeUrl: item.beforeUrl,
    afterUrl: shown ? (final ? final.url : preview.url) : "", width: dims.width || 1,
    height: dims.height || 1, sizes, note: notes.join(" ") }, { keepView });
  viewer.dialog.dataset.stage = final ? "final" : "preview";
}

async function openViewer(item) {
  viewerItem = item;
  showInViewer(item);
  if (!currentFinal(item)) {
    try {
      await finalOf(item);
    } catch (error) {
      if (!(error instanceof Aborted)) failed(item, error);
    }
  }
}

// ---------------------------------------------------------------- what is on screen

const visibility = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    const item = items.find((i) => i.els.card === entry.target);
    if (!item) continue;
    item.visible = entry.isIntersecting;
    if (item.visible) wantPreview(item);
  }
}, { rootMargin: "200px 0px" });

// ---------------------------------------------------------------- input

function addFiles(fileList) {
  const files = [...fileList].filter((file) => file && file.size > 0);
  const added = files.map((file) => addCard(file));
  if (!added.length) return;
  updateSummary();
  for (const item of added) wantPreview(item);
  // Show that something happens: on a narrow screen the new cards may start low on it,
  // or below it. The results are brought up, their heading at the top.
  requestAnimationFrame(() => {
    const box = added[0].els.card.getBoundingClientRect();
    if (box.top > window.innerHeight / 2 || box.bottom < 0) {
      const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      const target = items.length === added.length ? $("#files-heading") : added[0].els.card;
      target.scrollIntoView({ block: "start", behavior: smooth ? "smooth" : "auto" });
    }
  });
}

let debounce = null;
function optionsChanged() {
  for (const output of form.querySelectorAll("output[data-for]")) {
    const input = $(`#${output.dataset.for}`);
    output.textContent = input.step && input.step.includes(".") ? Number(input.value).toFixed(2) : input.value;
  }
  $("#quality-value").textContent = value("quality");
  $("#quality").disabled = Boolean(value("visualQuality"));
  // At once, so the cards a change makes out of date say so while it settles.
  for (const item of items) {
    if (!item.error && !currentFinal(item) && !currentPreview(item)
        && (item.preview || item.final)) setState(item, "stale");
  }
  clearTimeout(debounce);
  debounce = setTimeout(() => items.forEach(wantPreview), 350);
}

form.addEventListener("input", (event) => {
  if (["apiKey", "seoKeywords", "autoAltText", "autoRenameSEO", "language"].includes(event.target.id)) {
    items.forEach(render); // the AI fields only change downloads
    return;
  }
  if (event.target.id === "watermarkFile") watermarkStamp++;
  optionsChanged();
});
form.addEventListener("change", (event) => {
  if (event.target.id === "removeBackground" || event.target.id === "modelVariant") {
    if (event.target.id === "modelVariant") modelProbe = null;
    if (bgCheck.checked) {
      checkModels().then((ok) => {
        if (ok && bgCheck.checked) preloadModel(value("modelVariant"));
      });
    }
  }
});
form.addEventListener("submit", (event) => event.preventDefault());

$("#reset-edits").addEventListener("click", () => {
  for (const [id, fallback] of Object.entries(EDIT_DEFAULTS)) $(`#${id}`).value = fallback;
  for (const id of CHECKS) $(`#${id}`).checked = false;
  for (const id of CROP) $(`#${id}`).value = "";
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
