"""Correlation of token records with their model, and twins (logtail/pipeline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from logtail.pipeline import Pipeline
from logtail.pipeline.correlate import Correlator, provider_for
from logtail.source.files import discover
from logtail.source.read import read_events
from parsers import FileContext, parse_record
from parsers.event import Event
from parsers.records import Record

CHECK = (
    '2025-11-24T23:25:11.431Z debug: [Balance.check] Initial state\n{{\n  user: "u1",\n  model: "{model}",\n'
    '  endpoint: "{endpoint}",\n  tokenType: "prompt",\n  amount: 10,\n{request}}}\n'
)
USAGE = (
    "2025-11-24T23:25:{sec}.483Z debug: [spendTokens] conversationId: {conv} | Context: message | Token usage:\n"
    "{{\n  promptTokens: 40,\n  completionTokens: 17,\n{request}}}\n"
)


def events(*texts: str, path: str = "/l/debug.log") -> list[Event]:
    ctx = FileContext(family="debug", path=path, name="debug.log", identity="i", file_date_ns=0)
    out = []
    for offset, text in enumerate(texts):
        data = text.encode()
        out.append(parse_record(Record(data, offset * 1000, offset * 1000 + len(data), offset + 1), ctx))
    return out


def request(rid: str | None) -> str:
    return f'  requestId: "{rid}",\n' if rid else ""


def test_usage_gets_model_provider_and_endpoint_of_its_request() -> None:
    batch = events(
        CHECK.format(model="gpt-4o", endpoint="azureOpenAI", request=request("r1")),
        CHECK.format(model="claude-3-5-sonnet", endpoint="anthropic", request=request("r2")),
        USAGE.format(sec="12", conv="c1", request=request("r1")),
        USAGE.format(sec="13", conv="c2", request=request("r2")),
        USAGE.format(sec="14", conv="c3", request=request("r3")),
    )
    Pipeline().process(batch)
    first, second, unknown = (e.attributes for e in batch[2:])
    assert (first["gen_ai.request.model"], first["gen_ai.provider.name"], first["librechat.endpoint"]) == (
        "gpt-4o",
        "azure.ai.openai",
        "azureOpenAI",
    )
    assert second["gen_ai.provider.name"] == "anthropic"
    assert "gen_ai.request.model" not in unknown
    assert batch[0].attributes["gen_ai.provider.name"] == "azure.ai.openai"


def test_state_carries_across_batches_and_conversations() -> None:
    pipeline = Pipeline()
    pipeline.process(events(CHECK.format(model="gemini-2.0-flash", endpoint="google", request=request("r1"))))
    (later,) = pipeline.process(events(USAGE.format(sec="20", conv="c1", request=request("r1"))))
    assert later.attributes["gen_ai.provider.name"] == "gcp.gemini"
    # A later record of the same conversation without request context joins through the conversation.
    (same_conversation,) = pipeline.process(events(USAGE.format(sec="21", conv="c1", request="")))
    assert same_conversation.attributes["gen_ai.request.model"] == "gemini-2.0-flash"


def test_v07_records_without_request_ids_join_the_check_just_before() -> None:
    batch = events(
        CHECK.format(model="anthropic.claude-3-5-sonnet-20240620-v1:0", endpoint="bedrock", request=""),
        USAGE.format(sec="12", conv="c9", request=""),
    )
    Pipeline().process(batch)
    assert batch[1].attributes["gen_ai.provider.name"] == "aws.bedrock"


def test_a_request_straddling_a_size_rotation_joins_but_another_directory_does_not() -> None:
    pipeline = Pipeline()
    pipeline.process(events(CHECK.format(model="o3-mini", endpoint="openAI", request=""), path="/l/debug-x.log.gz"))
    (next_file,) = pipeline.process(events(USAGE.format(sec="12", conv="c9", request=""), path="/l/debug-x.log.1"))
    assert next_file.attributes["gen_ai.request.model"] == "o3-mini"
    (other,) = pipeline.process(events(USAGE.format(sec="12", conv="c8", request=""), path="/m/debug-x.log"))
    assert "gen_ai.request.model" not in other.attributes


def test_correlation_memory_is_bounded() -> None:
    correlator = Correlator(window=2)
    for rid in ("r1", "r2", "r3"):
        for event in events(CHECK.format(model=f"m-{rid}", endpoint="openAI", request=request(rid))):
            correlator(event)
    (old,) = events(USAGE.format(sec="30", conv="c", request=request("r1")))
    (recent,) = events(USAGE.format(sec="30", conv="d", request=request("r3")))
    assert "gen_ai.request.model" not in correlator(old).attributes
    assert correlator(recent).attributes["gen_ai.request.model"] == "m-r3"


def test_an_error_file_record_joins_its_debug_copy_past_the_request_window() -> None:
    """A replay reads a day's debug file before its error file: the joins of its error copies outlive the requests."""
    correlator = Correlator(window=2)

    def error(second: int, rid: str | None, path: str) -> Event:
        (event,) = events(f"2025-11-24T23:32:{second:02d}.772Z error: stream failed\n", path=path)
        if rid:  # the debug file's copy (a twin): its request context is logged
            event.attributes["librechat.request.id"] = rid
        else:  # the error file's record
            del event.attributes["logtail.twin"]
        return event

    for second, rid in enumerate(("r1", "r2", "r3", "r4")):
        (check,) = events(CHECK.format(model=f"m-{rid}", endpoint="openAI", request=request(rid)))
        correlator(check)
        correlator(error(second, rid, "/l/debug-x.log"))
    joined = [correlator(error(second, None, "/l/error-x.log")) for second in range(4)]
    assert [e.attributes.get("gen_ai.request.model") for e in joined] == ["m-r1", "m-r2", "m-r3", "m-r4"]


@pytest.mark.parametrize(
    ("endpoint", "model", "provider"),
    [
        ("openAI", "gpt-4o", "openai"),
        ("azureOpenAI", "gpt-4o", "azure.ai.openai"),
        ("anthropic", "claude-3", "anthropic"),
        ("bedrock", "anthropic.claude", "aws.bedrock"),
        ("google", "gemini-1.5-pro", "gcp.gemini"),
        ("agents", "claude-3-5-sonnet", "anthropic"),
        ("agents", "o3-mini", "openai"),
        ("MyCustom", "llama-3", None),
    ],
)
def test_provider_names(endpoint: str, model: str, provider: str | None) -> None:
    assert provider_for(endpoint, model) == provider


def test_twins_are_marked_only_when_the_error_file_is_processed_too() -> None:
    text = "2025-11-24T23:32:46.772Z error: WriteConflict error: this operation conflicted\n"
    (twin,) = Pipeline().process(events(text))
    assert twin.attributes["logtail.twin"] is True
    (only_copy,) = Pipeline(error_family=False).process(events(text))
    assert "logtail.twin" not in only_copy.attributes


def test_samples_token_records_are_joined(samples: Path) -> None:
    pipeline = Pipeline()
    usage = []
    for log_file in discover([samples / "v0.8"]):
        for event in pipeline.process(list(read_events(log_file))):
            if event.event_name == "librechat.token.usage":
                usage.append(event)
    joined = [e for e in usage if "gen_ai.provider.name" in e.attributes]
    assert len(usage) == 280 and len(joined) >= 250
