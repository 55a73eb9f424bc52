"""Replace secrets with `[REDACTED]` in the body and every attribute (events.md §5).

LibreChat redacts only some levels of some releases, and its own regexes break JSON lines, so
logtail redacts everything itself, on the decoded text: one combined regex per string, plus
metadata keys that name a secret (`librechat.meta.password`, `…headers.Authorization`).
Token *counts* (`promptTokens`, `tokenCost`, `tokenType`) are not secrets.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from typing import Final

from ahocorasick_rs import AhoCorasick

from logtail.pipeline.memo import Memo
from parsers.event import Event

REDACTED: Final = "[REDACTED]"
META: Final = "librechat.meta."

# Key names (lower-cased, last path segment) whose values are secrets: exact, or a suffix of a camelCase name.
_SECRET_SUFFIXES: Final = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "authorization",
    "cookie",
    "credential",
    "credentials",
    "privatekey",
    "private_key",
    "accesskey",
    "access_key",
    "sessionid",
    "session_id",
    "signature",
)
# The key's own prefix (`refresh_`, `client-`) is not matched: left to the regex, `[\w-]*` before the keyword
# backtracks quadratically over text like `a-a-a-…` (minutes for a 40 KB line).
_SECRET_KEY_WORDS: Final = r"(?:password|passwd|secret|token|api[-_]?key|authorization|cookie|credentials?|signature)"

_PATTERNS: Final = (
    # `Authorization: …`, `Cookie: …` headers (HTTP, JSON and debug-block forms); the value runs to a quote or line end.
    r"""(?P<hdr>\b(?:proxy-)?authorization|\b(?:set-)?cookie|\bx-api-key)(?P<hdrsep>(?>\\?["']?\s*:\s*\\?["']?))"""
    r"""(?![\[{])[^"'\r\n\\]+""",  # a list or object value is left to the key rule below
    # `password: "x"`, `"apiKey":"x"`, `client_secret=x`, JSON inside JSON (`\\"token\\":`): a key naming a secret.
    # A quoted value runs to its closing quote (spaces included), a list or object to its bracket; a bare value
    # takes an auth scheme word with it (`token: Bearer x`) and never swallows a label after it (`token: password: x`).
    r"""(?P<kv>""" + _SECRET_KEY_WORDS + r""")(?P<kvsep>(?>\\?["']?\s*[:=]\s*(?P<kvq>\\?["'])?))"""
    r"""(?!\[REDACTED\]|(?:set-)?cookie\s*:|[\w-]{0,20}""" + _SECRET_KEY_WORDS + r"""\\?["']?\s*[:=])"""
    r"""(?(kvq)(?:(?!(?P=kvq))[^\r\n])+|(?:\[[^\]\r\n]*\]?|\{[^}\r\n]*\}?|(?:(?:bearer|basic|token|digest)\s+(?!\[REDACTED\]))?[^\s"'&,;}\]\\]+))""",
    # `?key=…` / `&key=…` query parameters.
    r"(?P<qk>(?<![\w-])key=)[^\s&\"'#]+",
    r"(?P<bearer>\bBearer\s+)(?!\[REDACTED\])[^\s\"',;]+",
    r"\bsk-(?:ant-)?[A-Za-z0-9_*-]{8,}",
    r"\bAIza[0-9A-Za-z_-]{20,}",
    r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
    # scheme://user:password@host (from `://` on: a scheme prefix would backtrack quadratically like the keys above)
    r"(?P<scheme>://)[^/\s:@\"']+:[^/\s@\"']+@",
)


# Every match of a pattern above starts with one of these words, or at most _LEAD characters before one
# (`proxy-` before `authorization`, `set-` before `cookie`, `x-` before `api-key`). Finding them in the
# lower-cased text is a cheap literal search, and the full pattern then only needs trying at the few places
# before each: running it over whole stack traces and messages costs ten times more.
TRIGGER_WORDS: Final = (
    "password", "passwd", "secret", "token", "apikey", "api-key", "api_key", "authorization", "cookie", "credential",
    "signature", "key=", "bearer", "sk-", "aiza", "eyj", "://",
)  # fmt: skip
# One Aho-Corasick pass finds every word (overlaps too: `key=` inside `api-key=`), three times faster than the
# alternation searched again from each place.
_TRIGGERS: Final = AhoCorasick(TRIGGER_WORDS)
# Only these words can have a match start before them; every other match starts at its word.
_LEAD: Final = {"authorization": 6, "cookie": 4, "api-key": 2}
_LEADS: Final = tuple(_LEAD.get(word, 0) for word in TRIGGER_WORDS)
_START: Final = operator.itemgetter(1)
# At most this many attribute keys keep their verdict (metadata keys come from the log: unbounded in theory).
_KEYS_KEPT: Final = 4096


def _lowered(value: str) -> str:
    """`value` lower-cased so that the words are found wherever IGNORECASE would see them: the only non-ASCII
    characters it equates with ASCII letters are U+0130 and U+0131 (i), U+017F (s) and the Kelvin sign (which
    lower-cases to k), and U+0130 is the only character whose lower case is longer, which would shift positions."""
    if value.isascii():
        return value.lower()
    return value.replace("\u0130", "i").lower().replace("\u0131", "i").replace("\u017f", "s")


def _secret_key(key: str) -> bool:
    segment = key.rsplit(".", 1)[-1].lower()
    return segment.endswith(_SECRET_SUFFIXES)


def _replace(match: re.Match[str]) -> str:
    """Keep the label (`Bearer `, `password: `, `https://`) and replace only the secret."""
    group = match.lastgroup
    if group == "hdrsep":
        return match.group("hdr") + match.group(group) + REDACTED
    if group == "kvsep":
        return match.group("kv") + match.group(group) + REDACTED
    if group in ("qk", "bearer"):
        return match.group(group) + REDACTED
    if group == "scheme":
        return match.group(group) + REDACTED + "@"
    return REDACTED


# What becomes of an attribute's value.
_SCAN: Final = 0  # redacted where secrets are found
_SECRET: Final = 1  # a metadata key naming a secret: replaced whatever its type, lists included
_KEEP: Final = 2  # our own hex digest, which no built-in pattern can match (extra patterns may, so then _SCAN)
_OWN_HEX: Final = frozenset({"log.record.uid"})


class _KeyVerdicts(dict[str, tuple[str, int]]):
    """Attribute key -> (its redacted name, what becomes of its value), worked out once per key: the same few
    dozen keys come back on every record. A renamed key is judged again by its new name."""

    __slots__ = ("_hex_safe", "_text")

    def __init__(self, text: Callable[[str], str], hex_safe: bool) -> None:
        super().__init__()
        self._text = text
        self._hex_safe = hex_safe

    def __missing__(self, key: str) -> tuple[str, int]:
        if len(self) >= _KEYS_KEPT:
            self.clear()
        if key.startswith(META):
            verdict = (self._text(key), _SECRET if _secret_key(key) else _SCAN)
        else:
            verdict = (key, _KEEP if self._hex_safe and key in _OWN_HEX else _SCAN)
        self[key] = verdict
        return verdict


class Redactor:
    """Callable processor: redacts one event in place and returns it."""

    __slots__ = ("_extra", "_keys", "_pattern", "text")

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self._pattern = re.compile("|".join(_PATTERNS), re.IGNORECASE)
        extras = list(extra)
        self._extra = re.compile("|".join(f"(?:{p})" for p in extras)) if extras else None
        self.text = Memo(self._redact)  # `value` with every secret replaced
        self._keys = _KeyVerdicts(self.text, hex_safe=self._extra is None)

    def _redact(self, value: str) -> str:
        value = self._near_triggers(value)
        if self._extra is not None:
            value = self._extra.sub(REDACTED, value)
        return value

    def _near_triggers(self, value: str) -> str:
        """`self._pattern.sub(_replace, value)`, trying the pattern only where a match can start."""
        lowered = _lowered(value)
        match = self._pattern.match
        out: list[str] = []
        done = 0  # value[:done] is final
        tried = 0  # no match starts in value[done:tried]
        triggers: list[tuple[int, int, int]] = _TRIGGERS.find_matches_as_indexes(lowered, overlapping=True)
        for word, at, _end in sorted(triggers, key=_START):
            if at < tried:
                continue
            for start in range(max(tried, at - _LEADS[word]), at + 1):
                found = match(value, start)
                if found is not None:
                    out += (value[done:start], _replace(found))
                    done = tried = found.end()
                    break
            else:
                tried = at + 1
        if not out:
            return value
        out.append(value[done:])
        return "".join(out)

    def __call__(self, event: Event) -> Event:
        text = self.text
        known = text.known
        event.body = text(event.body)
        if not event.severity_number:  # not a Winston level: whatever the record's `level` held
            event.severity_text = text(event.severity_text)
        attrs = event.attributes
        keys = self._keys
        # Metadata keys come from the log too (`{"sk-…": 1}`): a key holding a secret is renamed.
        for key in [k for k in attrs if keys[k][0] != k]:
            attrs[keys[key][0]] = attrs.pop(key)
        for key, value in attrs.items():
            action = keys[key][1]
            if action == _SECRET:
                attrs[key] = REDACTED
            elif action == _KEEP:
                continue
            elif isinstance(value, str):
                done = known.get(value)  # most attribute values were seen before: no call needed
                attrs[key] = done if done is not None else text(value)
            elif isinstance(value, list) and value and isinstance(value[0], str):
                attrs[key] = [text(item) if isinstance(item, str) else item for item in value]
        return event
