"""What a request asks of the AI: its fields, once parsed."""

from __future__ import annotations

from dataclasses import dataclass

from feather_server.ai.languages import DEFAULT_LANGUAGE


@dataclass(frozen=True)
class AiAsk:
    """The AI fields of a FluxImage request."""

    alt_text: bool = False
    rename: bool = False
    language: str = DEFAULT_LANGUAGE
    context: str = ""
    keywords: str = ""

    @property
    def wanted(self) -> bool:
        return self.alt_text or self.rename
