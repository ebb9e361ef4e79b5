"""What the model is sent: a small copy of the image and a prompt asking for JSON."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps

from feather_server.ai.languages import PROMPT_NAMES

# The model needs to recognise the subject, not count pixels: 512 px on the long side
# keeps one image to a few hundred tokens on every hosted model and a ~30 KB request.
PREVIEW_SIDE = 512
PREVIEW_QUALITY = 80
ALT_TEXT_MAX = 80
# Context and keywords are the caller's words: bounded, so they cannot crowd out the
# instructions or run up the token bill.
MAX_HINT = 200


@dataclass(frozen=True)
class PromptInput:
    """Everything the prompt says besides the image."""

    language: str = "English"
    context: str = ""
    keywords: str = ""


def preview_data_uri(data: bytes) -> str:
    """A JPEG ``data:`` URI of the image, at most ``PREVIEW_SIDE`` px on its long side.

    First frame of animations; transparency flattened on white (as a browser would show
    it on a white page). Raises the decoder's error for bytes that are not an image.
    """
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (PREVIEW_SIDE, PREVIEW_SIDE))  # JPEG: decode at a reduced scale
        image.seek(0)
        image.load()
        frame = ImageOps.exif_transpose(image)
        if frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info:
            rgba = frame.convert("RGBA")
            frame = Image.new("RGB", rgba.size, (255, 255, 255))
            frame.paste(rgba, mask=rgba.getchannel("A"))
        else:
            frame = frame.convert("RGB")
        frame.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS,
                        reducing_gap=2.0)
        buffer = io.BytesIO()
        frame.save(buffer, "JPEG", quality=PREVIEW_QUALITY, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _hint(text: str) -> str:
    return " ".join(text.split())[:MAX_HINT]


SYSTEM = (
    "You write alt text and SEO file names for images on websites. "
    "Reply with one JSON object and nothing else: "
    '{"altText": "...", "fileName": "..."}.'
)


def prompt_text(ask: PromptInput) -> str:
    """The instructions of the user message (the image follows them)."""
    language = PROMPT_NAMES.get(ask.language, ask.language)
    lines = [
        f"Language: {language}",
        f"Write both values in {language}.",
        f"altText: describe the image for a screen reader and a search engine, at most "
        f"{ALT_TEXT_MAX} characters, one plain sentence without quotes, and without "
        f'"image of" or "picture of".',
        "fileName: 3 to 6 words naming the main subject, separated by spaces, without "
        "a file extension.",
    ]
    if ask.context.strip():
        lines.append(f"The images belong to: {_hint(ask.context)}")
    if ask.keywords.strip():
        lines.append(f"Use these keywords where they truly fit the image: {_hint(ask.keywords)}")
    lines.append('Answer only with JSON: {"altText": "...", "fileName": "..."}')
    return "\n".join(lines)


def chat_messages(ask: PromptInput, data_uri: str) -> list[dict[str, Any]]:
    """The ``messages`` of a chat-completions request: system rules, then text + image."""
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": [
            {"type": "text", "text": prompt_text(ask)},
            {"type": "image_url", "image_url": {"url": data_uri}},
        ]},
    ]
