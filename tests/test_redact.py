"""Every secret shape of events.md §5 is redacted wherever it sits, at every level; token counts are not secrets."""

from __future__ import annotations

import orjson
import pytest

from logtail.pipeline import Pipeline, PrivacySettings
from logtail.pipeline.redact import Redactor
from parsers import FileContext, parse_record
from parsers.event import SEVERITY, Event
from parsers.records import Record

# (text as it appears in a log, the part that must not survive)
SECRETS = [
    ("sk-proj-AbCdEf1234567890XyZabc", "AbCdEf1234567890XyZabc"),
    ("sk-ant-api03-kK6bb7jEealdAg4xBM4t7Ftk9WyfGm1wx", "kK6bb7jEealdAg4xBM4t7Ftk9WyfGm1wx"),
    ("AIzaSyKK0yoq5VFTSAV21vmrAdDsoF1Kf75K0NH", "SyKK0yoq5VFTSAV21vmrAdDsoF1Kf75K0NH"),
    ("Bearer abc.def-ghi_12345678", "abc.def-ghi_12345678"),
    ("api-key: 141898939b010f511d86153279679ed5", "141898939b010f511d86153279679ed5"),
    ("apikey=ZZSECRET1234567", "ZZSECRET1234567"),
    ("x-api-key: K3YK3YK3YK3Y", "K3YK3YK3YK3Y"),
    ("https://api.example.com/v1?alt=sse&key=plainsecretvalue42", "plainsecretvalue42"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlc2lnbg", "eyJzdWIiOiIxMjM0In0"),
    ("mongodb://librechat:fjaYonHkyjU8HeC9@mongo:27017/LibreChat", "fjaYonHkyjU8HeC9"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA"),
    ("Cookie: connect.sid=s%3Aabcdefgh; refreshToken=xyz987654", "s%3Aabcdefgh"),
    ("client_secret=cs_live_0123456789", "cs_live_0123456789"),
    ('{"password":"P@ss-0crpxcBr17"}', "P@ss-0crpxcBr17"),
]
LEVELS = [level for level in SEVERITY if level != "debug"]


def ctx(family: str) -> FileContext:
    return FileContext(family=family, path=f"/l/{family}.log", name=f"{family}.log", identity="i", file_date_ns=1)


def event_of(family: str, data: str) -> Event:
    raw = data.encode()
    return parse_record(Record(raw, 0, len(raw), 1), ctx(family))


def shipped(event: Event, pipeline: Pipeline | None = None) -> str:
    (done,) = (pipeline or Pipeline()).process([event])
    return orjson.dumps(done.to_json_dict()).decode()


def placements(secret: str) -> list[tuple[str, str]]:
    """The same secret in a message at every level, in metadata, in a stack trace and in a URL."""
    quoted = orjson.dumps(secret).decode()
    stack = orjson.dumps(f"Error: upstream said {secret}\n    at call (/app/{secret}/x.js:1:1)").decode()
    found = [("debug", f"2025-11-24T23:25:00.000Z {level}: upstream rejected {secret} today\n") for level in LEVELS]
    found += [
        ("debug", f"2025-11-24T23:25:00.000Z debug: [spendTokens] Token usage:\n{{\n  detail: {quoted},\n}}\n"),
        ("debug", f"2025-11-24T23:25:00.000Z debug: [x] call\n{{\n    config.url: {quoted},\n}}\n"),
        ("error", f'{{"level":"error","message":"x","stack":{stack},"timestamp":"2025-11-24T23:25:00.000Z"}}\n'),
        ("error", f'{{"level":"error","message":"fetch","requestInfo":{{"url":{quoted}}}}}\n'),
        ("meili", f'{{"level":"info","message":"[syncWithMeili] {secret.replace(chr(34), "")}"}}\n'),
        ("login", f'{{"level":"error","message":"Passport","parameters":[{{"name":"x","value":{quoted}}}]}}\n'),
    ]
    return found


@pytest.mark.parametrize(("secret", "core"), SECRETS, ids=[s[1][:12] for s in SECRETS])
def test_secret_is_redacted_in_every_field_and_level(secret: str, core: str) -> None:
    for family, data in placements(secret):
        line = shipped(event_of(family, data))
        assert core not in line, (family, data, line)
        assert "[REDACTED]" in line


@pytest.mark.parametrize(
    "key", ["password", "token", "secret", "apiKey", "refreshToken", "client_secret", "Authorization", "cookie"]
)
def test_metadata_keys_naming_secrets_are_redacted(key: str) -> None:
    event = event_of("debug", f'2025-11-24T23:25:00.000Z debug: [x] y\n{{\n  {key}: "hunter2hunter2",\n}}\n')
    assert event.attributes[f"librechat.meta.{key}"] == "hunter2hunter2"
    line = shipped(event)
    assert "hunter2" not in line
    error = event_of("error", f'{{"level":"error","message":"m","headers":{{"{key}":"hunter2hunter2"}}}}')
    assert "hunter2" not in shipped(error)


def test_token_counts_are_not_secrets() -> None:
    event = event_of(
        "debug",
        "2025-11-24T23:25:00.000Z debug: [Balance.check] Initial state\n{\n"
        '  tokenType: "prompt",\n  tokenCost: 19260,\n  promptTokens: 4089,\n  completionTokens: 17,\n'
        '  maxContextTokens: 128000,\n  abortKey: "conv-1:abc",\n}\n',
    )
    line = orjson.loads(shipped(event))
    attrs = line["attributes"]
    assert attrs["librechat.token.type"] == "prompt"
    assert attrs["librechat.token.cost"] == 19260
    assert attrs["librechat.meta.maxContextTokens"] == 128000
    assert attrs["librechat.meta.abortKey"] == "conv-1:abc"
    assert "[REDACTED]" not in orjson.dumps(line).decode()
    body = event_of("error", '{"level":"error","message":"{\\"type\\":\\"token_balance\\",\\"tokenCost\\":2965}"}')
    assert "2965" in shipped(body)


def test_already_redacted_text_is_left_alone_and_redaction_is_idempotent() -> None:
    redactor = Redactor()
    text = "Authorization: [REDACTED] and Bearer [REDACTED] and sk-[REDACTED]"
    assert redactor.text(text) == text
    once = redactor.text("Bearer abcdefghijkl and key=zzzzzzzz")
    assert redactor.text(once) == once == "Bearer [REDACTED] and key=[REDACTED]"


def test_extra_patterns_from_settings() -> None:
    pipeline = Pipeline(PrivacySettings(redact_patterns=(r"ACME-\d{6}",)))
    event = event_of("debug", "2025-11-24T23:25:00.000Z info: customer ACME-123456 called\n")
    assert "ACME-123456" not in shipped(event, pipeline)
    with pytest.raises(ValueError, match="redact pattern"):
        PrivacySettings(redact_patterns=("(",))


@pytest.mark.parametrize(
    ("policy", "shown", "hidden"),
    [
        ("keep", "chloé@bücher.example", None),
        ("mask", "c***@bücher.example", "chloé@"),
        ("hash", "sha256:", "chloé@"),
        ("drop", "[REDACTED]", "chloé@"),
    ],
)
def test_email_policy(policy: str, shown: str, hidden: str | None) -> None:
    event = event_of(
        "login",
        '{"level":"info","message":"[Login] [Login successful] [Username: chloé@bücher.example] '
        '[Request-IP: 203.0.113.9]","timestamp":"2024-11-24T23:35:37.524Z"}',
    )
    line = orjson.loads(shipped(event, Pipeline(PrivacySettings.model_validate({"email": policy}))))
    text = orjson.dumps(line).decode()
    assert shown in text
    if hidden:
        assert hidden not in text
    if policy == "drop":
        assert "user.email" not in line["attributes"]
    elif policy == "hash":
        assert line["attributes"]["user.email"] == line["body"].split("Username: ")[1].split("]")[0]
    assert line["attributes"]["client.address"] == "203.0.113.9"
