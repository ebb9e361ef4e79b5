"""AI alt text and SEO file names through an OpenAI-compatible chat-completions server.

``init_app`` registers a ``Describer`` in ``app.extensions[AI_EXTENSION]`` when
AI_BASE_URL and AI_MODEL are set; without them AI features answer 403
``ia_not_available`` saying the server has no AI configured.
"""

from __future__ import annotations

from flask import Flask, current_app

from feather_server.ai.describe import DescribeFailed, Describer, Description, ai_deadline, describe_all
from feather_server.ai.languages import LANGUAGES, parse_language
from feather_server.ai.names import NameBook, seo_stem
from feather_server.ai.provider import ChatProvider, ProviderConfig
from feather_server.http.errors import ApiError
from feather_server.settings import Settings

__all__ = ["AI_EXTENSION", "DescribeFailed", "Describer", "Description", "LANGUAGES",
           "NameBook", "ai_deadline", "current_describer", "describe_all", "init_app",
           "not_configured", "parse_language", "provider_config", "seo_stem"]

# The key the batch view looks its describer up by (feather_server.api.batch.AI_DESCRIBER).
AI_EXTENSION = "feather.ai_describer"
NOT_CONFIGURED_MESSAGE = ("AI features are not configured on this server "
                          "(the operator has not set AI_BASE_URL and AI_MODEL).")


def provider_config(settings: Settings) -> ProviderConfig:
    return ProviderConfig(base_url=settings.ai_base_url, model=settings.ai_model,
                          api_key=settings.ai_api_key, timeout=settings.ai_timeout_ms / 1000)


def init_app(app: Flask) -> None:
    settings: Settings = app.config["FEATHER"]
    config = provider_config(settings)
    if config.configured:
        app.extensions[AI_EXTENSION] = Describer(ChatProvider(config))


def current_describer() -> Describer | None:
    describer: Describer | None = current_app.extensions.get(AI_EXTENSION)
    return describer


def not_configured() -> ApiError:
    """403 ia_not_available: this server has no AI provider."""
    return ApiError("AI_NOT_AVAILABLE", NOT_CONFIGURED_MESSAGE, status=403,
                    flux_error="ia_not_available")
