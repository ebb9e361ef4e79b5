"""A client for any OpenAI-compatible chat-completions endpoint.

OpenAI, vLLM, Ollama (``/v1``), LM Studio, llama.cpp's server and most gateways speak
the same ``POST {base}/chat/completions`` with vision messages. They differ in which
optional parameters they accept: a 400 that names one of ours (``response_format``,
``max_tokens``, ``temperature``) makes the client drop or rename it, retry once, and
remember the server's preference for the life of the process.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import requests

log = logging.getLogger("feather.ai")

MAX_ANSWER_TOKENS = 300  # two short strings; a bound on cost and on runaway answers
TEMPERATURE = 0.2  # descriptive, not creative


class ProviderError(Exception):
    """The provider did not give an answer: network, timeout, HTTP error or bad body."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ProviderConfig:
    base_url: str
    model: str
    api_key: str = ""
    timeout: float = 20.0  # seconds, per call

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)

    @property
    def endpoint(self) -> str:
        base = self.base_url.rstrip("/")
        if base.endswith("/chat/completions"):
            return base
        return base + "/chat/completions"


def _content_text(content: Any) -> str:
    """The text of a message's ``content``: a string, or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content
                       if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


class ChatProvider:
    """Sends chat-completions requests; safe to share between threads."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        # Parameters this server refused once: not sent again.
        self._refused: set[str] = set()
        self._token_field = "max_tokens"

    def _body(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.config.model, "messages": messages,
                                "stream": False}
        with self._lock:
            refused, token_field = set(self._refused), self._token_field
        if "temperature" not in refused:
            body["temperature"] = TEMPERATURE
        if token_field not in refused:
            body[token_field] = MAX_ANSWER_TOKENS
        if "response_format" not in refused:
            body["response_format"] = {"type": "json_object"}
        return body

    def _adapt(self, error_text: str) -> bool:
        """Learn from a 400 that names one of our optional parameters; True to retry."""
        text = error_text.lower()
        with self._lock:
            if "response_format" in text and "response_format" not in self._refused:
                self._refused.add("response_format")
                return True
            if "max_completion_tokens" in text and self._token_field == "max_tokens":
                self._token_field = "max_completion_tokens"  # newer OpenAI models
                return True
            if "max_tokens" in text and "max_tokens" not in self._refused:
                self._refused.add("max_tokens")
                return True
            if "temperature" in text and "temperature" not in self._refused:
                self._refused.add("temperature")
                return True
        return False

    def complete(self, messages: list[dict[str, Any]], timeout: float | None = None) -> str:
        """The text of the first choice's message. Raises ProviderError.

        ``timeout`` (seconds) bounds the connection and each read; the caller's deadline
        bounds the whole call.
        """
        timeout = self.config.timeout if timeout is None else min(timeout, self.config.timeout)
        if timeout <= 0:
            raise ProviderError("no time left for the AI call")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        for _attempt in range(4):
            try:
                response = requests.post(self.config.endpoint, json=self._body(messages),
                                         headers=headers, timeout=(timeout, timeout))
            except requests.Timeout as exc:
                raise ProviderError("the AI provider timed out") from exc
            except requests.RequestException as exc:
                raise ProviderError(f"the AI provider is unreachable: {exc}") from exc
            if response.status_code == 400 and self._adapt(response.text[:2000]):
                continue
            break
        if response.status_code in (401, 403):
            log.error("The AI provider refused AI_API_KEY (HTTP %s)", response.status_code)
        if response.status_code != 200:
            raise ProviderError(f"the AI provider answered HTTP {response.status_code}",
                                response.status_code)
        try:
            payload = response.json()
            message = payload["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ProviderError("the AI provider's answer is not a chat completion") from exc
        text = _content_text(message.get("content") if isinstance(message, dict) else None)
        if not text.strip():
            raise ProviderError("the AI provider's answer is empty")
        return text
