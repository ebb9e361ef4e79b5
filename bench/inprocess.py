"""In-process timing: CPU time of feather_core alone, and the plain binary search it must beat."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass

from bench.api import cpu_seconds
from bench.images import Photo
from bench.jobs import TARGET_BYTES, Job
from bench.quality import decoded, ssim
from feather_core import compress
from feather_core.compress import resolve_output
from feather_core.deadline import Deadline
from feather_core.decode import decode, open_source
from feather_core.encode import ENCODERS, EncodeSettings
from feather_core.options import CompressOptions, Limits
from feather_core.pipeline import run as run_pipeline
from feather_core.runner import JobRunner
from feather_core.steps.job import Job as StepJob


@dataclass(frozen=True)
class Run:
    """One compression of one photo: CPU time and what came out."""

    photo: str
    cpu_ms: float
    size: tuple[int, int]
    output_bytes: int
    encodes: int = 1
    met: bool | None = None
    quality: int | None = None
    ssim: float | None = None


def cpu_ms(func: object) -> tuple[float, object]:
    assert callable(func)
    start = time.process_time()
    result = func()
    return (time.process_time() - start) * 1000, result


def run_feather(job: Job, photos: tuple[Photo, ...], judge: bool = False) -> list[Run]:
    """``feather_core.compress`` on every photo, CPU time each."""
    runs = []
    for photo in photos:
        ms, result = cpu_ms(lambda p=photo: compress(p.data, job.options, Limits()))
        runs.append(Run(photo.name, ms, (result.width, result.height), result.output_bytes,
                        result.iterations, result.target_met, result.quality,
                        _judge(photo, result.data) if judge else None))
    return runs


def process_model_cost(job: Job, photos: tuple[Photo, ...], rounds: int) -> tuple[float, float]:
    """CPU ms per image of ``job`` called here and sent to a job process, side by side.

    The second counts this process (pickling the input, the pool's threads, unpickling
    the result) and the job process together: what the process model adds is the
    difference. The lowest of ``rounds`` passes of each.
    """
    runner = JobRunner(1, JOB_MEMORY)
    try:
        for photo in photos[:2]:  # the job process imports lazily on its first jobs
            runner.compress(photo.data, job.options, Limits())
        here, there = [], []
        for _ in range(rounds):
            here.append(mean_cpu(run_feather(job, photos)))
            start = cpu_seconds([os.getpid()])
            for photo in photos:
                runner.compress(photo.data, job.options, Limits())
            there.append((cpu_seconds([os.getpid()]) - start) * 1000 / len(photos))
        return min(here), min(there)
    finally:
        runner.close()


JOB_MEMORY = 4 << 30


def _judge(photo: Photo, data: bytes) -> float:
    source = open_source(photo.data, Limits())
    upright = run_pipeline(decode(source, keep_animation=False, keep_metadata=False),
                           StepJob(CompressOptions(), resolve_output(CompressOptions(), source)),
                           Deadline(None))
    return ssim(upright.first, decoded(data))


def binary_search(photo: Photo, options: CompressOptions) -> tuple[bytes, int, int, bool]:
    """The plain search: decode once, bisect quality over 10..95, keep the best that fits."""
    target = options.target_bytes or TARGET_BYTES
    source = open_source(photo.data, Limits())
    out = resolve_output(options, source)
    picture = run_pipeline(decode(source, keep_animation=False, keep_metadata=False),
                           StepJob(options, out), Deadline(None))
    settings = EncodeSettings.from_options(options)
    encoder = ENCODERS[out.name]
    lo, hi, encodes = 10, 95, 0
    best: tuple[bytes, int] | None = None
    smallest: tuple[bytes, int] | None = None
    while lo <= hi:
        quality = (lo + hi) // 2
        data = encoder(picture, quality, settings)
        encodes += 1
        if smallest is None or len(data) < len(smallest[0]):
            smallest = (data, quality)
        if len(data) <= target:
            best, lo = (data, quality), quality + 1
        else:
            hi = quality - 1
    pick = best or smallest
    assert pick is not None
    return pick[0], pick[1], encodes, best is not None


def run_binary_search(photos: tuple[Photo, ...], options: CompressOptions,
                      judge: bool = True) -> list[Run]:
    runs = []
    for photo in photos:
        ms, result = cpu_ms(lambda p=photo: binary_search(p, options))
        data, quality, encodes, met = result  # type: ignore[misc]
        out = decoded(data)
        runs.append(Run(photo.name, ms, out.size, len(data), encodes, met, quality,
                        _judge(photo, data) if judge else None))
    return runs


def mean_cpu(runs: list[Run]) -> float:
    return statistics.fmean(r.cpu_ms for r in runs)
