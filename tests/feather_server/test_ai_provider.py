"""The chat-completions client and the batch describer, against a real local server."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator

import pytest
from PIL import Image

from feather_server.ai.describe import DescribeFailed, Describer
from feather_server.ai.provider import ChatProvider, ProviderConfig, ProviderError
from tests.ai_server import AiServer
from tests.images import encode, photo


@pytest.fixture
def ai() -> Iterator[AiServer]:
    with AiServer(api_key="sk-test-123") as server:
        yield server


def describer(ai: AiServer, *, key: str = "sk-test-123", timeout: float = 20.0,
              concurrency: int = 6) -> Describer:
    config = ProviderConfig(base_url=ai.base_url, model="vision-test", api_key=key,
                            timeout=timeout)
    return Describer(ChatProvider(config), max_concurrent=concurrency)


class Ask:
    def __init__(self, alt_text: bool = True, rename: bool = True, language: str = "English",
                 context: str = "", keywords: str = "") -> None:
        self.alt_text, self.rename, self.language = alt_text, rename, language
        self.context, self.keywords = context, keywords


PNG = encode(photo(1600, 900, mode="RGBA"), "PNG")


def test_request_carries_model_key_prompt_and_a_small_jpeg(ai: AiServer) -> None:
    answer = describer(ai).describe(PNG, Ask(language="Русский", context="sportswear shop",
                                              keywords="running shoes men"))
    assert answer.alt_text == "Красные кроссовки на белом фоне"
    assert answer.name == "krasnye-krossovki"
    (seen,) = ai.seen()
    assert seen.path == "/v1/chat/completions"
    assert seen.authorization == "Bearer sk-test-123"
    assert seen.body["model"] == "vision-test"
    assert "Russian (Русский)" in seen.prompt
    assert "sportswear shop" in seen.prompt
    assert "running shoes men" in seen.prompt
    assert "JSON" in seen.prompt
    (url,) = seen.image_urls
    assert url.startswith("data:image/jpeg;base64,")
    preview = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert preview.format == "JPEG"
    assert preview.size == (512, 288)
    assert len(url) < 60_000  # a small image, not the 1600 px upload
    # transparent areas were flattened on white, not black
    corner = preview.convert("RGB").getpixel((2, 2))
    assert isinstance(corner, tuple)
    assert min(corner) > 200


@pytest.mark.parametrize("mode", ["good", "prose", "fenced"])
@pytest.mark.parametrize(("language", "alt", "name"), [
    ("English", "Red running shoes on a white background", "red-running-shoes"),
    ("中文", "白色背景上的红色跑鞋", "hong-se-pao-xie"),
    ("Español", "Zapatillas de correr rojas sobre fondo blanco", "zapatillas-de-correr-rojas"),
])
def test_answers_in_every_wrapping_are_used(ai: AiServer, mode: str, language: str, alt: str,
                                            name: str) -> None:
    ai.mode = mode
    answer = describer(ai).describe(PNG, Ask(language=language))
    assert (answer.alt_text, answer.name) == (alt, name)


@pytest.mark.parametrize(("mode", "status"), [("garbage", None), ("500", 500), ("401", 401)])
def test_failures_raise(ai: AiServer, mode: str, status: int | None) -> None:
    ai.mode = mode
    with pytest.raises(DescribeFailed):
        describer(ai).describe(PNG, Ask())
    if status:
        provider = ChatProvider(ProviderConfig(ai.base_url, "m", "sk-test-123"))
        with pytest.raises(ProviderError) as caught:
            provider.complete([{"role": "user", "content": "hi"}])
        assert caught.value.status == status


def test_a_wrong_key_is_a_failure(ai: AiServer) -> None:
    with pytest.raises(DescribeFailed):
        describer(ai, key="sk-wrong").describe(PNG, Ask())
    assert ai.seen()[0].authorization == "Bearer sk-wrong"


def test_unreachable_provider_is_a_failure() -> None:
    with AiServer() as gone:
        url = gone.base_url
    config = ProviderConfig(base_url=url, model="m", timeout=5)
    with pytest.raises(DescribeFailed):
        Describer(ChatProvider(config)).describe(PNG, Ask())


def test_only_what_was_asked_is_returned(ai: AiServer) -> None:
    only_alt = describer(ai).describe(PNG, Ask(rename=False))
    assert only_alt.alt_text
    assert only_alt.name is None
    only_name = describer(ai).describe(PNG, Ask(alt_text=False))
    assert only_name.alt_text is None
    assert only_name.name == "red-running-shoes"


def test_long_alt_text_is_capped_and_wrong_language_dropped(ai: AiServer) -> None:
    ai.reply = ('{"altText": "' + "A red running shoe on a white table, " * 6 +
                '", "fileName": "red shoe"}')
    answer = describer(ai).describe(PNG, Ask())
    assert answer.alt_text
    assert len(answer.alt_text) <= 80
    assert answer.alt_text.startswith("A red running shoe on a white table")
    ai.reply = '{"altText": "Red running shoes", "fileName": "red shoes"}'
    russian = describer(ai).describe(PNG, Ask(language="Русский"))
    assert russian.alt_text is None
    assert russian.name == "red-shoes"
    with pytest.raises(DescribeFailed):  # alt text alone was asked, and it is unusable
        describer(ai).describe(PNG, Ask(language="Русский", rename=False))


def test_missing_file_name_falls_back_to_the_alt_text(ai: AiServer) -> None:
    ai.reply = '{"altText": "Blue bicycle by a canal"}'
    assert describer(ai).describe(PNG, Ask(alt_text=False)).name == "blue-bicycle-by-a-canal"


def test_parameters_a_server_refuses_are_dropped_and_remembered(ai: AiServer) -> None:
    ai.refuse_params = ("response_format", "temperature")
    d = describer(ai)
    assert d.describe(PNG, Ask()).alt_text
    assert d.describe(PNG, Ask()).alt_text
    bodies = [r.body for r in ai.seen()]
    assert "response_format" in bodies[0]
    assert all("response_format" not in b and "temperature" not in b for b in bodies[-2:])
    assert len(bodies) == 4  # 2 refusals, then one request per image


def test_a_batch_runs_concurrently_within_the_bound(ai: AiServer) -> None:
    ai.mode, ai.slow_seconds = "slow", 0.5
    images = [encode(photo(200, 150, seed=i), "JPEG") for i in range(10)]
    answers = describer(ai, concurrency=4).describe_batch(images, Ask(),
                                                          time.monotonic() + 120)
    assert all(a is not None and a.name == "red-running-shoes" for a in answers)
    assert 1 < ai.max_in_flight <= 4


def test_a_slow_provider_cannot_outlive_the_deadline(ai: AiServer) -> None:
    ai.mode, ai.slow_seconds = "slow", 120
    images = [encode(photo(200, 150, seed=i), "JPEG") for i in range(8)]
    started = time.monotonic()
    answers = describer(ai, timeout=100).describe_batch(images, Ask(), started + 1.5)
    assert answers == [None] * 8
    # Far below the provider's 120 s, whatever the machine's load.
    assert time.monotonic() - started < 30


def test_one_failure_does_not_sink_the_others(ai: AiServer) -> None:
    images = [PNG, b"not an image", PNG]
    answers = describer(ai).describe_batch(images, Ask(), time.monotonic() + 60)
    assert answers[0]
    assert answers[2]
    assert answers[1] is None
    assert len(ai.seen()) == 2  # the broken image never reached the provider
