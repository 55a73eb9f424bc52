"""Both sample corpora through `logtail parse`, checked against their ground truth (expected.jsonl)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "fixtures" / "librechat"
CORPORA = ("v0.7", "v0.8", "v0.8.1")
# Records per file family, from fixtures/librechat/README.md.
RECORDS = {
    "v0.8": {"debug": 1673, "error": 346, "meili": 202},
    "v0.8.1": {"debug": 1073, "error": 226, "meili": 344},
    "v0.7": {"debug": 758, "error": 159, "meili": 68, "login": 52},
}

# events.md §2: call_site -> event name.
_EXACT = {
    "spendTokens.usage": "librechat.token.usage",
    "spendStructuredTokens.usage": "librechat.token.usage",
    "spendTokens.record": "librechat.token.transaction",
    "spendStructuredTokens.record": "librechat.token.transaction",
    "spendTokens.none": "librechat.token.no_transaction",
    "Balance.check": "librechat.balance.check",
    "Balance.check.token_cost": "librechat.balance.check",
    "Balance.check.no_record": "librechat.balance.check",
    "Balance.autoRefill": "librechat.balance.refill",
    "Balance.autoRefill.failed": "librechat.balance.error",
    "updateBalance.attempt_error": "librechat.balance.error",
    "updateBalance.failed": "librechat.balance.error",
    "balance.middleware.error": "librechat.balance.error",
    "transactions.query.error": "librechat.balance.error",
    "transactions.unsupported": "librechat.balance.error",
    "ban": "librechat.ban",
    "twofa.error": "librechat.auth.2fa",
    "abortMessage": "librechat.request.aborted",
    "abortMessage.handle_error": "librechat.error",
    "checkBan.error": "librechat.error",
    "indexSync.error": "librechat.search.error",
    "meili.sync.error": "librechat.search.error",
    "meili.sync.batch_error": "librechat.search.error",
    "meili.findOneAndUpdate.not_found": "librechat.search.error",
    "server.listening": "librechat.server.lifecycle",
    "server.mongo_connected": "librechat.server.lifecycle",
}
_PREFIXES = (
    ("violation.", "librechat.violation"),
    ("login.", "librechat.auth.login"),
    ("register.", "librechat.auth.register"),
    ("passwordReset.", "librechat.auth.password_reset"),
    ("error.middleware.", "librechat.error"),
    ("uncaughtException", "librechat.error"),
    ("stream.", "librechat.error"),
    ("provider.", "librechat.error"),
    ("indexSync.", "librechat.search.sync"),
)


def expected_event(call_site: str) -> str:
    if call_site in _EXACT:
        return _EXACT[call_site]
    if call_site.startswith("meili."):
        return "librechat.search.error" if call_site.endswith(".error") else "librechat.search.sync"
    for prefix, event in _PREFIXES:
        if call_site.startswith(prefix):
            return event
    return "librechat.log"


# `librechat.search.phase` of every search-sync call site, whichever release worded it.
PHASES = {
    "indexSync.start": "check_start",
    "indexSync.start_messages": "start",
    "indexSync.progress": "progress",
    "indexSync.need": "need",
    "indexSync.synced": "synced",
    "indexSync.done": "done",
    "indexSync.already_running": "already_running",
    "indexSync.check_failed": "check_failed",
    "indexSync.configure_index": "configure_index",
    "indexSync.index_configured": "index_configured",
    "indexSync.creating_indices": "creating_indices",
    "indexSync.orphans_detected": "orphans_detected",
    "indexSync.deleting_without_user": "orphans_deleting",
    "indexSync.deleted_orphans": "cleanup_deleted",
    "indexSync.orphans_cleaned": "orphans_cleaned",
    "indexSync.settings_updated": "settings_updated",
    "indexSync.force_resync": "force_resync",
    "indexSync.full_sync": "full_sync",
    "indexSync.incremental": "incremental",
    "indexSync.no_sync": "no_sync",
    "indexSync.flow_cleanup": "flow_cleanup",
    "meili.sync.start": "start",
    "meili.sync.total": "total",
    "meili.sync.processed": "processed",
    "meili.sync.progress": "processed",
    "meili.sync.completed": "completed",
    "meili.sync.stats": "stats",
    "meili.sync.discrepancy": "discrepancy",
    "meili.sync.finished": "finished",
    "meili.cleanup.start": "cleanup_start",
    "meili.cleanup.deleted": "cleanup_deleted",
    "meili.cleanup.done": "cleanup_done",
    "meili.index.exists": "index_exists",
    "meili.index.settings": "index_settings",
    "meili.index.creating": "index_creating",
    "meili.index.created": "index_created",
}
# `librechat.error.source` by call-site prefix, where the message keeps its caller's prefix (not v0.8).
SOURCES = (
    ("Balance.", "balance"),
    ("updateBalance.", "balance"),
    ("balance.", "balance"),
    ("transactions.", "balance"),
    ("abortMessage.", "stream"),
    ("stream.", "stream"),
    ("violation.", "stream"),
    ("checkBan.", "middleware"),
    ("error.middleware.", "middleware"),
    ("uncaughtException", "uncaught"),
    ("provider.", "provider"),
    ("register.", "auth"),
    ("twofa.", "auth"),
    ("indexSync.", "search"),
    ("meili.", "search"),
)
PREFIX_KEPT = ("v0.8.1",)
_ERRORS = frozenset({"librechat.error", "librechat.balance.error", "librechat.search.error", "librechat.violation"})

LOGTAIL = str(Path(sys.executable).with_name("logtail"))


def run_parse(*args: str) -> subprocess.CompletedProcess[bytes]:
    """The installed `logtail` console script, as users run it."""
    return subprocess.run([LOGTAIL, "parse", *args], capture_output=True, check=False)


def parse_corpus(corpus: str, *extra: str) -> list[dict[str, Any]]:
    done = run_parse(str(SAMPLES / corpus), *extra)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b""
    return [orjson.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture(scope="module", params=CORPORA)
def corpus(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    name: str = request.param
    return name, parse_corpus(name, "--email-policy", "keep")


def calls(corpus: str) -> Iterator[dict[str, Any]]:
    with (SAMPLES / corpus / "expected.jsonl").open("rb") as lines:
        for line in lines:
            yield orjson.loads(line)


def by_position(corpus: str, events: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    base = SAMPLES / corpus
    return {(Path(e["file"]).relative_to(base).as_posix(), e["line"]): e for e in events}


def test_every_record_is_one_event_of_the_expected_kind(corpus: tuple[str, list[dict[str, Any]]]) -> None:
    name, events = corpus
    families = Counter(e["attributes"]["logtail.file.family"] for e in events)
    assert families == RECORDS[name]
    index = by_position(name, events)
    assert len(index) == len(events), "two events claim the same file and line"
    wrong = []
    for call in calls(name):
        for place in call["files"]:
            event = index.pop((place["file"], place["line"]))
            want = expected_event(call["call_site"])
            if event["event_name"] != want:
                wrong.append((call["call_site"], place["file"], place["line"], event["event_name"]))
    assert wrong == []
    assert index == {}, "events that no logger call produced"
    names = Counter(e["event_name"] for e in events)
    assert names["librechat.unparsed"] == 0 and names["librechat.log"] == 0


def test_times_are_the_logged_ones_or_inferred_before_them(corpus: tuple[str, list[dict[str, Any]]]) -> None:
    name, events = corpus
    index = by_position(name, events)
    for call in calls(name):
        for place in call["files"]:
            event = index[(place["file"], place["line"])]
            if event["attributes"].get("logtail.time_inferred"):
                assert event["time"] <= call["timestamp"]
            else:
                assert event["time"] == call["timestamp"]
    inferred = Counter(
        e["attributes"]["logtail.file.family"] for e in events if e["attributes"].get("logtail.time_inferred")
    )
    # v0.7 error lines and every meiliSync line carry no timestamp.
    assert inferred == ({"error": 159, "meili": 68} if name == "v0.7" else {"meili": RECORDS[name]["meili"]})


def test_key_attributes_match_the_logged_values(corpus: tuple[str, list[dict[str, Any]]]) -> None:
    name, events = corpus
    index = by_position(name, events)
    checked: Counter[str] = Counter()
    for call in calls(name):
        site, meta = call["call_site"], call["meta"]
        for place in call["files"]:
            event = index[(place["file"], place["line"])]
            attrs = event["attributes"]
            family = attrs["logtail.file.family"]
            assert event["severity_text"] == call["level"]
            if family == "debug" and call["level"] == "error":
                assert attrs["logtail.twin"] is True
            if site.endswith(".usage"):
                usage = meta[0]
                prompt = usage["promptTokens"]
                if isinstance(prompt, dict):
                    assert attrs["gen_ai.usage.input_tokens"] == prompt["input"]
                    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == prompt["write"]
                    assert attrs["gen_ai.usage.cache_read.input_tokens"] == prompt["read"]
                else:
                    assert attrs["gen_ai.usage.input_tokens"] == prompt
                assert attrs["gen_ai.usage.output_tokens"] == usage["completionTokens"]
                assert attrs["gen_ai.conversation.id"] in call["message"]
                checked["usage"] += 1
            elif site.endswith(".record"):
                assert attrs["user.id"] == meta[0]["user"]
                assert attrs["librechat.balance"] == pytest.approx(meta[0]["balance"])
                checked["transaction"] += 1
            elif site == "Balance.check" and "model" in meta[0]:
                assert shows(attrs["gen_ai.request.model"], meta[0]["model"])
                assert shows(attrs["librechat.endpoint"], meta[0]["endpoint"])
                assert attrs["gen_ai.provider.name"]
                checked["check"] += 1
            elif site == "ban":
                assert attrs["user.id"] == call["user"]
                assert attrs["librechat.ban.duration_minutes"] == call["duration_minutes"]
                assert attrs.get("client.address") == call.get("ip")
                checked["ban"] += 1
            elif site in ("login.success", "login.failure"):
                assert attrs["librechat.auth.outcome"] == ("success" if site == "login.success" else "failure")
                assert shows(attrs["user.email"], call["user_email"]), (attrs["user.email"], call["user_email"])
                assert attrs["client.address"] == re.findall(r"\[Request-IP: ([^\]]*)\]", call["message"])[-1]
                checked["login"] += 1
            elif site.startswith("violation."):
                assert attrs["librechat.violation.type"] == call["violation_type"]
                if "user.id" in attrs:
                    assert attrs["user.id"] == call["user"]
                checked["violation"] += 1
            if event["event_name"] == "librechat.search.sync":
                assert attrs.get("librechat.search.phase") == PHASES[site], (site, place)
                checked["search"] += 1
            if name in PREFIX_KEPT and ("librechat.error.source" in attrs or event["event_name"] in _ERRORS):
                assert attrs["librechat.error.source"] == next(v for k, v in SOURCES if site.startswith(k)), site
                checked["source"] += 1
            errors = [m["__error"] for m in meta if isinstance(m, dict) and "__error" in m]
            # v0.7's redaction can swallow `","name":…,"stack":"` and merge the stack into the message.
            merged = "\n    at " in event["body"]
            if errors and family != "debug" and "name" in errors[0] and not merged:
                assert attrs["exception.type"] == errors[0]["name"], (site, place)
                checked["exception"] += 1
    assert min(checked.values()) > 0 and len(checked) == (9 if name in PREFIX_KEPT else 8), checked


def test_token_usage_is_joined_to_its_model(corpus: tuple[str, list[dict[str, Any]]]) -> None:
    _, events = corpus
    usage = [e for e in events if e["event_name"] == "librechat.token.usage"]
    joined = [e for e in usage if "gen_ai.request.model" in e["attributes"]]
    assert len(joined) >= 0.85 * len(usage)
    for event in joined:
        assert event["attributes"]["gen_ai.provider.name"]


_FLOW = frozenset(
    {"Balance.check.token_cost", "spendTokens.usage", "spendStructuredTokens.usage", "spendTokens.record"}
    | {"spendStructuredTokens.record", "spendTokens.none"}
)


def requests_of(corpus: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(usage call, its balance check) from the call order alone: a check, its token cost, the usage, and a
    transaction of the checked user right after the usage; nothing of another request in between."""
    check: dict[str, Any] = {}
    between: list[str] = []
    for call, following in pairwise(calls(corpus)):
        site = call["call_site"]
        if site == "Balance.check" and "model" in call["meta"][0]:
            check, between = call["meta"][0], []
            continue
        paid = following["call_site"].endswith(".record") and following["meta"][0]["user"] == check.get("user")
        if check and site.endswith(".usage") and paid and _FLOW.issuperset(between):
            yield call, check
        between.append(site)


def test_token_usage_gets_the_model_of_its_request(corpus: tuple[str, list[dict[str, Any]]]) -> None:
    """Where the call order says which check a usage belongs to, correlation gives that check's model."""
    name, events = corpus
    index = by_position(name, events)
    wrong, joined = [], 0
    for call, check in requests_of(name):
        for place in call["files"]:
            attrs = index[(place["file"], place["line"])]["attributes"]
            model, endpoint = attrs.get("gen_ai.request.model"), attrs.get("librechat.endpoint")
            if not (shows(model, check["model"]) and shows(endpoint, check["endpoint"])):
                wrong.append((call["seq"], model, endpoint, check["model"]))
            joined += 1
    assert wrong == []
    usage = sum(1 for e in events if e["event_name"] == "librechat.token.usage")
    assert joined >= usage / 2, (joined, usage)


# Shapes of the secrets planted in the samples (events.md §5), found independently of logtail's redactor.
_SECRET_SHAPES = re.compile(
    r"sk-(?:ant-)?[A-Za-z0-9_-]{16,}|AIza[0-9A-Za-z_-]{20,}|eyJ[\w-]+\.[\w-]+\.[\w-]+|"
    r"(?:Bearer |api-key:? ?|key=)([A-Za-z0-9_.-]{12,})|://[^/\s:@\"]+:([^/\s@\"]+)@|\"password\":\"([^\"]+)\""
)


def shows(shown: object, logged: str) -> bool:
    """The output shows a logged value as it is, or with its secrets redacted (a key typed as a user name)."""
    secrets = _secrets_in(logged)
    if not secrets:
        return shown == logged
    return isinstance(shown, str) and "[REDACTED]" in shown and not any(secret in shown for secret in secrets)


def _secrets_in(text: str) -> set[str]:
    found = set()
    for match in _SECRET_SHAPES.finditer(text):
        secret = next((group for group in match.groups() if group), match.group(0))
        if "REDACTED" not in secret:
            found.add(secret)
    return found


@pytest.mark.parametrize("name", CORPORA)
def test_no_secret_from_the_samples_is_printed(name: str) -> None:
    raw = b"".join(run_parse_input(name)).decode("utf-8", "replace")
    planted = _secrets_in(raw) | _secrets_in((SAMPLES / name / "expected.jsonl").read_text())
    assert _secrets_in(raw), "the samples should carry raw secrets for this test to mean anything"
    done = run_parse(str(SAMPLES / name))
    output = done.stdout.decode()
    assert done.returncode == 0
    leaked = sorted(secret for secret in planted if secret in output)
    assert leaked == []
    assert "[REDACTED]" in output


def run_parse_input(name: str) -> Iterator[bytes]:
    """The decompressed bytes of every file of a corpus."""
    from logtail.source.files import discover, open_decompressed

    for log_file in discover([SAMPLES / name]):
        with open_decompressed(log_file.path) as stream:
            yield stream.read()


def test_v081_error_messages_keep_the_callers_prefix_and_error_headers_are_redacted() -> None:
    events = parse_corpus("v0.8.1", "--email-policy", "keep")
    index = by_position("v0.8.1", events)
    prefixed, headers = 0, 0
    for call in calls("v0.8.1"):
        for place in call["files"]:
            event = index[(place["file"], place["line"])]
            if place["file"].startswith("logs/error-"):
                logged = call.get("logged", {}).get("error_message", call["message"])
                # Equal up to the first secret logtail redacted.
                kept, redacted, _ = event["body"].partition("[REDACTED]")
                assert logged.startswith(kept) if redacted else kept == logged, (event["body"], logged)
                prefixed += logged.startswith("[") and "] " in logged[:40]
            for error in (m["__error"] for m in call["meta"] if isinstance(m, dict) and "__error" in m):
                sent = (error.get("config") or error).get("headers")
                if not sent or place["file"].startswith("logs/debug-"):
                    continue
                shown = orjson.dumps(event["attributes"]).decode()
                for key, value in sent.items():
                    secret = key.lower() in ("authorization", "x-api-key", "cookie")
                    assert (value in shown) is not secret, (key, shown)
                headers += 1
    assert prefixed > 50 and headers == 3, (prefixed, headers)


def test_default_email_policy_masks_addresses() -> None:
    events = parse_corpus("v0.7")
    logins = [e for e in events if e["event_name"] == "librechat.auth.login" and "user.email" in e["attributes"]]
    assert logins
    for event in logins:
        email = str(event["attributes"]["user.email"])
        assert "***@" in email
        assert "unknown114@mailinator.example" not in event["body"]


@pytest.mark.parametrize("name", CORPORA)
def test_no_login_address_of_the_samples_is_printed_by_default(name: str) -> None:
    addresses = {call["user_email"] for call in calls(name) if "user_email" in call}
    output = run_parse(str(SAMPLES / name)).stdout.decode()
    assert len(addresses) > 20 and "***@" in output
    assert sorted(address for address in addresses if address in output) == []
