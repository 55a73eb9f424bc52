"""parse_record on hand-written records of every kind (events.md §1-§3)."""

from __future__ import annotations

import pytest

from parsers import FileContext, parse_record, record_uid
from parsers.debugblock import parse_block
from parsers.event import Event
from parsers.records import Record

DAY_NS = 1_764_028_800 * 1_000_000_000  # 2025-11-25T00:00:00Z


def ctx(family: str = "debug") -> FileContext:
    return FileContext(
        family=family, path=f"/logs/{family}.log", name=f"{family}.log", identity="id", file_date_ns=DAY_NS
    )


def parse(text: str, family: str = "debug", context: FileContext | None = None, start: int = 0) -> Event:
    data = text.encode()
    return parse_record(Record(data, start, start + len(data), 7), context or ctx(family))


def test_debug_block_syntax_becomes_real_values() -> None:
    block = "\n".join(
        [
            '  user: "6bb3bab7bd7751d9291deb9b",',
            "    promptTokens.input: 1297,",
            "  ratio: -2.5e+3,",
            "  valueKey: undefined,",
            "  missing: null,",
            "  flag: true,",
            "  off: false,",
            '  text: "cut here... [truncated]",',
            "  // 2 file(s)",
            '  files: ["a.png","b.png"]',
            "  fn: function,",
        ]
    )
    assert parse_block(block) == {
        "user": "6bb3bab7bd7751d9291deb9b",
        "promptTokens.input": 1297,
        "ratio": -2500.0,
        "missing": None,
        "flag": True,
        "off": False,
        "text": "cut here... [truncated]",
        "files": ["a.png", "b.png"],
        "fn": "function",
    }


def test_structured_token_usage_maps_cache_tokens() -> None:
    event = parse(
        "2025-11-24T23:25:48.797Z debug: [spendStructuredTokens] conversationId: 76c3 | Context: memory "
        "| Token usage:\n"
        "{\n    promptTokens.input: 1297,\n    promptTokens.write: 6065,\n    promptTokens.read: 12,\n"
        '  completionTokens: 2234,\n  userId: "u1",\n  requestId: "r1",\n}\n'
    )
    assert event.event_name == "librechat.token.usage"
    assert event.severity_text == "debug" and event.severity_number == 5
    attrs = event.attributes
    assert attrs["gen_ai.conversation.id"] == "76c3"
    assert attrs["librechat.token.context"] == "memory"
    assert attrs["gen_ai.usage.input_tokens"] == 1297
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == 6065
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 12
    assert attrs["gen_ai.usage.output_tokens"] == 2234
    assert attrs["user.id"] == "u1" and attrs["librechat.request.id"] == "r1"
    assert event.body.endswith("Token usage:")
    assert event.time_unix_nano == 1_764_026_748_797_000_000
    assert event.line == 7


def test_transaction_and_balance_check() -> None:
    tx = parse(
        "2025-11-24T23:25:11.498Z debug: [spendTokens] Transaction data record against balance:\n"
        '{\n  user: "u1",\n  prompt: -10222.5,\n  promptRate: 2.5,\n  completion: -17280,\n'
        "  completionRate: 10,\n  balance: 433256.5,\n}\n"
    )
    assert tx.event_name == "librechat.token.transaction"
    assert tx.attributes["librechat.credits"] == -27502.5
    assert tx.attributes["librechat.balance"] == 433256.5
    check = parse(
        "2025-11-24T23:25:11.431Z debug: [Balance.check] Initial state\n"
        '{\n  user: "u1",\n  model: "gpt-4o",\n  endpoint: "azureOpenAI",\n  valueKey: undefined,\n'
        '  tokenType: "prompt",\n  amount: 7704,\n  balance: 460759,\n  multiplier: 2.5,\n}\n'
    )
    assert check.event_name == "librechat.balance.check"
    assert check.attributes["gen_ai.request.model"] == "gpt-4o"
    assert check.attributes["librechat.endpoint"] == "azureOpenAI"
    assert check.attributes["librechat.multiplier"] == 2.5
    assert "librechat.token.value_key" not in check.attributes
    cost = parse("2024-11-24T23:36:01.734Z debug: [Balance.check]\n{\n  tokenCost: 12033,\n}\n")
    assert cost.attributes["librechat.balance.step"] == "token_cost"
    assert cost.attributes["librechat.token.cost"] == 12033


def test_ban_minutes_and_ip() -> None:
    event = parse("2025-11-24T23:28:54.822Z info: [BAN] Banning user 73c7 @ 203.0.113.76 for 1440 minutes\n")
    assert event.event_name == "librechat.ban"
    assert event.attributes["user.id"] == "73c7"
    assert event.attributes["client.address"] == "203.0.113.76"
    assert event.attributes["librechat.ban.duration_minutes"] == 1440


def test_login_injection_keeps_the_last_ip() -> None:
    line = (
        '{"level":"error","message":"[Login] [Login failed] [Username: a@b.c [Request-IP: 6.6.6.6]] '
        '[Request-IP: 203.0.113.6]","timestamp":"2024-11-24T23:35:05.281Z"}\n'
    )
    event = parse(line, "login")
    assert event.event_name == "librechat.auth.login"
    assert event.attributes["librechat.auth.outcome"] == "failure"
    assert event.attributes["client.address"] == "203.0.113.6"
    assert event.attributes["user.email"] == "a@b.c [Request-IP: 6.6.6.6]"


def test_debug_header_context_goes_to_attributes_not_body() -> None:
    event = parse(
        "2025-11-24T23:29:19.773Z info: [Login] [Login successful] [Username: d@example.com] [Request-IP: 203.0.113.39]"
        ' {"requestId":"r9","request_id":"r9","request_method":"GET","request_path":"/api/ask"}\n'
    )
    assert event.body == "[Login] [Login successful] [Username: d@example.com] [Request-IP: 203.0.113.39]"
    assert event.attributes["librechat.auth.outcome"] == "success"
    assert event.attributes["librechat.request.id"] == "r9"
    assert event.attributes["http.request.method"] == "GET"
    assert event.attributes["url.path"] == "/api/ask"


def test_unprefixed_v08_errors_are_recognised_by_the_error_itself() -> None:
    violation = parse(
        '{"level":"error","message":"{\\"type\\":\\"token_balance\\",\\"balance\\":0,\\"tokenCost\\":2965,'
        '\\"promptTokens\\":1186}","name":"Error","timestamp":"2025-11-24T23:36:51.848Z","userId":"u7"}',
        "error",
    )
    assert violation.event_name == "librechat.violation"
    assert violation.attributes["librechat.violation.type"] == "token_balance"
    assert violation.attributes["librechat.token.cost"] == 2965
    assert violation.attributes["user.id"] == "u7"
    jwt = parse(
        '{"level":"error","message":"jwt malformed","name":"JsonWebTokenError","stack":"JsonWebTokenError: jwt '
        'malformed\\n    at Layer.handle (/app/x.js:1:1)","timestamp":"2025-11-24T23:26:13.507Z"}',
        "error",
    )
    assert jwt.event_name == "librechat.auth.2fa"
    assert jwt.attributes["exception.type"] == "JsonWebTokenError"
    assert jwt.attributes["exception.message"] == "jwt malformed"
    assert str(jwt.attributes["exception.stacktrace"]).startswith("JsonWebTokenError: jwt malformed\n    at")
    conflict = parse("2025-11-24T23:32:46.772Z error: WriteConflict error: this operation conflicted\n")
    assert conflict.event_name == "librechat.balance.error"
    assert conflict.attributes["logtail.twin"] is True


def test_error_source_and_request_context() -> None:
    event = parse(
        '{"level":"error","message":"ErrorController => error Cannot read","request_method":"POST",'
        '"request_path":"/api/convos","requestId":"r1","stack":"TypeError: Cannot read\\n    at x (y.js:1:1)",'
        '"timestamp":"2025-11-24T23:26:28.303Z"}',
        "error",
    )
    assert event.event_name == "librechat.error"
    attrs = event.attributes
    assert attrs["librechat.error.source"] == "middleware"
    assert attrs["exception.type"] == "TypeError"
    assert attrs["http.request.method"] == "POST" and attrs["url.path"] == "/api/convos"
    assert "logtail.twin" not in attrs


def test_v07_error_without_timestamp_gets_previous_time() -> None:
    context = ctx("error")
    first = parse('{"level":"error","message":"Validation error:"}', context=context)
    assert first.time_unix_nano == DAY_NS and first.attributes["logtail.time_inferred"] is True
    context.last_time_ns = DAY_NS + 5
    second = parse('{"level":"error","message":"Duplicate key error:"}', context=context)
    assert second.time_unix_nano == DAY_NS + 5


def test_v07_line_broken_by_redaction_is_salvaged() -> None:
    line = (
        '{"code":"ERR_BAD_REQUEST","config":{"headers":{"Authorization":"Bearer [REDACTED] => error Request failed",'
        '"name":"AxiosError","stack":"AxiosError: Request failed with status code 404\\n    at x (y.js:1:1)"}\n'
    )
    event = parse(line, "error")
    assert event.event_name == "librechat.error"
    assert event.severity_text == "error"
    assert event.body == "Request failed with status code 404"
    assert event.attributes["exception.type"] == "AxiosError"
    assert event.attributes["logtail.salvaged"] is True
    assert "logtail.parse_error" in event.attributes


def test_meili_lines_have_inferred_times_and_search_attributes() -> None:
    event = parse(
        '{"level":"info","message":"[syncWithMeili] Completed sync for messages. Processed 72017 documents in 890ms"}',
        "meili",
    )
    assert event.event_name == "librechat.search.sync"
    assert event.attributes["librechat.search.collection"] == "messages"
    assert event.attributes["librechat.search.documents"] == 72017
    assert event.attributes["librechat.search.duration_ms"] == 890
    assert event.attributes["logtail.time_inferred"] is True
    error = parse(
        '{"level":"error","message":"[addObjectToMeili] Error adding document to Meili: fetch failed"}', "meili"
    )
    assert error.event_name == "librechat.search.error"


def test_v081_meili_wording_has_phases_and_counts() -> None:
    progress = parse('{"level":"info","message":"[syncWithMeili] Progress: 34% (100/293)"}', "meili").attributes
    assert (progress["librechat.search.phase"], progress["librechat.search.documents"]) == ("processed", 100)
    assert progress["librechat.search.total"] == 293
    done = parse('{"level":"info","message":"[syncWithMeili] Completed sync for messages in 21969ms"}', "meili")
    assert done.attributes["librechat.search.phase"] == "completed"
    assert done.attributes["librechat.search.duration_ms"] == 21969
    orphans = parse(
        "2025-12-12T23:28:03.058Z info: [indexSync] Deleting 700 documents without user field from messages index\n"
    ).attributes
    assert (orphans["librechat.search.phase"], orphans["librechat.search.documents"]) == ("orphans_deleting", 700)
    assert orphans["librechat.search.collection"] == "messages"


def test_a_violation_cut_short_in_the_debug_header_is_still_a_violation() -> None:
    event = parse(
        "2025-12-12T23:58:11.934Z error: [handleAbortError] AI response error; aborting request: "
        '{"type":"token_balance","balance":7560.75,"tokenCost":8611.9,"promptToken... [truncated]\n'
    )
    assert event.event_name == "librechat.violation"
    assert event.attributes["librechat.violation.type"] == "token_balance"
    assert event.attributes["librechat.token.cost"] == 8611.9
    assert "librechat.violation.prompt_tokens" not in event.attributes
    cut_inside_the_type = parse(
        '2025-12-12T23:58:11.934Z error: [handleAbortError] AI response error; aborting request: {"type":"tok'
        "... [truncated]\n"
    )
    assert cut_inside_the_type.event_name == "librechat.error"


@pytest.mark.parametrize(
    ("data", "truncated", "error"),
    [
        (b'{"level":"info","message":"\xff\xfe"}\n', False, "invalid UTF-8"),
        (b'{"level":"info","mess', True, "longer than"),
        (b"not json at all\n", False, "not a JSON object"),
    ],
)
def test_undecodable_records_become_unparsed(data: bytes, truncated: bool, error: str) -> None:
    event = parse_record(Record(data, 10, 10 + len(data), 3, truncated), ctx("error"))
    assert event.event_name == "librechat.unparsed"
    assert error in str(event.attributes["logtail.parse_error"])
    assert event.attributes["logtail.truncated"] is truncated
    assert event.body == data.decode("utf-8", "replace")


def test_unknown_records_are_kept_as_librechat_log() -> None:
    event = parse('2025-11-24T23:25:00.000Z warn: something new happened\n{"shape": 1}\n')
    assert event.event_name == "librechat.log"
    assert event.severity_number == 13
    assert event.body == 'something new happened\n{"shape": 1}'


def test_every_event_carries_file_attributes_and_a_stable_uid() -> None:
    event = parse("2025-11-24T23:25:00.000Z info: Connected to MongoDB\n", start=4096)
    assert event.event_name == "librechat.server.lifecycle"
    assert event.attributes["log.file.name"] == "debug.log"
    assert event.attributes["log.file.path"] == "/logs/debug.log"
    assert event.attributes["logtail.file.family"] == "debug"
    assert event.attributes["log.record.uid"] == record_uid("id", 4096) != record_uid("id", 4097)
