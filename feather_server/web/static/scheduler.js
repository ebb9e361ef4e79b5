// The page's requests to the server: at most two at once (the server has a few workers
// shared by everyone), the user's own work first (downloads, the comparison view), then
// what is on screen. The server counts previews (mode=preview) in a budget of their own
// and everything else in the budget of real work; when either answers 429, requests of
// that budget wait out Retry-After and are sent again by themselves, so nothing a user
// started ends failed because of the page's own traffic.
import { Aborted, ApiError } from "./api.js";

export const USER = 0; // a download, the comparison view: what the user asked for now
export const ORIGINAL = 1; // a server-made view of an original the browser cannot show
export const PREVIEW = 2; // a live preview of a card on screen

export const WORK = "work";
export const PREVIEWS = "previews";

// A 503 (the server busy or a part of it down) is tried again this often at most.
const MAX_UNAVAILABLE_RETRIES = 3;

export class Scheduler {
  constructor(parallel = 2) {
    this.parallel = parallel;
    this.running = 0;
    this.queue = [];
    this.seq = 0;
    this.resumeAt = { [WORK]: 0, [PREVIEWS]: 0 };
    this.timer = null;
    this.listeners = new Set();
  }

  // Run `task` (a function returning a promise) when a slot is free and its budget is
  // not waiting; resolves with its result. `onWait(resumeAt)` is called when it has to
  // wait for the server's rate limit; `signal` drops it from the queue.
  run(task, { priority = PREVIEW, budget = WORK, signal = null, onWait = null } = {}) {
    return new Promise((resolve, reject) => {
      const entry = { task, priority, budget, signal, onWait, resolve, reject,
        seq: this.seq++, unavailable: 0 };
      if (signal) {
        if (signal.aborted) { reject(new Aborted("aborted")); return; }
        signal.addEventListener("abort", () => this.drop(entry), { once: true });
      }
      this.queue.push(entry);
      this.pump();
    });
  }

  // Called with {budget, resumeAt} when a budget starts waiting and when it resumes.
  onChange(listener) {
    this.listeners.add(listener);
  }

  waiting(budget) {
    return Math.max(0, this.resumeAt[budget] - Date.now());
  }

  drop(entry) {
    const index = this.queue.indexOf(entry);
    if (index >= 0) {
      this.queue.splice(index, 1);
      entry.reject(new Aborted("aborted"));
    }
  }

  pump() {
    const now = Date.now();
    this.queue.sort((a, b) => a.priority - b.priority || a.seq - b.seq);
    while (this.running < this.parallel) {
      const index = this.queue.findIndex((e) => this.resumeAt[e.budget] <= now);
      if (index < 0) break;
      const [entry] = this.queue.splice(index, 1);
      if (entry.signal && entry.signal.aborted) {
        entry.reject(new Aborted("aborted"));
        continue;
      }
      this.running++;
      this.start(entry);
    }
    this.wakeLater();
  }

  wakeLater() {
    clearTimeout(this.timer);
    const now = Date.now();
    const paused = this.queue.map((e) => this.resumeAt[e.budget]).filter((t) => t > now);
    if (!paused.length) return;
    this.timer = setTimeout(() => {
      for (const budget of Object.keys(this.resumeAt)) {
        if (this.resumeAt[budget] && this.resumeAt[budget] <= Date.now()) {
          this.resumeAt[budget] = 0;
          this.emit({ budget, resumeAt: 0 });
        }
      }
      this.pump();
    }, Math.min(...paused) - now + 20);
  }

  async start(entry) {
    try {
      entry.resolve(await entry.task());
    } catch (error) {
      const limited = error instanceof ApiError && error.status === 429;
      const busy = error instanceof ApiError && error.status === 503 && error.retryAfter !== null
        && entry.unavailable < MAX_UNAVAILABLE_RETRIES;
      if ((limited || busy) && !(entry.signal && entry.signal.aborted)) {
        if (busy) entry.unavailable++;
        this.pause(entry.budget, error.retryAfter ?? 5);
        this.queue.push(entry); // keeps its place: it goes first when the wait is over
        if (entry.onWait) entry.onWait(this.resumeAt[entry.budget]);
      } else {
        entry.reject(error);
      }
    } finally {
      this.running--;
      this.pump();
    }
  }

  pause(budget, seconds) {
    const until = Date.now() + Math.max(1, seconds) * 1000;
    if (until > this.resumeAt[budget]) {
      this.resumeAt[budget] = until;
      this.emit({ budget, resumeAt: until });
    }
  }

  emit(change) {
    for (const listener of this.listeners) listener(change);
  }
}
