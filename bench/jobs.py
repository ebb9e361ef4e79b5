"""The bench jobs: the same request for Feather (options and form fields) and for the sharp peer."""

from __future__ import annotations

from dataclasses import dataclass

from feather_core.options import CompressOptions

TARGET_BYTES = 500_000
BATCH_SIZE = 20


@dataclass(frozen=True)
class Job:
    """One bench job: its API form fields and the equivalent library options."""

    key: str
    title: str
    fields: dict[str, str]
    options: CompressOptions
    avif_set: bool = False


JOBS: tuple[Job, ...] = (
    Job("webp", "1. JPEG → WebP q80, 1600 px",
        {"outputFormat": "webp", "quality": "80", "maxWidth": "1600"},
        CompressOptions(output_format="webp", quality=80, max_width=1600)),
    Job("jpeg", "2. JPEG → JPEG q80, 1600 px",
        {"outputFormat": "jpeg", "quality": "80", "maxWidth": "1600"},
        CompressOptions(output_format="jpeg", quality=80, max_width=1600)),
    # The format is named: auto makes photos WebP, the peer keeps a JPEG a JPEG.
    Job("target", "3. targetMB=0.5, JPEG",
        {"targetMB": "0.5", "outputFormat": "jpeg"},
        CompressOptions(output_format="jpeg", target_bytes=TARGET_BYTES)),
    Job("target_webp", "3w. targetMB=0.5, WebP",
        {"targetMB": "0.5", "outputFormat": "webp"},
        CompressOptions(output_format="webp", target_bytes=TARGET_BYTES)),
    Job("avif", "4. JPEG → AVIF q80, 1600 px, default effort",
        {"outputFormat": "avif", "quality": "80", "maxWidth": "1600"},
        CompressOptions(output_format="avif", quality=80, max_width=1600), avif_set=True),
)
BATCH_JOB = JOBS[0]
