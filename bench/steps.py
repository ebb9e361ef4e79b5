"""Where the time goes: CPU ms per step of one compression, for the resize jobs."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from bench.images import Photo
from bench.jobs import Job
from feather_core.compress import _shrink_hint, resolve_output
from feather_core.decode import decode, open_source
from feather_core.encode import ENCODERS, EncodeSettings
from feather_core.options import Limits
from feather_core.steps.job import Job as StepJob
from feather_core.steps.orientation import apply_orientation
from feather_core.steps.resize import resize


@dataclass(frozen=True)
class Steps:
    """Mean CPU ms per image of each step, and how many photos decoded at a reduced scale."""

    decode_ms: float
    orient_ms: float
    resize_ms: float
    encode_ms: float
    drafted: int


def measure(job: Job, photos: tuple[Photo, ...]) -> Steps:
    """Decode (JPEG draft when shrinking), orientation, Lanczos resize, encode: each timed."""
    rows = []
    drafted = 0
    for photo in photos:
        clock = time.process_time()
        source = open_source(photo.data, Limits())
        out = resolve_output(job.options, source)
        picture = decode(source, keep_animation=False, keep_metadata=False,
                         shrink_to=_shrink_hint(job.options, source))
        decoded = time.process_time()
        drafted += picture.first.size[0] * picture.first.size[1] < photo.width * photo.height
        step_job = StepJob(job.options, out)
        picture = apply_orientation(picture, step_job)
        oriented = time.process_time()
        picture = resize(picture, step_job)
        resized = time.process_time()
        ENCODERS[out.name](picture, job.options.quality, EncodeSettings.from_options(job.options))
        encoded = time.process_time()
        rows.append((decoded - clock, oriented - decoded, resized - oriented, encoded - resized))
    means = [1000 * statistics.fmean(r[i] for r in rows) for i in range(4)]
    return Steps(*means, drafted=drafted)
