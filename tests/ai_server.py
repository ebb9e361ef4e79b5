"""A real HTTP server on 127.0.0.1 speaking OpenAI's chat-completions protocol.

It stands in for a hosted vision model. ``POST /v1/chat/completions`` answers in the
current ``mode``:

- ``good``     the JSON object alone
- ``prose``    the JSON inside a sentence, with trailing text
- ``fenced``   the JSON in a Markdown code fence
- ``garbage``  a sentence with no JSON in it
- ``slow``     ``good`` after ``slow_seconds``
- ``500``      HTTP 500
- ``401``      HTTP 401 (also whenever ``api_key`` is set and the request lacks it)

The answer is written in the language the prompt names (a table of the document's 15
languages), or is ``reply`` verbatim when a test sets it. Every request is recorded
(headers and JSON body) so tests can check the prompt, the image and the key.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

# (altText, fileName) per language, as a good model would write them.
ANSWERS: dict[str, tuple[str, str]] = {
    "English": ("Red running shoes on a white background", "red running shoes"),
    "Español": ("Zapatillas de correr rojas sobre fondo blanco", "zapatillas de correr rojas"),
    "Català": ("Sabatilles de córrer vermelles sobre fons blanc", "sabatilles de córrer"),
    "Français": ("Chaussures de course rouges sur fond blanc", "chaussures de course rouges"),
    "Deutsch": ("Rote Laufschuhe auf weißem Hintergrund", "rote Laufschuhe weiß"),
    "Italiano": ("Scarpe da corsa rosse su sfondo bianco", "scarpe da corsa rosse"),
    "Português": ("Tênis de corrida vermelhos em fundo branco", "tênis de corrida vermelhos"),
    "Nederlands": ("Rode hardloopschoenen op een witte achtergrond", "rode hardloopschoenen"),
    "Polski": ("Czerwone buty do biegania na białym tle", "czerwone buty do biegania"),
    "Русский": ("Красные кроссовки на белом фоне", "красные кроссовки"),
    "中文": ("白色背景上的红色跑鞋", "红色跑鞋"),
    "日本語": ("白い背景の赤いランニングシューズ", "赤いランニングシューズ"),
    "한국어": ("흰색 배경의 빨간 운동화", "빨간 운동화"),
    "Arabic": ("حذاء جري أحمر على خلفية بيضاء", "حذاء جري أحمر"),
    "Hindi": ("सफेद पृष्ठभूमि पर लाल दौड़ने के जूते", "लाल जूते"),
}


@dataclass(frozen=True)
class ChatRequest:
    """One request as the server received it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    @property
    def prompt(self) -> str:
        """Every text part of every message, joined."""
        texts = []
        for message in self.body.get("messages", []):
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
            else:
                texts += [p.get("text", "") for p in content if p.get("type") == "text"]
        return "\n".join(texts)

    @property
    def image_urls(self) -> list[str]:
        return [p["image_url"]["url"] for m in self.body.get("messages", [])
                if isinstance(m.get("content"), list)
                for p in m["content"] if p.get("type") == "image_url"]

    @property
    def language(self) -> str:
        """The language of the prompt's "Language:" line (English when none matches)."""
        for line in self.prompt.splitlines():
            if line.startswith("Language:"):
                for name in ANSWERS:
                    if name in line:
                        return name
        return "English"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        ai = self.server.ai
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        request = ChatRequest(self.path, {k.lower(): v for k, v in self.headers.items()},
                              body)
        ai._record(request)
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": {"message": "not found"}})
            return
        mode = ai.mode
        if mode == "401" or (ai.api_key and request.authorization != f"Bearer {ai.api_key}"):
            self._send(401, {"error": {"message": "Incorrect API key provided",
                                       "type": "invalid_request_error"}})
            return
        refused = [p for p in ai.refuse_params if p in body]
        if refused:
            self._send(400, {"error": {"message": f"Unsupported parameter: '{refused[0]}'",
                                       "type": "invalid_request_error"}})
            return
        if mode == "500":
            self._send(500, {"error": {"message": "The server had an error"}})
            return
        if mode == "slow":
            ai._enter()
            try:
                if ai._stopping.wait(ai.slow_seconds):
                    return
            finally:
                ai._leave()
        self._send(200, {
            "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": ai.content(request)}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        })


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    ai: AiServer


class AiServer:
    """Start with ``with AiServer() as ai:``; ``ai.base_url`` is the AI_BASE_URL."""

    def __init__(self, api_key: str = "") -> None:
        self.api_key = api_key
        self.mode = "good"
        self.slow_seconds = 60.0
        self.reply: str | None = None  # the exact content of good answers, when set
        self.refuse_params: tuple[str, ...] = ()  # 400 when the body carries one of these
        self.requests: list[ChatRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0  # most slow answers held at once
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.ai = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def content(self, request: ChatRequest) -> str:
        if self.reply is not None and self.mode != "garbage":
            answer = self.reply
        else:
            alt, name = ANSWERS[request.language]
            answer = json.dumps({"altText": alt, "fileName": name}, ensure_ascii=False)
        if self.mode == "prose":
            return f"Sure! Here is the JSON you asked for: {answer} Let me know if you need more."
        if self.mode == "fenced":
            return f"```json\n{answer}\n```\n"
        if self.mode == "garbage":
            return "I'm sorry, but I can't help with describing this picture today."
        return answer

    def _record(self, request: ChatRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def seen(self) -> list[ChatRequest]:
        with self._lock:
            return list(self.requests)

    def start(self) -> AiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> AiServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
