"""Put model, provider and endpoint on token records (events.md §3), and the user on token usage.

Only `[Balance.check] Initial state` names the model and endpoint; the usage and transaction
records of the same request follow it. They are joined by `librechat.request.id` (v0.8); releases
that log no request context (v0.7, v0.8.1) join on the latest check of the same log stream (a directory's
debug file and its size-rotated siblings) shortly before, and failing both, on the conversation.
Memory is bounded: the oldest keys are forgotten first. A check's values repeat (a few models and endpoints, the
active users), so the remembered ones are one shared dict per combination rather than a dict per check.

The records that end a request (an abort, a stream error, a `token_balance` violation) are joined the same way,
so their outcome counts for the right endpoint; an error-file record, far from any check, takes the join of its
debug-file copy (same directory, same time). A `message` response joined to its own check (by request id
or the stream's latest check, not merely the conversation) gets `librechat.request.duration_ms`: the time
from the balance check before the model call to the token spend after it, an estimate from log times.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Final, Generic, TypeVar

from parsers.event import AttrValue, Event
from parsers.moderation import ABORTED, VIOLATION
from parsers.tokens import TRANSACTION, USAGE

CHECK: Final = "librechat.balance.check"
TARGETS: Final = frozenset({USAGE, TRANSACTION})
# Records that end a request: joined for their endpoint, never a source of joins themselves.
ENDINGS: Final = frozenset({ABORTED, VIOLATION, "librechat.error"})
KEYS: Final[tuple[str, ...]] = ("gen_ai.request.model", "gen_ai.provider.name", "librechat.endpoint")
# Token usage records of releases without request context do not name the user; their check does.
USER: Final = "user.id"
DURATION: Final = "librechat.request.duration_ms"
TWIN: Final = "logtail.twin"
MESSAGE: Final = "message"  # the token context of a model's response (the others: title, summary, memory, …)
WINDOW: Final = 2048  # requests and conversations: far more than are ever open at once
# An error-file record's debug-file copy is read a whole file earlier in a replay: a day's errors are kept.
TWINS: Final = 10_000
SHARED: Final = 4096  # distinct (model, provider, endpoint, user) combinations kept as one dict each
# A v0.7 check and the spending it precedes are milliseconds apart; a minute is generous and still safe.
SAME_FLOW_NS: Final = 60 * 1_000_000_000

# LibreChat endpoint -> OTel `gen_ai.provider.name`.
PROVIDERS: Final = {
    "openai": "openai",
    "assistants": "openai",
    "azureopenai": "azure.ai.openai",
    "azureassistants": "azure.ai.openai",
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
    "google": "gcp.gemini",
    "vertexai": "gcp.vertex_ai",
    "mistral": "mistral_ai",
    "groq": "groq",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "perplexity": "perplexity",
    "cohere": "cohere",
}
# For endpoints that front several providers (`agents`, custom endpoints): guess from the model name.
_MODEL_PREFIXES: Final = (
    ("claude", "anthropic"),
    ("anthropic.", "aws.bedrock"),
    ("gpt", "openai"),
    ("chatgpt", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("gemini", "gcp.gemini"),
    ("mistral", "mistral_ai"),
    ("deepseek", "deepseek"),
    ("grok", "x_ai"),
    ("command", "cohere"),
)


def provider_for(endpoint: str | None, model: str | None) -> str | None:
    if endpoint:
        known = PROVIDERS.get(endpoint.lower())
        if known:
            return known
    if model:
        lowered = model.lower()
        for prefix, provider in _MODEL_PREFIXES:
            if lowered.startswith(prefix):
                return provider
    return None


Found = dict[str, AttrValue]
# What a check said, with its time when the record joined to it is of the same request (None: same conversation).
Joined = tuple[int | None, Found]
V = TypeVar("V")


class _Bounded(Generic[V]):
    """An insertion-ordered map of strings that forgets its oldest entries beyond `size`.

    Keyed by the strings' hashes: an id's own string would stay in memory with it, pinning the small objects of
    the batch it came in (the allocator gives none of their memory back); two of 10 000 ids sharing a 64-bit
    hash is a chance of one in 10^11."""

    __slots__ = ("_items", "_size")

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[int, V] = OrderedDict()
        self._size = size

    def get(self, key: object) -> V | None:
        return self._items.get(hash(key)) if isinstance(key, str) else None

    def put(self, key: object, value: V) -> None:
        if not isinstance(key, str):
            return
        hashed = hash(key)
        self._items[hashed] = value
        self._items.move_to_end(hashed)
        if len(self._items) > self._size:
            self._items.popitem(last=False)


def _stream(event: Event) -> tuple[str, str]:
    """The directory and family of an event's file: `debug-…log`, `.log.1`, `.log.2.gz` are one stream."""
    return os.path.dirname(event.file), event.family


class Correlator:
    """Callable processor; stateful across calls so a request split over batches still joins."""

    __slots__ = ("_by_conversation", "_by_request", "_by_twin", "_last_check", "_shared")

    def __init__(self, window: int = WINDOW, twins: int = TWINS) -> None:
        self._by_request: _Bounded[Joined] = _Bounded(window)
        self._by_conversation: _Bounded[Joined] = _Bounded(window)
        # What an error's debug-file copy was joined to (the shared dict alone: no object of its own per entry).
        self._by_twin: _Bounded[Found] = _Bounded(twins)
        # Per log stream, for records without request ids: a request may straddle a size rotation.
        self._last_check: dict[tuple[str, str], Joined] = {}
        self._shared: dict[int, Found] = {}  # by the hash of the items, like `_Bounded`

    def __call__(self, event: Event) -> Event:
        attrs = event.attributes
        name = event.event_name
        if name == CHECK:
            model = attrs.get("gen_ai.request.model")
            endpoint = attrs.get("librechat.endpoint")
            if isinstance(model, str) or isinstance(endpoint, str):
                provider = provider_for(
                    endpoint if isinstance(endpoint, str) else None, model if isinstance(model, str) else None
                )
                if provider:
                    attrs["gen_ai.provider.name"] = provider
                found: Joined = (
                    event.time_unix_nano,
                    self._share([(key, attrs[key]) for key in (*KEYS, USER) if key in attrs]),
                )
                request = attrs.get("librechat.request.id")
                if request is None:
                    self._last_check[_stream(event)] = found
                else:
                    self._by_request.put(request, found)
        elif name in TARGETS:
            joined = self._lookup(event, attrs.get("gen_ai.conversation.id"))
            if joined:
                checked, values = joined
                for key, value in values.items():
                    attrs.setdefault(key, value)
                if checked is not None and name == USAGE and attrs.get("librechat.token.context") == MESSAGE:
                    attrs.setdefault(DURATION, (event.time_unix_nano - checked) / 1e6)
                self._by_conversation.put(attrs.get("gen_ai.conversation.id"), (None, values))
        elif name in ENDINGS:
            joined = self._lookup(event, _conversation(attrs))
            # The error file holds no check; its record has the time of its debug-file copy, which may join.
            same_call = f"{os.path.dirname(event.file)}\0{event.time_unix_nano}"
            known = joined[1] if joined else None
            if attrs.get(TWIN):
                if known is not None:
                    self._by_twin.put(same_call, known)
            elif known is None:
                known = self._by_twin.get(same_call)
            if known:
                for key in KEYS:
                    if key in known:
                        attrs.setdefault(key, known[key])
        return event

    def _share(self, items: list[tuple[str, AttrValue]]) -> Found:
        """The one dict of these values. Kept for as long as the checks that name them: a dict per check would pin
        small objects of every batch in memory, and the allocator could give none of it back."""
        key = hash(tuple(items))
        found = self._shared.get(key)
        if found is None:
            if len(self._shared) >= SHARED:
                self._shared.clear()  # the dicts still remembered stay valid; only their sharing restarts
            found = self._shared[key] = dict(items)
        return found

    def _lookup(self, event: Event, conversation: AttrValue | None) -> Joined | None:
        attrs = event.attributes
        request = attrs.get("librechat.request.id")
        if request is not None:
            return self._by_request.get(request)
        last = self._last_check.get(_stream(event))
        if last and last[0] is not None and 0 <= event.time_unix_nano - last[0] <= SAME_FLOW_NS:
            return last
        return self._by_conversation.get(conversation)


def _conversation(attrs: dict[str, AttrValue]) -> AttrValue | None:
    """The conversation of an ending: its own attribute, or the first part of an abort key
    (`<conversation id>:<message id>`)."""
    conversation = attrs.get("gen_ai.conversation.id")
    key = attrs.get("librechat.abort_key")
    if conversation is None and isinstance(key, str):
        return key.partition(":")[0]
    return conversation
