"""Put model, provider and endpoint on token records (events.md §3).

Only `[Balance.check] Initial state` names the model and endpoint; the usage and transaction
records of the same request follow it. They are joined by `librechat.request.id` (v0.8); releases
that log no request context (v0.7) join on the latest check of the same file shortly before, and
failing both, on the conversation. Memory is bounded: the oldest keys are forgotten first.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Final

from parsers.envelope import CONTAINER_FAMILIES
from parsers.event import AttrValue, Event

CHECK: Final = "librechat.balance.check"
TARGETS: Final = frozenset({"librechat.token.usage", "librechat.token.transaction"})
KEYS: Final[tuple[str, ...]] = ("gen_ai.request.model", "gen_ai.provider.name", "librechat.endpoint")
WINDOW: Final = 10_000
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


class _Bounded:
    """An insertion-ordered map that forgets its oldest entries beyond `size`."""

    __slots__ = ("_items", "_size")

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[str, Found] = OrderedDict()
        self._size = size

    def get(self, key: object) -> Found | None:
        return self._items.get(key) if isinstance(key, str) else None

    def put(self, key: object, value: Found) -> None:
        if not isinstance(key, str):
            return
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self._size:
            self._items.popitem(last=False)


class Correlator:
    """Callable processor; stateful across calls so a request split over batches still joins."""

    __slots__ = ("_by_conversation", "_by_request", "_last_check")

    def __init__(self, window: int = WINDOW) -> None:
        self._by_request = _Bounded(window)
        self._by_conversation = _Bounded(window)
        self._last_check: dict[str, tuple[int, Found]] = {}  # per file, for records without request ids

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
                found: Found = {key: attrs[key] for key in KEYS if key in attrs}
                request = attrs.get("librechat.request.id")
                if request is None:
                    self._last_check[_scope(event)] = (event.time_unix_nano, found)
                else:
                    self._by_request.put(request, found)
        elif name in TARGETS:
            joined = self._lookup(event)
            if joined:
                for key, value in joined.items():
                    attrs.setdefault(key, value)
                self._by_conversation.put(attrs.get("gen_ai.conversation.id"), joined)
        return event

    def _lookup(self, event: Event) -> Found | None:
        attrs = event.attributes
        request = attrs.get("librechat.request.id")
        if request is not None:
            return self._by_request.get(request)
        last = self._last_check.get(_scope(event))
        if last and 0 <= event.time_unix_nano - last[0] <= SAME_FLOW_NS:
            return last[1]
        return self._by_conversation.get(attrs.get("gen_ai.conversation.id"))


def _scope(event: Event) -> str:
    """Where a check and the spending it precedes are written: one file, or one container's output (whose
    rotations split it into several files)."""
    return os.path.dirname(event.file) if event.family in CONTAINER_FAMILIES else event.file
