// Calls to the Feather API from the form: /api/compress (Feather dialect: one file, the
// image in the body, facts in X-* headers) and /api/batch (FluxImage dialect, for the AI
// fields). XMLHttpRequest rather than fetch because only it reports upload progress.

export class ApiError extends Error {
  constructor(message, code = "", status = 0, retryAfter = null) {
    super(message);
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter; // seconds the server asked to wait (429, 503), or null
  }
}

// Retry-After in seconds: a number, or an HTTP date.
function retryAfterOf(header) {
  if (!header) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(0, (at - Date.now()) / 1000);
}

export class Aborted extends Error {}

// The message of either dialect's error envelope, in words a person can act on.
async function errorFrom(status, blob, retryAfter = null) {
  let body = null;
  try {
    body = JSON.parse(await blob.text());
  } catch {
    body = null;
  }
  const error = body && body.error;
  if (error && typeof error === "object") {
    let message = error.message || error.code || "Request failed";
    const details = error.details && typeof error.details === "object"
      ? Object.entries(error.details).map(([field, why]) => `${field} ${why}`) : [];
    if (details.length) message += `: ${details.join("; ")}`;
    return new ApiError(message, error.code || "", status, retryAfter);
  }
  if (typeof error === "string") {
    return new ApiError(body.message || error, error, status, retryAfter);
  }
  if (status === 0) return new ApiError("The server could not be reached.", "NETWORK", 0);
  return new ApiError(`The server answered ${status}.`, "HTTP_" + status, status, retryAfter);
}

// POST a FormData; resolves {status, blob, headers} on 2xx, rejects ApiError otherwise.
export function send(url, form, { apiKey = "", onProgress = null, signal = null,
  responseType = "blob" } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.responseType = "blob";
    if (apiKey) xhr.setRequestHeader("Authorization", `Bearer ${apiKey}`);
    if (responseType === "json") xhr.setRequestHeader("Accept", "application/json");
    if (onProgress) {
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    }
    xhr.onload = async () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve({ status: xhr.status, blob: xhr.response, header: (n) => xhr.getResponseHeader(n) });
      } else {
        reject(await errorFrom(xhr.status, xhr.response || new Blob(),
          retryAfterOf(xhr.getResponseHeader("Retry-After"))));
      }
    };
    xhr.onerror = () => reject(new ApiError("The connection to the server failed.", "NETWORK", 0));
    xhr.onabort = () => reject(new Aborted("aborted"));
    if (signal) {
      if (signal.aborted) { reject(new Aborted("aborted")); return; }
      signal.addEventListener("abort", () => xhr.abort(), { once: true });
    }
    xhr.send(form);
  });
}

// The file name a Content-Disposition header gives (RFC 6266, filename* first).
export function dispositionName(header) {
  if (!header) return "";
  const star = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header);
  if (star) {
    try { return decodeURIComponent(star[1].trim()); } catch { /* fall through */ }
  }
  const plain = /filename\s*=\s*"((?:[^"\\]|\\.)*)"|filename\s*=\s*([^;]+)/i.exec(header);
  if (plain) return (plain[1] ?? plain[2]).replace(/\\(.)/g, "$1").trim();
  return "";
}

// One image through /api/compress. Resolves {blob, name, facts}.
export async function compress(file, name, fields, { mode, apiKey, onProgress, signal }) {
  const form = new FormData();
  form.append("file", file, name);
  for (const [key, value] of fields) form.append(key, value);
  form.append("mode", mode);
  const answer = await send("/api/compress", form, { apiKey, onProgress, signal });
  const number = (h) => {
    const v = answer.header(h);
    return v === null ? null : Number(v);
  };
  return {
    blob: answer.blob,
    name: dispositionName(answer.header("Content-Disposition")),
    facts: {
      originalBytes: number("X-Original-Bytes"),
      outputBytes: number("X-Output-Bytes") ?? answer.blob.size,
      width: number("X-Output-Width"),
      height: number("X-Output-Height"),
      format: answer.header("X-Output-Format") || (answer.blob.type || "").replace("image/", ""),
      quality: number("X-Output-Quality"),
      targetMet: answer.header("X-Target-Met"),
      resized: answer.header("X-Resized") === "true",
      unchanged: answer.header("X-Output-Unchanged") === "true",
    },
  };
}

// One image through /api/batch with the AI fields; the output is fetched from its
// signed downloadUrl. Resolves {blob, name, altText, facts}.
export async function compressWithAi(file, name, fields, { apiKey, onProgress, signal }) {
  const form = new FormData();
  form.append("file", file, name);
  for (const [key, value] of fields) form.append(key, value);
  const answer = await send("/api/batch", form, { apiKey, onProgress, signal, responseType: "json" });
  const body = JSON.parse(await answer.blob.text());
  const item = body.data && body.data[0];
  if (!item) {
    const failed = body.errors && body.errors[0];
    throw new ApiError(failed ? (failed.message || failed.error || failed.code) : "No result returned.",
      failed ? (failed.code || "") : "", answer.status);
  }
  const download = await fetch(item.downloadUrl, { signal });
  if (!download.ok) {
    throw await errorFrom(download.status, await download.blob(),
      retryAfterOf(download.headers.get("Retry-After")));
  }
  const blob = await download.blob();
  return {
    blob,
    name: item.newName,
    altText: item.altText || "",
    facts: { originalBytes: item.originalSize, outputBytes: item.optimizedSize ?? blob.size },
  };
}

// Whether the server can hand out a background-removal model now: HEAD /api/model (the
// model is fetched and cached by the server, nothing is sent here). Resolves
// {ok, status, bytes}; rejects ApiError for a rate limit, like every request.
export async function probeModel(variant, { signal = null } = {}) {
  const response = await fetch(`/api/model?variant=${encodeURIComponent(variant)}`,
    { method: "HEAD", signal });
  if (response.status === 429) {
    throw new ApiError("Too many requests", "RATE_LIMIT_EXCEEDED", 429,
      retryAfterOf(response.headers.get("Retry-After")));
  }
  return { ok: response.ok, status: response.status,
    bytes: Number(response.headers.get("Content-Length")) || 0 };
}
