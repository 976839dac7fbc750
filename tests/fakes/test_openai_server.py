"""FakeOpenAI driven through the real openai SDK (sync and async): the wire format the SDK
parses, scripting, recording, and which SDK exception each injected fault becomes.

No database: these tests use no Django fixture and run in a few seconds.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import openai
import pytest
from pydantic import BaseModel

from tests.fakes.openai_server import (
    DEFAULT_FLAGGED_WORDS,
    FakeOpenAI,
    minimal_json,
    prompt_token_count,
    split_pieces,
)

MODEL = "gpt-4o-mini"
KEY = "sk-test-alpha-0001"
MESSAGES: list[Any] = [
    {"role": "system", "content": "Eres un asistente de ventas."},
    {"role": "user", "content": "hola que tal amigo"},
]
ECHO = "Echo: hola que tal amigo"
# 5 + 4 words plus 3 per message; the echo streams as 5 pieces.
USAGE = {"prompt_tokens": 15, "completion_tokens": 5, "total_tokens": 20}
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
# Short: the hang tests wait this long.
TIMEOUT = 0.3
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    server.reset()
    yield server
    server.reset()
    server.latency_ms = 0
    server.tokens_per_second = None


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=fake.base_url, api_key=KEY, max_retries=0, timeout=openai.Timeout(5, connect=2)
    ) as sync_client:
        yield sync_client


def async_client(fake: FakeOpenAI, **options: Any) -> openai.AsyncOpenAI:
    options = {"api_key": KEY, "max_retries": 0, "timeout": 5.0, **options}
    return openai.AsyncOpenAI(base_url=fake.base_url, **options)


def usage_dict(usage: Any) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


# -- chat completions --------------------------------------------------------------------------


def test_it_echoes_the_last_user_message_with_usage(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == ECHO
    assert completion.choices[0].finish_reason == "stop"
    assert usage_dict(completion.usage) == USAGE
    assert completion._request_id is not None
    assert completion._request_id.startswith("req_fake")


def test_it_answers_queued_replies_in_order_then_echoes(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.queue_reply("Primera respuesta")
    fake.queue_reply("Segunda")

    contents = [
        client.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message.content
        for _ in range(3)
    ]

    assert contents == ["Primera respuesta", "Segunda", ECHO]


def test_a_responder_computes_the_reply_from_the_request(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.responder = lambda body: f"{body['model']}:{len(body['messages'])}"

    completion = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)

    assert completion.choices[0].message.content == "gpt-4.1:2"


def test_max_completion_tokens_cuts_the_reply_with_length(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, max_completion_tokens=2
    )

    assert completion.choices[0].message.content == "Echo: hola "
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 2


def test_stream_deltas_reassemble_to_the_reply_and_usage_comes_last(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.queue_reply("Tenemos tres planes: básico, pro y empresa.")

    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    first, *content, final, usage_chunk = chunks
    assert first.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content == ""
    assert [c.choices[0].delta.content for c in content] == split_pieces(
        "Tenemos tres planes: básico, pro y empresa."
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Tenemos tres planes: básico, pro y empresa."
    )
    assert final.choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks[:-1])
    # Usage arrives in an extra chunk with no choices: code reading choices[0] must check.
    assert usage_chunk.choices == []
    assert usage_dict(usage_chunk.usage) == {
        "prompt_tokens": 15,
        "completion_tokens": 7,
        "total_tokens": 22,
    }
    assert {c.id for c in chunks} == {first.id}
    assert all(c.object == "chat.completion.chunk" for c in chunks)


def test_stream_without_include_usage_ends_with_the_finish_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))

    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == ECHO


@pytest.mark.asyncio
async def test_async_client_completes_and_streams(fake: FakeOpenAI) -> None:
    async with async_client(fake) as client:
        completion = await client.chat.completions.create(model=MODEL, messages=MESSAGES)
        stream = await client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        pieces: list[str] = []
        usage = None
        async for chunk in stream:
            if chunk.choices:
                pieces.append(chunk.choices[0].delta.content or "")
            usage = chunk.usage or usage

    assert completion.choices[0].message.content == ECHO
    assert usage_dict(completion.usage) == USAGE
    assert "".join(pieces) == ECHO
    assert usage_dict(usage) == USAGE


def test_stream_helper_accumulates_the_final_completion(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model=MODEL, messages=MESSAGES, stream_options={"include_usage": True}
    ) as stream:
        for _ in stream:
            pass
        completion = stream.get_final_completion()

    assert completion.choices[0].message.content == ECHO
    assert usage_dict(completion.usage) == USAGE


# -- latency and pacing (loose bounds only) ---------------------------------------------------


def test_latency_delays_the_first_byte_in_both_modes() -> None:
    with (
        FakeOpenAI(latency_ms=150) as slow,
        openai.OpenAI(base_url=slow.base_url, api_key=KEY, max_retries=0) as client,
    ):
        started = time.monotonic()
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        non_stream = time.monotonic() - started

        started = time.monotonic()
        stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        next(iter(stream))
        first_chunk = time.monotonic() - started
        stream.close()

        slow.queue_fault("500")
        started = time.monotonic()
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
        error = time.monotonic() - started

    assert non_stream >= 0.14
    assert first_chunk >= 0.14
    assert error >= 0.14


@pytest.mark.asyncio
async def test_async_time_to_first_chunk_includes_latency(fake: FakeOpenAI) -> None:
    fake.latency_ms = 150
    async with async_client(fake) as client:
        started = time.monotonic()
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        await stream.__anext__()
        first_chunk = time.monotonic() - started
        await stream.close()

    assert first_chunk >= 0.14


def test_tokens_per_second_paces_the_pieces(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.tokens_per_second = 50
    fake.queue_reply("uno dos tres cuatro cinco seis siete ocho nueve diez")

    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    arrivals = [time.monotonic() for chunk in stream if chunk.choices[0].delta.content]

    # 10 pieces, 9 gaps of 20 ms.
    assert len(arrivals) == 10
    assert arrivals[-1] - arrivals[0] >= 0.15


# -- faults -----------------------------------------------------------------------------------

STATUS_FAULTS: list[tuple[str, type[openai.APIStatusError], int, str | None]] = [
    ("401", openai.AuthenticationError, 401, "invalid_api_key"),
    ("429_rate_limit", openai.RateLimitError, 429, "rate_limit_exceeded"),
    ("429_quota", openai.RateLimitError, 429, "insufficient_quota"),
    ("500", openai.InternalServerError, 500, None),
    ("503", openai.InternalServerError, 503, None),
    ("400", openai.BadRequestError, 400, "context_length_exceeded"),
]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("kind", "error", "status", "code"), STATUS_FAULTS)
def test_status_faults_raise_the_sdk_exception(
    fake: FakeOpenAI,
    client: openai.OpenAI,
    kind: Any,
    error: type[openai.APIStatusError],
    status: int,
    code: str | None,
    stream: bool,
) -> None:
    fake.queue_fault(kind)

    with pytest.raises(error) as raised:
        client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=stream)

    assert raised.value.status_code == status
    assert raised.value.code == code
    # One fault, one request: the next one succeeds.
    assert client.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message
    assert len(fake.requests) == 2


@pytest.mark.asyncio
@pytest.mark.parametrize(("kind", "error", "status", "code"), STATUS_FAULTS)
async def test_status_faults_raise_the_same_exceptions_async(
    fake: FakeOpenAI, kind: Any, error: type[openai.APIStatusError], status: int, code: str | None
) -> None:
    fake.queue_fault(kind)

    async with async_client(fake) as client:
        with pytest.raises(error) as raised:
            await client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert raised.value.status_code == status
    assert raised.value.code == code


def test_rate_limit_carries_retry_after_and_its_code(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.queue_fault("429_rate_limit", retry_after=2)

    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert raised.value.response.headers["retry-after"] == "2"
    assert raised.value.response.headers["retry-after-ms"] == "2000"
    assert raised.value.code == "rate_limit_exceeded"
    assert raised.value.type == "requests"
    assert raised.value.body == {
        "message": "Rate limit reached for requests. Please try again in 2s.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }


def test_quota_exhaustion_is_a_429_without_retry_after(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.queue_fault("429_quota")

    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert raised.value.code == "insufficient_quota"
    assert raised.value.type == "insufficient_quota"
    assert "retry-after" not in raised.value.response.headers


def test_the_sdk_retries_a_rate_limit_after_retry_after_ms(fake: FakeOpenAI) -> None:
    fake.queue_fault("429_rate_limit", retry_after=0.05)

    with openai.OpenAI(base_url=fake.base_url, api_key=KEY, max_retries=1) as client:
        completion = client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert completion.choices[0].message.content == ECHO
    first, second = fake.requests
    assert second.timestamp - first.timestamp >= 0.04
    assert first.headers["x-stainless-retry-count"] == "0"
    assert second.headers["x-stainless-retry-count"] == "1"


def test_a_fault_repeats_times_then_clears(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.queue_fault("500", times=2)
    fake.queue_fault("401")

    errors = []
    for _ in range(3):
        with pytest.raises(openai.APIStatusError) as raised:
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
        errors.append(raised.value.status_code)

    assert errors == [500, 500, 401]
    assert client.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message


def test_a_fault_does_not_consume_a_queued_reply(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.queue_reply("después del fallo")
    fake.queue_fault("503")

    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    completion = client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert completion.choices[0].message.content == "después del fallo"


@pytest.mark.parametrize("stream", [False, True])
def test_hang_times_out_while_other_requests_are_served(
    fake: FakeOpenAI, client: openai.OpenAI, stream: bool
) -> None:
    fake.queue_fault("hang")
    outcome: list[BaseException] = []

    def hung_call() -> None:
        try:
            client.chat.completions.create(
                model=MODEL, messages=MESSAGES, stream=stream, timeout=TIMEOUT
            )
        except openai.OpenAIError as exc:
            outcome.append(exc)

    hung = threading.Thread(target=hung_call)
    hung.start()
    while not fake.requests:
        time.sleep(0.01)
    served = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    hung.join(timeout=5)

    assert served.choices[0].message.content == ECHO
    [error] = outcome
    assert type(error) is openai.APITimeoutError


@pytest.mark.asyncio
@pytest.mark.parametrize("stream", [False, True])
async def test_hang_times_out_async(fake: FakeOpenAI, stream: bool) -> None:
    fake.queue_fault("hang")

    async with async_client(fake, timeout=TIMEOUT) as client:
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=stream)


def test_hang_mid_stream_times_out_while_iterating(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.queue_fault("hang", after_chunks=2)
    received: list[str] = []

    stream = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, timeout=TIMEOUT
    )
    with pytest.raises(openai.APITimeoutError):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    assert received == ["", "Echo: ", "hola "]


@pytest.mark.asyncio
async def test_hang_mid_stream_times_out_while_iterating_async(fake: FakeOpenAI) -> None:
    fake.queue_fault("hang", after_chunks=1)
    received: list[str] = []

    async with async_client(fake, timeout=TIMEOUT) as client:
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        with pytest.raises(openai.APITimeoutError):
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")

    assert received == ["", "Echo: "]


def test_cut_stream_raises_connection_error_while_iterating(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.queue_fault("cut")
    received: list[str] = []

    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIConnectionError) as raised:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    assert type(raised.value) is openai.APIConnectionError
    assert "incomplete chunked read" in str(raised.value.__cause__)
    assert received == ["", "Echo: ", "hola "]


@pytest.mark.asyncio
async def test_cut_stream_raises_connection_error_async(fake: FakeOpenAI) -> None:
    fake.queue_fault("cut", after_chunks=5)
    received: list[str] = []

    async with async_client(fake) as client:
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        with pytest.raises(openai.APIConnectionError) as raised:
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")

    assert type(raised.value) is openai.APIConnectionError
    # The whole reply arrived, but neither the finish chunk nor [DONE].
    assert "".join(received) == ECHO


def test_cut_non_stream_raises_connection_error(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.queue_fault("cut")

    with pytest.raises(openai.APIConnectionError) as raised:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert type(raised.value) is openai.APIConnectionError


def test_malformed_stream_raises_a_bare_json_error(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.queue_fault("malformed")
    received: list[str] = []

    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    with pytest.raises(json.JSONDecodeError) as raised:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    # Not an openai.OpenAIError: `except openai.OpenAIError` does not catch it.
    assert not isinstance(raised.value, openai.OpenAIError)
    assert received == ["", "Echo: "]


@pytest.mark.asyncio
async def test_malformed_stream_raises_a_bare_json_error_async(fake: FakeOpenAI) -> None:
    fake.queue_fault("malformed", after_chunks=0)

    async with async_client(fake) as client:
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        with pytest.raises(json.JSONDecodeError):
            async for _ in stream:
                pass


def test_malformed_non_stream_raises_a_bare_json_error(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.queue_fault("malformed")

    with pytest.raises(json.JSONDecodeError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)


def test_moderation_faults_leave_chat_alone(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.queue_fault("500", endpoint="moderations")

    completion = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    with pytest.raises(openai.InternalServerError):
        client.moderations.create(input="hola")

    assert completion.choices[0].message.content == ECHO


def test_queue_fault_rejects_unknown_kinds_and_options(fake: FakeOpenAI) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        fake.queue_fault("418")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="retry_after"):
        fake.queue_fault("500", retry_after=1)
    with pytest.raises(ValueError, match="unknown endpoint"):
        fake.queue_fault("500", endpoint="embeddings")  # type: ignore[arg-type]


def test_stop_releases_hung_requests() -> None:
    fake = FakeOpenAI().start()
    fake.queue_fault("hang")
    outcome: list[BaseException] = []

    def hung_call() -> None:
        with openai.OpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0) as client:
            try:
                client.chat.completions.create(model=MODEL, messages=MESSAGES)
            except openai.OpenAIError as exc:
                outcome.append(exc)

    hung = threading.Thread(target=hung_call)
    hung.start()
    while not fake.requests:
        time.sleep(0.01)
    started = time.monotonic()
    fake.stop()
    hung.join(timeout=5)

    assert time.monotonic() - started < 3
    [error] = outcome
    assert type(error) is openai.APIConnectionError


# -- tool calls and structured output ---------------------------------------------------------


def test_it_calls_a_queued_tool(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.queue_tool_call("get_weather", {"city": "Málaga"}, call_id="call_1")

    completion = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, tools=[WEATHER_TOOL]
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.id == "call_1"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Málaga"}


def test_a_queued_tool_call_waits_for_a_request_with_tools(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.queue_tool_call("get_weather", {"city": "Lima"})

    plain = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    with_tools = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, tools=[WEATHER_TOOL]
    )

    assert plain.choices[0].message.content == ECHO
    assert with_tools.choices[0].message.tool_calls


def test_tool_calls_stream_as_deltas(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.queue_tool_calls(
        [("get_weather", {"city": "Santiago de Chile"}), ("get_weather", {"city": "Quito"})]
    )

    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in client.chat.completions.create(
        model=MODEL, messages=MESSAGES, tools=[WEATHER_TOOL], stream=True
    ):
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for delta in choice.delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"name": "", "arguments": ""})
            if delta.function and delta.function.name:
                call["name"] = delta.function.name
            if delta.function and delta.function.arguments:
                call["arguments"] += delta.function.arguments

    assert finish == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("get_weather", {"city": "Santiago de Chile"}),
        ("get_weather", {"city": "Quito"}),
    ]


class Address(BaseModel):
    city: str
    zip_code: str


class Lead(BaseModel):
    name: str
    budget: float
    seats: int
    qualified: bool
    interests: list[str]
    stage: Literal["new", "contacted", "won"]
    phone: str | None
    address: Address


def test_parse_gets_a_minimal_object_valid_for_the_schema(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=Lead)

    assert completion.choices[0].message.parsed == Lead(
        name="",
        budget=0,
        seats=0,
        qualified=False,
        interests=[],
        stage="new",
        phone="",
        address=Address(city="", zip_code=""),
    )


def test_parse_gets_queued_json(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    lead = {
        "name": "Ana",
        "budget": 1200.5,
        "seats": 3,
        "qualified": True,
        "interests": ["crm"],
        "stage": "contacted",
        "phone": None,
        "address": {"city": "Bogotá", "zip_code": "110111"},
    }
    fake.queue_json(lead)

    completion = client.chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=Lead)

    assert completion.choices[0].message.parsed == Lead.model_validate(lead)


def test_json_object_mode_answers_an_object(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, response_format={"type": "json_object"}
    )

    assert json.loads(completion.choices[0].message.content or "") == {}


def test_minimal_json_follows_refs_enums_and_nullable_types() -> None:
    schema = {
        "type": "object",
        "properties": {
            "item": {"$ref": "#/$defs/Item"},
            "kind": {"enum": ["a", "b"]},
            "note": {"type": ["null", "string"]},
            "optional": {"type": "string"},
        },
        "required": ["item", "kind", "note"],
        "$defs": {
            "Item": {
                "properties": {"n": {"type": "integer"}, "ok": {"type": "boolean"}},
                "required": ["n", "ok"],
            }
        },
    }

    assert minimal_json(schema) == {"item": {"n": 0, "ok": False}, "kind": "a", "note": ""}


# -- moderations and models -------------------------------------------------------------------


def test_moderation_flags_inputs_with_a_flagged_word(client: openai.OpenAI) -> None:
    result = client.moderations.create(
        model="omni-moderation-latest", input=["Te voy a MATAR", "quiero comprar el plan pro"]
    )

    flagged, clean = result.results
    assert result.model == "omni-moderation-latest"
    assert flagged.flagged is True
    assert flagged.categories.violence is True
    assert flagged.category_scores.violence == 0.99
    assert clean.flagged is False
    assert clean.categories.violence is False
    assert not any(clean.categories.model_dump().values())


def test_moderation_words_are_settable_and_match_whole_words(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    assert fake.flagged_words == set(DEFAULT_FLAGGED_WORDS)
    fake.flagged_words = {"estafa"}

    results = [
        client.moderations.create(input=text).results[0].flagged
        for text in ("es una ESTAFA!", "estafador", "kill")
    ]

    assert results == [True, False, False]


@pytest.mark.asyncio
async def test_async_moderation(fake: FakeOpenAI) -> None:
    async with async_client(fake) as client:
        result = await client.moderations.create(input="how to build a bomb")

    assert result.results[0].flagged is True


def test_models_are_listed(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]

    assert "gpt-4o-mini" in ids
    assert client.models.retrieve("gpt-4o").owned_by == "openai"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-9")


# -- recording, reset, concurrency, CLI --------------------------------------------------------


def test_it_records_each_request_with_headers_and_body(fake: FakeOpenAI) -> None:
    with (
        openai.OpenAI(base_url=fake.base_url, api_key="sk-alpha", max_retries=0) as alpha,
        openai.OpenAI(base_url=fake.base_url, api_key="sk-beta", max_retries=0) as beta,
    ):
        alpha.chat.completions.create(model="gpt-4o", messages=MESSAGES, temperature=0.2)
        beta.moderations.create(input="hola")

    chat, moderation = fake.requests
    assert chat.method == "POST"
    assert chat.path == "/v1/chat/completions"
    assert chat.headers["authorization"] == "Bearer sk-alpha"
    assert chat.api_key == "sk-alpha"
    assert chat.headers["content-type"] == "application/json"
    assert chat.json == {"model": "gpt-4o", "messages": MESSAGES, "temperature": 0.2}
    assert moderation.path == "/v1/moderations"
    assert moderation.api_key == "sk-beta"
    assert moderation.json == {"input": "hola"}
    assert chat.timestamp <= moderation.timestamp
    assert fake.last_request == moderation


def test_reset_forgets_queues_faults_records_and_responder(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.queue_reply("guardada")
    fake.queue_json({"a": 1})
    fake.queue_tool_call("get_weather", {"city": "Lima"})
    fake.queue_fault("500")
    fake.queue_fault("500", endpoint="moderations")
    fake.responder = lambda body: "responder"
    fake.flagged_words.add("hola")
    client.models.list()

    fake.reset()

    assert fake.requests == []
    assert fake.flagged_words == set(DEFAULT_FLAGGED_WORDS)
    completion = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, tools=[WEATHER_TOOL]
    )
    assert completion.choices[0].message.content == ECHO
    assert client.moderations.create(input="hola").results[0].flagged is False


def test_the_usage_helpers_match_what_the_fake_reports() -> None:
    assert prompt_token_count(MESSAGES) == USAGE["prompt_tokens"]
    assert len(split_pieces(ECHO)) == USAGE["completion_tokens"]
    assert "".join(split_pieces("  a  b\nc ")) == "  a  b\nc "


@pytest.mark.asyncio
async def test_it_serves_200_concurrent_requests(fake: FakeOpenAI) -> None:
    import asyncio

    fake.latency_ms = 50
    async with async_client(fake) as client:
        started = time.monotonic()
        results = await asyncio.gather(
            *(
                client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": f"n{i}"}]
                )
                for i in range(200)
            )
        )
        elapsed = time.monotonic() - started

    assert [r.choices[0].message.content for r in results] == [f"Echo: n{i}" for i in range(200)]
    assert len(fake.requests) == 200
    # Served concurrently: sequentially, 200 x 50 ms would take 10 s.
    assert elapsed < 5


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_cli_serves_until_interrupted_or_terminated(signum: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", "0", "--latency-ms", "1"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = line.strip().rpartition("base_url=")[2]
        with openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0) as client:
            completion = client.chat.completions.create(model=MODEL, messages=MESSAGES)
        process.send_signal(signum)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert base_url.startswith("http://127.0.0.1:")
    assert base_url.endswith("/v1")
    assert completion.choices[0].message.content == ECHO
