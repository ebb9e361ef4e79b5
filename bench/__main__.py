"""`python -m bench [--images PATH] [--rounds N] [--no-readme] [--skip-api] [--skip-compression]`.

Runs every job in-process (feather_core alone), then through the real API under
gunicorn and through the sharp peer, side by side, then the compression table (Feather's
bytes and SSIMULACRA2 beside sharp, pngquant, oxipng and cwebp); prints the tables, writes
docs/bench/results.md and docs/bench/chart.png and regenerates README's bench section.
Exits non-zero when Feather and sharp disagree on an output's dimensions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from bench import api, compression
from bench.images import ROOT, Photo, load_photos
from bench.inprocess import Run, mean_cpu, process_model_cost, run_binary_search, run_feather
from bench.jobs import BATCH_JOB, BATCH_SIZE, JOBS, TARGET_BYTES, Job
from bench.report import Results, write
from bench.steps import measure as measure_steps
from feather_core import compress
from feather_core.allocator import keep_freed_memory
from feather_core.options import Limits

JOB_BY_KEY = {job.key: job for job in JOBS}
# The targetMB jobs, each beside a plain binary search of the same format.
SEARCHED = {"target": "JPEG", "target_webp": "WebP"}

GOAL_JOB1, GOAL_JOB2, GOAL_SEARCH, GOAL_OVERHEAD, GOAL_BATCH, GOAL_RSS = 0.9, 1.0, 0.5, 0.05, 0.6, 3
# What running a job in a job process (the process model) may add to its CPU.
GOAL_PROCESS_COST = 0.05
# A batch of 20 photos of 12 MP at full size: a worker and its job processes together.
BATCH_MEMORY_PHOTOS, BATCH_MEMORY_MP, GOAL_BATCH_MEMORY_MB = 20, 12, 1000


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default=os.environ.get("BENCH_IMAGES") or None,
                        help="corpus directory, directory of JPEGs or list file (BENCH_IMAGES)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="passes per job, alternating Feather and sharp; the cheapest pass "
                             "counts, which filters out moments when other load slowed the CPU")
    parser.add_argument("--out", default=str(ROOT / "docs" / "bench"), help="results directory")
    parser.add_argument("--no-readme", action="store_true", help="leave README.md alone")
    parser.add_argument("--skip-api", action="store_true", help="in-process figures only")
    parser.add_argument("--skip-compression", action="store_true",
                        help="leave out the compression table")
    return parser.parse_args(argv)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    # As the server's workers and the command line do (see feather_core/allocator.py).
    keep_freed_memory()
    photo_set = load_photos(args.images)
    _say(f"bench: {len(photo_set.photos)} photos from {photo_set.origin}")
    if not args.skip_api:
        api.install_peer()

    def photos_of(job_avif: bool) -> tuple[Photo, ...]:
        return photo_set.avif if job_avif else photo_set.photos

    def rounds(job: Job) -> int:
        # AVIF encodes take seconds each: one pass is enough to be far above the noise.
        return 1 if job.avif_set else args.rounds

    # In-process: feather_core alone, after one warm-up compression (lazy imports, tables).
    compress(photo_set.photos[0].data, JOBS[0].options, Limits())
    inproc: dict[str, list[Run]] = {}
    for job in JOBS:
        _say(f"bench: in-process {job.title}")
        passes = [run_feather(job, photos_of(job.avif_set), judge=job.key in SEARCHED)
                  for _ in range(rounds(job))]
        inproc[job.key] = min(passes, key=mean_cpu)
    step_notes = []
    for job in JOBS[:2]:
        steps = min((measure_steps(job, photos_of(False)) for _ in range(args.rounds)),
                    key=lambda st: st.decode_ms + st.resize_ms + st.encode_ms)
        step_notes.append(
            f"{job.title}, in-process CPU ms per image by step: decode {steps.decode_ms:.0f} "
            f"({steps.drafted}/{len(photos_of(False))} photos at a reduced JPEG scale), "
            f"orientation {steps.orient_ms:.0f}, Lanczos resize {steps.resize_ms:.0f}, "
            f"encode {steps.encode_ms:.0f}.")
    _say("bench: the process model's cost: job 1 here and in a job process")
    here_ms, there_ms = process_model_cost(JOBS[0], photos_of(False), args.rounds + 1)
    baselines = {}
    for key, label in SEARCHED.items():
        _say(f"bench: in-process plain binary search (10..95, decode once), {label}")
        baselines[key] = run_binary_search(photo_set.photos, JOB_BY_KEY[key].options)

    results = Results(photo_set.origin, len(photo_set.photos))
    cost = there_ms / here_ms - 1
    results.goals.append((
        "Job 1 in a job process ≤ +5% of the same call in-process (the process model's cost)",
        f"{there_ms:.0f} vs {here_ms:.0f} ms/img = {cost:+.1%}", cost <= GOAL_PROCESS_COST))
    results.notes += step_notes
    mismatches: list[str] = []
    if args.skip_api:
        _in_process_only(results, inproc)
    else:
        _with_api(results, inproc, photos_of, rounds, mismatches)
    for key, label in SEARCHED.items():
        _search_goals(results, inproc[key], baselines[key], label)
    if not args.skip_compression:
        _say("bench: compression table (Feather, sharp, pngquant, oxipng, cwebp)")
        _origin, results.compression = compression.run()

    print(results.text())
    write(results, Path(args.out), readme=not args.no_readme)
    _say(f"bench: wrote {args.out}/results.md and chart.png"
         + ("" if args.no_readme else " and README.md's bench section"))
    if mismatches:
        _say("bench: FAILED: Feather and sharp outputs differ in dimensions:\n  "
             + "\n  ".join(mismatches))
        return 1
    return 0


def _kb(values: list[int]) -> str:
    return f"{statistics.fmean(values) / 1000:.0f}"


def _in_process_only(results: Results, inproc: dict[str, list[Run]]) -> None:
    results.header = ["job", "in-process CPU ms/img", "output KB"]
    for job in JOBS:
        runs = inproc[job.key]
        results.rows.append([job.title, f"{mean_cpu(runs):.0f}",
                             _kb([r.output_bytes for r in runs])])


def _with_api(results: Results, inproc: dict[str, list[Run]], photos_of: object,
              rounds: object, mismatches: list[str]) -> None:
    assert callable(photos_of)
    assert callable(rounds)
    results.header = ["job", "in-process CPU ms/img", "Feather API CPU ms/req",
                      "sharp API CPU ms/req", "Feather/sharp", "API overhead",
                      "req/s F / s", "p95 ms F / s", "output KB F / s"]
    api_cpu: dict[str, float] = {}
    ratio: dict[str, float] = {}
    with api.feather_server() as feather, api.sharp_server() as sharp:
        for job in JOBS:
            photos = photos_of(job.avif_set)
            _say(f"bench: API {job.title}")
            mine_runs, peer_runs = [], []
            for _ in range(rounds(job)):
                mine_runs.append(api.run(feather, photos, job.fields))
                peer_runs.append(api.run(sharp, photos, job.fields))
            mine = min(mine_runs, key=lambda r: r.cpu_ms)
            peer = min(peer_runs, key=lambda r: r.cpu_ms)
            if not job.fields.get("targetMB"):
                for a, b in zip(mine.replies, peer.replies, strict=True):
                    if a.size != b.size:
                        mismatches.append(
                            f"{job.title} {a.photo}: Feather {a.size}, sharp {b.size}")
            in_ms = mean_cpu(inproc[job.key])
            api_cpu[job.key], ratio[job.key] = mine.cpu_ms, mine.cpu_ms / peer.cpu_ms
            results.rows.append([
                job.title, f"{in_ms:.0f}", f"{mine.cpu_ms:.0f}", f"{peer.cpu_ms:.0f}",
                f"{ratio[job.key]:.2f}", f"{mine.cpu_ms / in_ms - 1:+.1%}",
                f"{mine.req_per_s:.1f} / {peer.req_per_s:.1f}",
                f"{mine.p95_ms:.0f} / {peer.p95_ms:.0f}",
                f"{_kb([r.output_bytes for r in mine.replies])} / "
                f"{_kb([r.output_bytes for r in peer.replies])}",
            ])
            results.chart.append((job.title, mine.cpu_ms, peer.cpu_ms))

        _say(f"bench: API 5. a batch of {BATCH_SIZE} in one request, and one at a time")
        batch = tuple((photos_of(False) * BATCH_SIZE)[:BATCH_SIZE])
        batch_ratio = {}
        for server in (feather, sharp):
            single = api.run(server, batch, BATCH_JOB.fields, clients=1)
            together = api.run_batch(server, batch, BATCH_JOB.fields)
            batch_ratio[server.name] = (together / single.wall_s, single.wall_s, together)
        f, s = batch_ratio["feather"], batch_ratio["sharp"]
        results.rows.append([
            f"5. batch of {BATCH_SIZE} (job 1): /api/batch vs one at a time", "", "", "", "",
            "", f"wall {f[2]:.1f} s vs {f[1]:.1f} s / {s[2]:.1f} s vs {s[1]:.1f} s",
            f"ratio {f[0]:.2f} / {s[0]:.2f}", ""])

    _say("bench: peak RSS per worker for the largest allowed image")
    limits = Limits()
    largest, decoded_bytes = api.largest_allowed(limits.max_pixels)
    env = {"MAX_UPLOAD_MB": str(max(20, len(largest.data) // 1_000_000 + 5))}
    full = {"outputFormat": "jpeg", "quality": "80"}
    with api.feather_server(env) as feather:
        rss_full = api.peak_rss(feather, largest, full)
    with api.feather_server(env) as feather:
        rss_webp = api.peak_rss(feather, largest, BATCH_JOB.fields)
    with api.sharp_server() as sharp:
        rss_sharp = api.peak_rss(sharp, largest, full)
    _say(f"bench: peak memory of a batch of {BATCH_MEMORY_PHOTOS} photos of "
         f"{BATCH_MEMORY_MP} MP at full size")
    twelve = api.photos_of_megapixels(BATCH_MEMORY_MP, BATCH_MEMORY_PHOTOS)
    full_webp = {"outputFormat": "webp", "quality": "80"}
    with api.feather_server() as feather:
        batch_mb = api.batch_peak_mb(feather, twelve, full_webp)
    with api.sharp_server() as sharp:
        batch_mb_sharp = api.batch_peak_mb(sharp, twelve, full_webp)
    results.notes.append(
        f"Batch of {BATCH_MEMORY_PHOTOS} photos of {BATCH_MEMORY_MP} MP to WebP at full size "
        f"in one /api/batch: peak memory {batch_mb:.0f} MB for the Feather worker and its job "
        f"processes together, {batch_mb_sharp:.0f} MB for the sharp worker.")
    decoded_mb = decoded_bytes / 2**20
    rss = max(rss_full, rss_webp)
    results.notes.append(
        f"Largest allowed image {largest.name} ({limits.max_pixels / 1e6:.0f} MP, decoded "
        f"{decoded_mb:.0f} MB): peak RSS per Feather worker {rss_full:.0f} MB (JPEG, full size), "
        f"{rss_webp:.0f} MB (job 1); sharp worker {rss_sharp:.0f} MB (JPEG, full size).")

    overhead = sum(api_cpu[k] for k in ("webp", "jpeg")) / sum(
        mean_cpu(inproc[k]) for k in ("webp", "jpeg")) - 1
    results.goals += [
        ("Job 1 API CPU ≤ 0.9× sharp", f"{ratio['webp']:.2f}×", ratio["webp"] <= GOAL_JOB1),
        ("Job 2 API CPU ≤ 1.0× sharp", f"{ratio['jpeg']:.2f}×", ratio["jpeg"] <= GOAL_JOB2),
        ("API overhead over in-process ≤ 5% (jobs 1+2)", f"{overhead:+.1%}",
         overhead <= GOAL_OVERHEAD),
        ("Job 5 latency ≤ 0.6× one-at-a-time", f"{f[0]:.2f}×", f[0] <= GOAL_BATCH),
        ("Peak RSS per worker ≤ 3× decoded largest image",
         f"{rss:.0f} MB = {rss / decoded_mb:.2f}×", rss <= GOAL_RSS * decoded_mb),
        (f"Batch of {BATCH_MEMORY_PHOTOS} × {BATCH_MEMORY_MP} MP: worker + job processes "
         f"≤ {GOAL_BATCH_MEMORY_MB / 1000:g} GB", f"{batch_mb:.0f} MB",
         batch_mb <= GOAL_BATCH_MEMORY_MB),
    ]


def _search_goals(results: Results, target_runs: list[Run], baseline: list[Run],
                  label: str) -> None:
    searched = [r for r in target_runs if r.encodes > 0]  # 0: the input already fit, returned as is
    cpu = sum(r.cpu_ms for r in target_runs) / sum(r.cpu_ms for r in baseline)
    median = statistics.median(r.encodes for r in target_runs)
    full = [r for r in searched if r.met and r.output_bytes >= 0.9 * TARGET_BYTES]
    over = [r for r in target_runs if r.output_bytes > TARGET_BYTES]
    ssim_mine = statistics.fmean(r.ssim or 0 for r in target_runs)
    ssim_base = statistics.fmean(r.ssim or 0 for r in baseline)
    job = "Job 3" if label == "JPEG" else "Job 3w"
    row = [f"{job[4:]}'. plain binary search, {label}, in-process", f"{mean_cpu(baseline):.0f}"]
    if len(results.header) > 3:
        row += ["", "", f"Feather {cpu:.2f}×", "", "", ""]
    results.rows.append(row + [_kb([r.output_bytes for r in baseline])])
    results.notes.append(
        f"targetMB=0.5, {label}, Feather: encodes " + " ".join(str(r.encodes) for r in target_runs)
        + f" (median {median:g}); binary search: "
        + " ".join(str(r.encodes) for r in baseline)
        + f". Mean SSIM at output size: Feather {ssim_mine:.4f}, binary search {ssim_base:.4f}; "
        f"binary search over the cap on {sum(not r.met for r in baseline)} photo(s). "
        f"{len(target_runs) - len(searched)} photo(s) already fit and came back unchanged.")
    if label == "JPEG":
        # Of WebP's encodes, those of a large photo's sample are cheap (a 1 MP mosaic):
        # the count says nothing of full-size work, which the note shows.
        results.goals.append((f"{job} median encodes ≤ 3", f"{median:g}", median <= 3))
    results.goals += [
        (f"{job} CPU ≤ 0.5× plain binary search", f"{cpu:.2f}×", cpu <= GOAL_SEARCH),
        (f"{job} outputs ≤ cap and ≥ 90% of it (re-encoded ones)",
         f"{len(full)}/{len(searched)} in band, {len(over)} over",
         len(full) == len(searched) and not over),
        (f"{job} SSIM no lower than binary search", f"{ssim_mine:.4f} vs {ssim_base:.4f}",
         ssim_mine >= ssim_base),
    ]


if __name__ == "__main__":
    sys.exit(main())
