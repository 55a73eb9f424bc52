"""`logtail stats PATH... [--json]`: what an archive or a live logs directory says, as a terminal report.

Reads with the same discovery, parsers and pipeline as shipping, so its numbers are those the metrics would
carry: debug-file twins of error-file records are counted once, tokens and credits go to the model the
correlator found. Nothing leaves the host.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any, Final

import orjson
import typer

from logtail.commands.replay import select_files
from logtail.commands.sparkline import sparkline
from logtail.config import MetricsConfig
from logtail.export.metrics import CACHE_TOKEN_TYPES, ENDPOINT, MODEL, TOKEN_TYPES, cost_usd, outcome
from logtail.pipeline import TWIN, Pipeline
from logtail.source.parse_workers import ParseWorkers, jobs_for
from logtail.source.read import READ_ERRORS, reason
from parsers.auth import LOGIN
from parsers.event import Event
from parsers.moderation import BAN
from parsers.records import DEFAULT_MAX_RECORD
from parsers.tokens import TRANSACTION, USAGE

OUTCOMES: Final = ("completed", "aborted", "error", "insufficient_balance")

EXIT_BAD_PATH: Final = 2
UNKNOWN: Final = "(unknown)"
TOP: Final = 10
TOP_EXCEPTIONS: Final = 3
DAY_COLUMNS: Final = 7
TOKEN_KINDS: Final = (*TOKEN_TYPES, *CACHE_TOKEN_TYPES)  # (attribute, token type)
TOKEN_COLUMNS: Final = ("requests", *(token_type for _, token_type in TOKEN_KINDS), "total")


@dataclass(slots=True)
class Stats:
    """Totals over the events seen; `Counter` keys carry the UTC day (`YYYY-MM-DD`) where a table shows days."""

    credits_per_usd: float = MetricsConfig().credits_per_usd
    records: int = 0
    twins: int = 0
    days: set[str] = field(default_factory=set)
    requests: Counter[str] = field(default_factory=Counter)  # model -> token usage records
    tokens: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (model, token type, day)
    credits: defaultdict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))  # (model, day)
    user_tokens: Counter[str] = field(default_factory=Counter)
    user_credits: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)  # (source, day)
    exception_types: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    bans: Counter[str] = field(default_factory=Counter)  # day
    banned_users: Counter[str] = field(default_factory=Counter)
    banned_addresses: Counter[str] = field(default_factory=Counter)
    login_failures: Counter[tuple[str, str]] = field(default_factory=Counter)  # (client address, day)
    active_users: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # day -> user ids
    responses: Counter[tuple[str, str]] = field(default_factory=Counter)  # (model, day): librechat.requests
    user_responses: Counter[str] = field(default_factory=Counter)
    cost: defaultdict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))  # (model, day)
    user_cost: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (endpoint, outcome)

    def add(self, events: Iterable[Event]) -> None:
        for event in events:
            self.records += 1
            attributes = event.attributes
            if attributes.get(TWIN):  # its original in the error file is counted
                self.twins += 1
                continue
            day = dt.datetime.fromtimestamp(event.time_unix_nano / 1e9, dt.UTC).date().isoformat()
            self.days.add(day)
            name = event.event_name
            model = str(attributes.get(MODEL, UNKNOWN))
            user = str(attributes.get("user.id", UNKNOWN))
            if user != UNKNOWN:
                self.active_users[day].add(user)
            ended = outcome(event)
            if ended is not None:
                self.outcomes[str(attributes.get(ENDPOINT, UNKNOWN)), ended] += 1
                if ended == "completed":
                    self.responses[model, day] += 1
                    self.user_responses[user] += 1
            if name == USAGE:
                self.requests[model] += 1
                for key, token_type in TOKEN_KINDS:
                    tokens = _number(attributes.get(key))
                    self.tokens[model, token_type, day] += int(tokens)
                    self.user_tokens[user] += int(tokens)
            elif name == TRANSACTION:
                amount = _number(attributes.get("librechat.credits"))
                self.credits[model, day] += amount
                self.user_credits[user] += amount
                usd = sum(part for _, part in cost_usd(attributes, self.credits_per_usd))
                self.cost[model, day] += usd
                self.user_cost[user] += usd
            elif name == BAN:
                self.bans[day] += 1
                self.banned_users[user] += 1
                self.banned_addresses[str(attributes.get("client.address", UNKNOWN))] += 1
            elif name == LOGIN and attributes.get("librechat.auth.outcome") == "failure":
                self.login_failures[str(attributes.get("client.address", UNKNOWN)), day] += 1
            source = attributes.get("librechat.error.source")
            if source is not None:
                self.errors[str(source), day] += 1
                self.exception_types[str(source)][str(attributes.get("exception.type", UNKNOWN))] += 1

    def document(self) -> dict[str, Any]:
        """Everything the report shows, for machines (`--json`)."""
        days = sorted(self.days)
        models = sorted(self.requests)
        tokens_by_model = {
            model: {
                "requests": self.requests[model],
                **{t: _sum(self.tokens, model, t) for _, t in TOKEN_KINDS},
                "total": _sum(self.tokens, model),
                "by_day": _by_day(self.tokens, days, model),
            }
            for model in models
        }
        credit_models = sorted({model for model, _ in self.credits})
        users = sorted(
            (set(self.user_tokens) | set(self.user_credits)) - {UNKNOWN},
            key=lambda u: (-self.user_tokens[u], self.user_credits.get(u, 0.0), u),
        )
        addresses = sorted({a for a, _ in self.login_failures}, key=lambda a: (-_sum(self.login_failures, a), a))
        sources = sorted({s for s, _ in self.errors}, key=lambda s: (-_sum(self.errors, s), s))
        per_user = [n for user, n in self.user_responses.items() if user != UNKNOWN]
        endpoints = sorted({endpoint for endpoint, _ in self.outcomes}, key=lambda e: (e == UNKNOWN, e))
        return {
            "records": self.records,
            "twins": self.twins,
            "days": days,
            "active_users": {"by_day": {day: len(self.active_users[day]) for day in days}},
            "requests": {
                "total": sum(self.responses.values()),
                "by_model": {
                    m: {"total": _sum(self.responses, m), "by_day": _by_day(self.responses, days, m)}
                    for m in sorted({m for m, _ in self.responses})
                },
                "by_day": _by_day(self.responses, days),
            },
            # Model responses per user, as a MongoDB exporter's messages per user (population deviation).
            "messages_per_user": {
                "users": len(per_user),
                "mean": _round(statistics.fmean(per_user)) if per_user else 0.0,
                "stddev": _round(statistics.pstdev(per_user)) if per_user else 0.0,
                "without_user": self.user_responses[UNKNOWN],
            },
            "cost_usd": {
                "credits_per_usd": self.credits_per_usd,
                "total": _round(sum(self.cost.values())),
                "by_model": {
                    m: {"total": _round(_sum(self.cost, m)), "by_day": _by_day(self.cost, days, m)}
                    for m in sorted({m for m, _ in self.cost})
                },
                "by_day": _by_day(self.cost, days),
                "top_users": [
                    {"user": u, "usd": _round(usd)}
                    for u, usd in sorted(self.user_cost.items(), key=lambda item: (-item[1], item[0]))
                    if u != UNKNOWN
                ][:TOP],
            },
            "outcomes": {
                "total": {o: sum(n for (_, o2), n in self.outcomes.items() if o2 == o) for o in OUTCOMES},
                "by_endpoint": {e: {o: self.outcomes[e, o] for o in OUTCOMES} for e in endpoints},
            },
            "tokens": {
                "total": sum(self.tokens.values()),
                "by_model": tokens_by_model,
                "by_day": _by_day(self.tokens, days),
            },
            "credits": {
                "total": _round(sum(self.credits.values())),
                "by_model": {
                    m: {"total": _round(_sum(self.credits, m)), "by_day": _by_day(self.credits, days, m)}
                    for m in credit_models
                },
                "by_day": _by_day(self.credits, days),
            },
            "users": [
                {"user": u, "tokens": self.user_tokens[u], "credits": _round(self.user_credits.get(u, 0.0))}
                for u in users
            ],
            # Token usage records name the user only in some releases and call sites.
            "tokens_without_user": self.user_tokens[UNKNOWN],
            "errors": {
                "total": sum(self.errors.values()),
                "by_source": {
                    s: {
                        "count": _sum(self.errors, s),
                        "by_day": _by_day(self.errors, days, s),
                        "exception_types": dict(self.exception_types[s].most_common(TOP_EXCEPTIONS)),
                    }
                    for s in sources
                },
            },
            "bans": {
                "total": sum(self.bans.values()),
                "by_day": {day: self.bans[day] for day in days},
                "users": dict(self.banned_users.most_common()),
                "addresses": dict(self.banned_addresses.most_common()),
            },
            "login_failures": {
                "total": sum(self.login_failures.values()),
                "by_day": _by_day(self.login_failures, days),
                "by_address": {a: _sum(self.login_failures, a) for a in addresses if a != UNKNOWN},
                "without_address": _sum(self.login_failures, UNKNOWN),
            },
        }


def _number(value: object) -> float:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _round(value: float) -> float:
    return round(value, 6)  # sums of binary fractions: 7.000000000001 helps nobody


def _sum(counts: dict[Any, Any], *prefix: str) -> Any:
    """Sum of the values whose key starts with `prefix` (day last)."""
    return sum(v for k, v in counts.items() if k[: len(prefix)] == prefix)


def _by_day(counts: dict[Any, Any], days: Sequence[str], *prefix: str) -> dict[str, Any]:
    totals: defaultdict[str, Any] = defaultdict(int)
    for key, value in counts.items():
        if key[: len(prefix)] == prefix:
            totals[key[-1]] += value
    return {day: _round(totals[day]) if isinstance(totals[day], float) else totals[day] for day in days}


# Text report -------------------------------------------------------------------------------------------
def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], *, text_last: bool = False) -> list[str]:
    """A titled table: first column left-aligned, the others right-aligned but a `text_last` column;
    '(none)' when empty."""
    if not rows:
        return [title, "  (none)", ""]
    widths = [max(len(str(row[i])) for row in (headers, *rows)) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        first, *rest = (str(c) for c in cells)
        cells_out = [first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]
        if text_last:
            cells_out[-1] = rest[-1]
        return "  " + "  ".join(cells_out).rstrip()

    return [title, line(headers), *(line(row) for row in rows), ""]


def _spark(by_day: dict[str, Any]) -> str:
    return sparkline(list(by_day.values()))


def _per_day(by_day: dict[str, Any]) -> str:
    return f", per day {_spark(by_day)}" if by_day else ""


def report(doc: dict[str, Any]) -> str:
    days = doc["days"]
    span = f"{days[0]} … {days[-1]} ({len(days)} days)" if days else "no dated records"
    lines = [f"{doc['records']:,} records, {doc['twins']:,} debug-file twins counted once; {span}", ""]
    lines += requests_report(doc)
    tokens = doc["tokens"]
    lines += table(
        f"Tokens by model ({tokens['total']:,} in all)",
        ["model", "requests", "input", "output", "cache read", "cache write", "total", "per day"],
        [
            [m, *(f"{t[k]:,}" for k in TOKEN_COLUMNS), _spark(t["by_day"])]
            for m, t in sorted(tokens["by_model"].items(), key=lambda item: -item[1]["total"])
        ],
    )
    credits = doc["credits"]
    lines += table(
        "Tokens and credits by day",
        ["day", "tokens", "credits"],
        [[day, f"{tokens['by_day'][day]:,}", f"{credits['by_day'][day]:,.2f}"] for day in days],
    )
    lines += table(
        f"Credits by model ({credits['total']:,.2f} in all)",
        ["model", "credits", "per day"],
        [
            [m, f"{c['total']:,.2f}", _spark(c["by_day"])]
            for m, c in sorted(credits["by_model"].items(), key=lambda item: item[1]["total"])
        ],
    )
    lines += table(
        f"Top users by tokens (at most {TOP}; {doc['tokens_without_user']:,} tokens without a user id in the logs)",
        ["user", "tokens", "credits"],
        [[u["user"], f"{u['tokens']:,}", f"{u['credits']:,.2f}"] for u in doc["users"][:TOP]],
    )
    errors = doc["errors"]
    lines += table(
        f"Errors by source ({errors['total']:,} in all)",
        ["source", "errors", "per day", "top exception types"],
        [
            [
                s,
                f"{e['count']:,}",
                _spark(e["by_day"]),
                ", ".join(f"{t} {n:,}" for t, n in e["exception_types"].items()),
            ]
            for s, e in errors["by_source"].items()
        ],
        text_last=True,
    )
    bans = doc["bans"]
    lines += table(
        f"Bans ({bans['total']:,} in all{_per_day(bans['by_day'])})",
        ["banned address", "bans"],
        [[a, f"{n:,}"] for a, n in list(bans["addresses"].items())[:TOP]],
    )
    failures = doc["login_failures"]
    lines += table(
        f"Login failures by address ({failures['total']:,} in all, {failures['without_address']:,} of them without"
        f" an address{_per_day(failures['by_day'])})",
        ["client address", "failures"],
        [[a, f"{n:,}"] for a, n in list(failures["by_address"].items())[:TOP]],
    )
    return "\n".join(lines)


def requests_report(doc: dict[str, Any]) -> list[str]:
    """Active users, model responses, cost in US dollars and how requests ended."""
    days = doc["days"]
    lines = table(
        "Active users by day (distinct user ids in the records)",
        ["day", "users"],
        [[day, f"{doc['active_users']['by_day'][day]:,}"] for day in days],
    )
    requests = doc["requests"]
    columns = days if len(days) <= DAY_COLUMNS else []  # a longer span shows a sparkline instead
    lines += table(
        f"Requests (model responses) by model ({requests['total']:,} in all)",
        ["model", *columns, "total", "per day"],
        [
            [m, *(f"{r['by_day'][day]:,}" for day in columns), f"{r['total']:,}", _spark(r["by_day"])]
            for m, r in sorted(requests["by_model"].items(), key=lambda item: (-item[1]["total"], item[0]))
        ],
    )
    per_user = doc["messages_per_user"]
    lines += [
        f"Messages per user: mean {per_user['mean']:,.2f}, standard deviation {per_user['stddev']:,.2f} over"
        f" {per_user['users']:,} users ({per_user['without_user']:,} responses without a user id)",
        "",
    ]
    cost = doc["cost_usd"]
    lines += table(
        f"Cost in USD by model ({cost['total']:,.4f} in all, {cost['credits_per_usd']:,.0f} credits = 1 USD)",
        ["model", *columns, "total", "per day"],
        [
            [m, *(f"{c['by_day'][day]:,.4f}" for day in columns), f"{c['total']:,.4f}", _spark(c["by_day"])]
            for m, c in sorted(cost["by_model"].items(), key=lambda item: (-item[1]["total"], item[0]))
        ],
    )
    lines += table(
        f"Top users by cost (at most {TOP})",
        ["user", "USD"],
        [[u["user"], f"{u['usd']:,.4f}"] for u in cost["top_users"]],
    )
    outcomes = doc["outcomes"]
    lines += table(
        "Request outcomes by endpoint",
        ["endpoint", *OUTCOMES, "error rate"],
        [[e, *(f"{counts[o]:,}" for o in OUTCOMES), _rate(counts)] for e, counts in outcomes["by_endpoint"].items()],
    )
    return lines


def _rate(counts: dict[str, int]) -> str:
    ended = sum(counts.values())
    return f"{counts['error'] / ended:.1%}" if ended else "-"


# Command -----------------------------------------------------------------------------------------------
def collect(paths: list[Path], err: IO[str], credits_per_usd: float | None = None) -> tuple[Stats, bool]:
    """Stats of every log file under `paths`; False when a path or file could not be read (reported on `err`)."""
    files, bad = select_files(paths)
    for problem in bad:
        err.write(f"logtail stats: {problem}\n")
    stats = Stats() if credits_per_usd is None else Stats(credits_per_usd=credits_per_usd)
    pipeline = Pipeline(error_family=any(f.family == "error" for f in files))
    damaged: list[Path] = []
    with ParseWorkers(jobs_for(files), scrub=pipeline.scrub) as workers:
        for log_file in files:
            try:
                for batch in workers.batches(log_file, max_record=DEFAULT_MAX_RECORD):  # constant memory
                    stats.add(pipeline.join(batch))
            except READ_ERRORS as exc:  # unreadable, or a damaged .gz: reported, the records before it counted
                err.write(f"logtail stats: {log_file.path}: {reason(exc)}\n")
                damaged.append(log_file.path)
    return stats, not bad and not damaged


def stats_command(
    paths: Annotated[list[Path], typer.Argument(help="logs directories, files or .gz archives", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document instead of tables")] = False,
    credits_per_usd: Annotated[
        float | None,
        typer.Option(min=0.000001, help="token credits per US dollar (default: metrics.credits_per_usd's default)"),
    ] = None,
) -> None:
    """Report active users, requests, cost and outcomes, tokens and credits by model and day, top users,
    errors, bans and login failures."""
    stats, ok = collect(paths, sys.stderr, credits_per_usd)
    doc = stats.document()
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.write(report(doc))
    sys.stdout.flush()
    if not ok:
        raise typer.Exit(EXIT_BAD_PATH)
