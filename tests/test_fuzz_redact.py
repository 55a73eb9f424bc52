"""Fuzzing the redactor (events.md §5): generated secrets of every shape, placed at random depth in bodies,
attribute values, nested metadata, stack traces and URLs, never survive what `logtail parse` prints;
token counts keep their values.

Each secret carries a random `core` of 20+ letters and digits: the test asserts that the core appears
nowhere in the printed line, so a half-redacted secret fails as surely as an untouched one.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from logtail.commands.parse import write_events
from logtail.pipeline import Pipeline, PrivacySettings
from logtail.pipeline.emails import EMAIL, rewrite_addresses
from logtail.source.files import LogFile
from parsers.event import SEVERITY

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STAMP = "2025-11-24T23:25:48.797Z"
CORE = "Zq7verysecretvalue7788"

CORES = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789", min_size=20, max_size=40)
B64URL = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=4, max_size=30)
HOSTS = st.sampled_from(["mongo:27017", "redis.internal", "db.example.com:5432", "10.0.0.7"])
SCHEMES = st.sampled_from(["mongodb", "mongodb+srv", "redis", "postgres", "https", "http", "amqp", "s3"])
USERS = st.from_regex(r"[a-z][a-z0-9._-]{0,12}", fullmatch=True)
# A shape of events.md §5, as (text in the log, the part that must not survive).
SHAPES = st.one_of(
    st.builds(lambda p, c: (f"{p}{c}", c), st.sampled_from(["sk-", "sk-proj-", "sk-ant-api03-", "sk-svcacct-"]), CORES),
    st.builds(lambda c: (f"AIzaSy{c}", c), CORES),
    st.builds(lambda c, s: (f"Bearer {c}{s}", c), CORES, st.sampled_from(["", ".x-y_z", "==", "~+/"])),
    st.builds(
        lambda label, c: (f"{label}{c}", c),
        st.sampled_from(["api-key: ", "api-key=", "apikey=", "apiKey: ", "x-api-key: ", "?key=", "&key=", "api_key="]),
        CORES,
    ),
    st.builds(lambda h, c, s: (f"eyJ{h}.eyJ{c}.{s}", c), B64URL, CORES, B64URL),
    st.builds(lambda s, u, c, h: (f"{s}://{u}:{c}@{h}/db", c), SCHEMES, USERS, CORES, HOSTS),
    st.builds(
        lambda label, c: (f"{label}{c}", c),
        st.sampled_from(["Authorization: Basic ", "authorization: Bearer ", "Authorization: Token ", "Cookie: sid="]),
        CORES,
    ),
    st.builds(lambda c: (f"Cookie: theme=dark; connect.sid=s%3A{c}; lang=en", c), CORES),
    st.builds(
        lambda key, sep, c: (f'"{key}":"{c}"' if sep == "json" else f"{key}{sep}{c}", c),
        st.sampled_from(["password", "token", "secret", "client_secret", "refreshToken", "accessToken", "passwd"]),
        st.sampled_from([": ", "=", ":", "json", " = "]),
        CORES,
    ),
)
# Words and labels a secret may follow in real messages, and arbitrary text.
LABELS = st.sampled_from(["", "token: ", "password=", "url: ", "Authorization: ", "key: ", "upstream said ", "("])
PLAIN = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)
CONTEXT = st.builds(lambda label, text: text + " " + label, LABELS, PLAIN)
SECRET_KEYS = st.sampled_from(
    ["password", "token", "secret", "apiKey", "api_key", "Authorization", "cookie", "refreshToken", "clientSecret"]
)
NEUTRAL_KEYS = st.sampled_from(["config", "headers", "request", "data", "options", "items", "error", "meta"])


def shipped_text(family: str, data: bytes) -> str:
    """What `logtail parse` prints for a file of `family` holding `data` (its reader, pipeline and writer)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{family}.log"
        path.write_bytes(data)
        out, err = io.BytesIO(), io.StringIO()
        assert write_events([LogFile(path, family, None, 0, False)], Pipeline(PrivacySettings()), out, err)
    return out.getvalue().decode()


def unreal(before: str, text: str) -> bool:
    """A header label directly followed by a quoted JSON key is no log line anyone writes."""
    return before.endswith("Authorization: ") and text.startswith('"')


def nest(value: object, path: list[str | int]) -> object:
    """`value` placed at `path` inside dicts (str steps) and lists (int steps: that many siblings before it)."""
    for step in reversed(path):
        value = {step: value} if isinstance(step, str) else [*(["x"] * step), value]
    return value


PATHS = st.lists(st.one_of(NEUTRAL_KEYS, st.integers(min_value=0, max_value=2)), max_size=4)


@FUZZ
@given(shape=SHAPES, before=CONTEXT, after=PLAIN, level=st.sampled_from(list(SEVERITY)))
def test_secret_in_a_debug_message_at_any_level(shape: tuple[str, str], before: str, after: str, level: str) -> None:
    text, core = shape
    assume(core not in before + after and not unreal(before, text))
    line = shipped_text("debug", f"{STAMP} {level}: {before}{text} {after}\n".encode())
    assert core not in line, line


@FUZZ
@given(shape=SHAPES, before=CONTEXT, key=st.from_regex(r"(?:[a-z]{1,8}\.)?[a-z]{1,10}", fullmatch=True))
def test_secret_in_a_debug_block_leaf(shape: tuple[str, str], before: str, key: str) -> None:
    text, core = shape
    assume(core not in before and not unreal(before, text))
    leaf = orjson.dumps(before + text).decode()
    record = f"{STAMP} debug: [x] call\n{{\n  {key}: {leaf},\n}}\n"
    line = shipped_text("debug", record.encode())
    assert core not in line, line


@FUZZ
@example(  # found by this test: a label before a JSON pair nested in JSON (`token: \"password\":\"x\"`)
    shape=(f'"password":"{CORE}"', CORE), before=" token: ", path=["config"], where="meta", family="error"
)
@given(
    shape=SHAPES,
    before=CONTEXT,
    path=PATHS,
    where=st.sampled_from(["message", "meta", "stack", "url", "level"]),
    family=st.sampled_from(["error", "meili", "login"]),
)
def test_secret_at_any_depth_of_a_json_line(
    shape: tuple[str, str], before: str, path: list[str | int], where: str, family: str
) -> None:
    text, core = shape
    assume(core not in before and not unreal(before, text))
    obj: dict[str, Any] = {"level": "error", "message": "[x] failed", "timestamp": STAMP}
    if where == "message":
        obj["message"] = before + text
    elif where == "meta":
        obj["zmeta"] = nest(before + text, path)
    elif where == "level":
        obj["level"] = before + text
    elif where == "stack":
        obj["stack"] = f"Error: {before}{text}\n    at call (/app/api/x.js:1:1)\n    at next (/app/y.js:2:2)"
    else:
        assume(" " not in text)  # URLs hold the shapes written without spaces
        obj["config"] = nest({"url": f"https://api.example.com/v1/chat?alt=sse&q={text}"}, path)
    line = shipped_text(family, orjson.dumps(obj))
    assert core not in line, line


@FUZZ
@given(key=SECRET_KEYS, value=CORES, path=PATHS, as_list=st.booleans(), spaced=st.booleans())
def test_values_of_metadata_keys_naming_secrets(
    key: str, value: str, path: list[str | int], as_list: bool, spaced: bool
) -> None:
    """Whatever the value looks like (a passphrase with spaces, a list) under a key such as `password` or `token`."""
    text = f"correct horse {value}" if spaced else value
    secret: object = [text] if as_list else text
    obj = {"level": "error", "message": "[x] failed", "timestamp": STAMP, "zmeta": nest({key: secret}, path)}
    if not path:
        obj = {**obj, key: secret}
    line = shipped_text("error", orjson.dumps(obj))
    assert value not in line, line
    block = f"{STAMP} debug: [x] call\n{{\n  {key}: {orjson.dumps(secret).decode()},\n}}\n"
    line = shipped_text("debug", block.encode())
    assert value not in line, line


@FUZZ
@given(shape=SHAPES.filter(lambda shape: " " not in shape[0]), nested=st.booleans())
def test_secret_used_as_a_metadata_key(shape: tuple[str, str], nested: bool) -> None:
    text, core = shape
    meta: dict[str, Any] = {"zmeta": {text: 1}} if nested else {text: 1}
    line = shipped_text("error", orjson.dumps({"level": "error", "message": "[x] failed", **meta}))
    assert core not in line, line
    block = f"{STAMP} debug: [x] call\n{{\n  {text}: 1,\n}}\n"
    line = shipped_text("debug", block.encode())
    assert core not in line, line


LOCALS = st.from_regex(r"zq[a-z0-9]{6,12}(?:[._+-][a-z0-9]{1,6})?", fullmatch=True)
DOMAINS = st.from_regex(r"[a-z][a-z0-9-]{1,10}(?:\.[a-z]{2,6}){1,2}", fullmatch=True)


@FUZZ
@given(
    local=LOCALS,
    domain=DOMAINS,
    before=CONTEXT,
    path=PATHS.filter(lambda path: not path or isinstance(path[-1], str)),  # lists of strings: below
    family=st.sampled_from(["error", "login", "debug"]),
)
def test_email_addresses_are_masked_wherever_they_are(
    local: str, domain: str, before: str, path: list[str | int], family: str
) -> None:
    """The default policy `mask` keeps the first character and the domain, nothing else of the person."""
    assume(local[1:] not in domain + before)
    address = f"{local}@{domain}"
    message = f"[Login] [Login failed] [Username: {address}] [Request-IP: 203.0.113.9] {before}{address}"
    if family == "debug":
        data = f"{STAMP} info: {message}\n{{\n  email: {orjson.dumps(address).decode()},\n}}\n".encode()
    else:
        data = orjson.dumps({"level": "error", "message": message, "zmeta": nest(address, path)})
    line = shipped_text(family, data)
    assert local[1:] not in line, line
    assert f"{local[0]}***@{domain}" in line


def test_email_addresses_in_a_list_are_masked() -> None:
    line = shipped_text("error", orjson.dumps({"level": "error", "message": "x", "to": ["zqperson@mail.example"]}))
    assert "zqperson" not in line


@FUZZ
@given(
    prompt=st.integers(min_value=0, max_value=10**7),
    completion=st.integers(min_value=0, max_value=10**7),
    cost=st.integers(min_value=0, max_value=10**9),
    context=st.integers(min_value=1, max_value=10**6),
    token_type=st.sampled_from(["prompt", "completion"]),
)
def test_token_counts_keep_their_values(prompt: int, completion: int, cost: int, context: int, token_type: str) -> None:
    usage = (
        f"{STAMP} debug: [spendTokens] conversationId: c1 | Context: message | Token usage:\n"
        f"{{\n  promptTokens: {prompt},\n  completionTokens: {completion},\n}}\n"
    )
    check = (
        f'{STAMP} debug: [Balance.check] Initial state\n{{\n  tokenType: "{token_type}",\n  tokenCost: {cost},\n'
        f"  maxContextTokens: {context},\n}}\n"
    )
    for data, expected in (
        (usage, {"gen_ai.usage.input_tokens": prompt, "gen_ai.usage.output_tokens": completion}),
        (
            check,
            {
                "librechat.token.type": token_type,
                "librechat.token.cost": cost,
                "librechat.meta.maxContextTokens": context,
            },
        ),
    ):
        attrs = orjson.loads(shipped_text("debug", data.encode()))["attributes"]
        assert {key: attrs.get(key) for key in expected} == expected
    error = orjson.dumps(
        {"level": "error", "message": orjson.dumps({"type": "token_balance", "tokenCost": cost}).decode()}
    )
    assert f'\\"tokenCost\\":{cost}' in shipped_text("error", error)


def test_logtail_parse_prints_no_secret_of_any_shape(tmp_path: Path) -> None:
    """The same shapes end to end through the reader and the command's writer, one file per family."""
    cores = [f"Zq{n:02d}verysecretvalue7788" for n in range(12)]
    texts = [
        f"sk-proj-{cores[0]}",
        f"sk-ant-api03-{cores[1]}",
        f"AIzaSy{cores[2]}",
        f"Bearer {cores[3]}",
        f"api-key: {cores[4]}",
        f"https://h.example/x?key={cores[5]}",
        f"eyJhbGciOiJIUzI1NiJ9.eyJ{cores[6]}.sig_nature",
        f"mongodb://app:{cores[7]}@mongo:27017/LibreChat",
        f"Authorization: Basic {cores[8]}",
        f"Cookie: connect.sid={cores[9]}",
        f"password={cores[10]}",
        f"token: {cores[11]}",
    ]
    debug = tmp_path / "debug-2025-11-24.log"
    debug.write_text("".join(f"{STAMP} {level}: got {text} here\n" for level in SEVERITY for text in texts))
    error = tmp_path / "error-2025-11-24.log"
    error.write_bytes(
        b"\n".join(orjson.dumps({"level": "error", "message": t, "stack": f"Error: {t}\n    at x"}) for t in texts)
    )
    out, err = io.BytesIO(), io.StringIO()
    files = [LogFile(debug, "debug", None, 0, False), LogFile(error, "error", None, 0, False)]
    assert write_events(files, Pipeline(PrivacySettings()), out, err)
    printed = out.getvalue().decode()
    assert printed.count("\n") == len(texts) * (len(SEVERITY) + 1)
    assert [core for core in cores if core in printed] == []


# Characters that make and break addresses, with letters that `\w` takes and `str.lower` changes.
ADDRESS_PIECES = st.sampled_from([*"ab@.-+%'_ é李\n/:", "@b.c", "a@", ".example"])
ADDRESS_TEXT = st.lists(ADDRESS_PIECES, max_size=40).map("".join)


@FUZZ
@given(text=ADDRESS_TEXT)
@example(text="a@b.com+c@d.org")  # the second one starts inside the first one's run: not an address
@example(text="x@@a.b@c.d a@b.c.")
def test_addresses_are_found_from_each_at_sign_as_the_whole_pattern_finds_them(text: str) -> None:
    def rewrite(address: str) -> str:
        return f"<{address}>"

    assert rewrite_addresses(text, rewrite) == EMAIL.sub(lambda match: rewrite(match.group(0)), text)
