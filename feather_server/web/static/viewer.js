// The comparison view: the original and the result, one over the other, as large as the
// window allows, split by a line that can be moved. Zoom (wheel, pinch, buttons, keys)
// and pan (drag, arrow keys) move both sides together: they share one position and
// scale, so they are in sync by construction. "1:1" shows one pixel of the result on
// one pixel of the screen.
const ZOOM_STEP = 1.5;
const MAX_ZOOM = 32; // device pixels per image pixel
const PAN_STEP = 48;

export class Viewer {
  constructor(dialog) {
    this.dialog = dialog;
    const $ = (selector) => dialog.querySelector(selector);
    this.stage = $(".stage");
    this.layers = [...dialog.querySelectorAll(".layer")];
    this.before = $("img.before");
    this.after = $("img.after");
    this.title = $(".viewer-title");
    this.sizes = $(".viewer-sizes");
    this.note = $(".stage-note");
    this.level = $(".viewer-level");
    this.split = $(".viewer-split");
    this.line = $(".split-line");
    this.width = 1;
    this.height = 1;
    this.scale = 1;
    this.x = 0;
    this.y = 0;
    this.fitted = true;
    this.pointers = new Map();
    this.onClose = null;

    dialog.querySelector(".viewer-close").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      if (this.onClose) this.onClose();
    });
    for (const button of dialog.querySelectorAll("[data-zoom]")) {
      button.addEventListener("click", () => this.zoomCommand(button.dataset.zoom));
    }
    this.split.addEventListener("input", () => this.setSplit(Number(this.split.value)));
    this.stage.addEventListener("wheel", (event) => this.wheel(event), { passive: false });
    this.stage.addEventListener("pointerdown", (event) => this.pointerDown(event));
    this.stage.addEventListener("pointermove", (event) => this.pointerMove(event));
    for (const type of ["pointerup", "pointercancel"]) {
      this.stage.addEventListener(type, (event) => this.pointerUp(event));
    }
    dialog.addEventListener("keydown", (event) => this.key(event));
    new ResizeObserver(() => {
      if (this.dialog.open) this.fitted ? this.fit() : this.clampAndDraw();
    }).observe(this.stage);
  }

  get open() {
    return this.dialog.open;
  }

  // Show a pair: {title, beforeUrl, afterUrl, width, height (the result's pixels),
  // sizes (text), note (text or "")}. Keeps the zoom when the same image is updated.
  show({ title, beforeUrl, afterUrl, width, height, sizes, note = "" }, { keepView = false } = {}) {
    this.title.textContent = title;
    this.sizes.textContent = sizes;
    this.note.textContent = note;
    this.note.hidden = !note;
    if (this.before.getAttribute("src") !== beforeUrl) this.before.src = beforeUrl;
    if (this.after.getAttribute("src") !== afterUrl) this.after.src = afterUrl;
    this.before.alt = `${title}, original`;
    this.after.alt = `${title}, result`;
    const sizeChanged = width !== this.width || height !== this.height;
    this.width = Math.max(1, width);
    this.height = Math.max(1, height);
    if (!this.dialog.open) {
      this.dialog.showModal();
      this.setSplit(50);
      this.fit();
      this.stage.focus();
    } else if (!keepView || sizeChanged || this.fitted) {
      this.fitted ? this.fit() : this.clampAndDraw();
    }
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  get dpr() {
    return window.devicePixelRatio || 1;
  }

  // The scale (CSS pixels per image pixel) at which one image pixel is one device pixel.
  get actual() {
    return 1 / this.dpr;
  }

  fitScale() {
    const box = this.stage.getBoundingClientRect();
    return Math.min(box.width / this.width, box.height / this.height, this.actual);
  }

  fit() {
    this.fitted = true;
    this.scale = this.fitScale();
    const box = this.stage.getBoundingClientRect();
    this.x = (box.width - this.width * this.scale) / 2;
    this.y = (box.height - this.height * this.scale) / 2;
    this.draw();
  }

  // Zoom to `scale`, keeping the image point under (cx, cy) (stage coordinates) in place.
  zoomTo(scale, cx, cy) {
    const low = Math.min(this.fitScale(), this.actual) / 4;
    const next = Math.min(MAX_ZOOM * this.actual, Math.max(low, scale));
    const box = this.stage.getBoundingClientRect();
    const px = cx ?? box.width / 2;
    const py = cy ?? box.height / 2;
    this.x = px - ((px - this.x) * next) / this.scale;
    this.y = py - ((py - this.y) * next) / this.scale;
    this.scale = next;
    this.fitted = false;
    this.clampAndDraw();
  }

  zoomCommand(command) {
    if (command === "fit") this.fit();
    else if (command === "actual") this.zoomTo(this.actual);
    else if (command === "in") this.zoomTo(this.scale * ZOOM_STEP);
    else if (command === "out") this.zoomTo(this.scale / ZOOM_STEP);
  }

  panBy(dx, dy) {
    this.x += dx;
    this.y += dy;
    this.fitted = false;
    this.clampAndDraw();
  }

  // An image smaller than the stage stays centred; a larger one cannot leave a gap.
  clampAndDraw() {
    const box = this.stage.getBoundingClientRect();
    const w = this.width * this.scale;
    const h = this.height * this.scale;
    this.x = w <= box.width ? (box.width - w) / 2 : Math.min(0, Math.max(box.width - w, this.x));
    this.y = h <= box.height ? (box.height - h) / 2 : Math.min(0, Math.max(box.height - h, this.y));
    this.draw();
  }

  draw() {
    const w = this.width * this.scale;
    const h = this.height * this.scale;
    for (const layer of this.layers) {
      layer.style.left = `${this.x}px`;
      layer.style.top = `${this.y}px`;
      layer.style.width = `${w}px`;
      layer.style.height = `${h}px`;
    }
    // Past 1:1 the pixels are shown as squares, not smoothed: that is what is judged.
    this.stage.classList.toggle("pixels", this.scale > this.actual + 1e-9);
    const ratio = this.scale / this.actual;
    const atActual = Math.abs(ratio - 1) < 1e-6;
    this.level.textContent = atActual ? "1:1" : `${Math.round(ratio * 100)} %`;
    this.stage.dataset.zoom = atActual ? "actual" : this.fitted ? "fit" : "free";
  }

  setSplit(percent) {
    const value = Math.min(100, Math.max(0, percent));
    this.split.value = String(Math.round(value));
    this.stage.style.setProperty("--split", `${value}%`);
    this.split.setAttribute("aria-valuetext", `${Math.round(value)} % original`);
  }

  wheel(event) {
    event.preventDefault();
    const box = this.stage.getBoundingClientRect();
    const factor = Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015));
    this.zoomTo(this.scale * factor, event.clientX - box.left, event.clientY - box.top);
  }

  pointerDown(event) {
    if (event.button !== 0 && event.pointerType === "mouse") return;
    const box = this.stage.getBoundingClientRect();
    const splitX = (Number(this.split.value) / 100) * box.width;
    const onLine = Math.abs(event.clientX - box.left - splitX) < 14 && this.pointers.size === 0;
    this.stage.setPointerCapture(event.pointerId);
    this.pointers.set(event.pointerId, { x: event.clientX, y: event.clientY, splitting: onLine });
    this.stage.classList.toggle("panning", !onLine);
  }

  pointerMove(event) {
    const last = this.pointers.get(event.pointerId);
    if (!last) return;
    const box = this.stage.getBoundingClientRect();
    if (last.splitting) {
      this.setSplit(((event.clientX - box.left) / box.width) * 100);
    } else if (this.pointers.size === 2) {
      // Pinch: the scale follows the distance between the two fingers.
      const other = [...this.pointers.entries()].find(([id]) => id !== event.pointerId)[1];
      const before = Math.hypot(last.x - other.x, last.y - other.y);
      const after = Math.hypot(event.clientX - other.x, event.clientY - other.y);
      if (before > 0) {
        this.zoomTo(this.scale * (after / before), (event.clientX + other.x) / 2 - box.left,
          (event.clientY + other.y) / 2 - box.top);
      }
    } else {
      this.panBy(event.clientX - last.x, event.clientY - last.y);
    }
    last.x = event.clientX;
    last.y = event.clientY;
  }

  pointerUp(event) {
    this.pointers.delete(event.pointerId);
    if (!this.pointers.size) this.stage.classList.remove("panning");
  }

  key(event) {
    // Keys typed into a control (the split slider's arrows) are the control's.
    if (event.target.matches("input, select, textarea")) return;
    const keys = {
      "+": () => this.zoomCommand("in"), "=": () => this.zoomCommand("in"),
      "-": () => this.zoomCommand("out"), "0": () => this.fit(), "1": () => this.zoomTo(this.actual),
      ArrowLeft: () => this.panBy(PAN_STEP, 0), ArrowRight: () => this.panBy(-PAN_STEP, 0),
      ArrowUp: () => this.panBy(0, PAN_STEP), ArrowDown: () => this.panBy(0, -PAN_STEP),
    };
    const action = keys[event.key];
    if (action && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      action();
    }
  }
}
