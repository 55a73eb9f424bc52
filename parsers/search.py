"""Search synchronisation: `[indexSync]` (main logger) and the meiliSync file."""

from __future__ import annotations

import re
from typing import Final

from parsers.errors import SEARCH_ERROR, put_exception
from parsers.event import Attributes
from parsers.fields import put_number, put_request
from parsers.winston import Raw

SYNC: Final = "librechat.search.sync"

# (compiled pattern, phase); named groups `collection`, `documents`, `total`, `duration` become attributes.
_PHASES: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(pattern), phase)
    for pattern, phase in (
        (r"Starting sync for (?P<collection>\w+) with batch size (?P<batch>\d+)", "start"),
        (r"Approximate total number of all (?P<collection>\w+): (?P<total>\d+)", "total"),
        (r"Starting cleanup of Meili index (?P<collection>\w+)", "cleanup_start"),
        (r"Completed cleanup of Meili index: (?P<collection>\w+)", "cleanup_done"),
        (r"Deleted (?P<documents>\d+) orphaned documents(?: from (?P<collection>\w+) index)?", "cleanup_deleted"),
        (r"Processed: (?P<documents>\d+)", "processed"),
        (
            r"Completed sync for (?P<collection>\w+)\. "
            r"Processed (?P<documents>\d+) documents in (?P<duration>[\d.]+)ms",
            "completed",
        ),
        (r"Index (?P<collection>\w+) already exists", "index_exists"),
        (r"Updated index (?P<collection>\w+) settings", "index_settings"),
        (r"had document discrepancy", "discrepancy"),
        (r"Finished indexing (?P<collection>\w+)", "finished"),
        (r"Starting index synchronization check", "check_start"),
        (r"Requesting (?P<collection>\w+?) sync progress", "progress"),
        (r"\b(?P<collection>\w+) need syncing: (?P<documents>\d+)/(?P<total>\d+)", "need"),
        (r"Starting (?P<collection>\w+?) sync \((?P<documents>\d+) unindexed\)", "start"),
        (r"\b(?P<collection>\w+) are fully synced: (?P<documents>\d+)/(?P<total>\d+)", "synced"),
        (r"Sync completed successfully", "done"),
        # v0.8.0-v0.8.1 wording (replaced in v0.8.2).
        (r"Progress: \d+% \((?P<documents>\d+)/(?P<total>\d+)\)", "processed"),
        (r"Completed sync for (?P<collection>\w+) in (?P<duration>[\d.]+)ms", "completed"),
        (r"Creating new index: (?P<collection>\w+)", "index_creating"),
        (r"Successfully created index: (?P<collection>\w+)", "index_created"),
        (r"Sync already running", "already_running"),
        (r"Could not check (?P<collection>\w+) documents", "check_failed"),
        (r"Configuring (?P<collection>\w+) index to filter", "configure_index"),
        (r"\b(?P<collection>\w+) index configured for user filtering", "index_configured"),
        (r"Creating indices", "creating_indices"),
        (r"Existing (?P<collection>\w+) missing user field", "orphans_detected"),
        (
            r"Deleting (?P<documents>\d+) documents without user field from (?P<collection>\w+) index",
            "orphans_deleting",
        ),
        (r"Orphaned documents cleaned up", "orphans_cleaned"),
        (r"Index settings updated", "settings_updated"),
        (r"Forcing full re-sync", "force_resync"),
        (r"Starting full (?P<collection>\w+) sync", "full_sync"),
        (r"\b(?P<collection>\w+) out of sync, performing incremental sync", "incremental"),
        (r"No sync was needed", "no_sync"),
        (r"Flow state cleaned up", "flow_cleanup"),
    )
)
_COLLECTIONS: Final = {
    "message": "messages",
    "conversation": "conversations",
    "Messages": "messages",
    "Conversations": "conversations",
    "Convos": "convos",
}


def sync(raw: Raw, attrs: Attributes) -> str:
    put_request(attrs, raw.fields)
    message = raw.message
    for pattern, phase in _PHASES:
        found = pattern.search(message)
        if found:
            attrs["librechat.search.phase"] = phase
            groups = found.groupdict()
            collection = groups.get("collection")
            if collection:
                attrs["librechat.search.collection"] = _COLLECTIONS.get(collection, collection)
            put_number(attrs, "librechat.search.documents", groups.get("documents"))
            put_number(attrs, "librechat.search.total", groups.get("total"))
            put_number(attrs, "librechat.search.batch_size", groups.get("batch"))
            put_number(attrs, "librechat.search.duration_ms", groups.get("duration"))
            break
    else:
        if "indexMap" in raw.fields or "mongoMap" in raw.fields:  # v0.7 `[syncWithMeili]` `{indexMap, mongoMap}`
            attrs["librechat.search.phase"] = "stats"
    put_number(attrs, "librechat.search.indexed", raw.fields.get("indexMap"))
    put_number(attrs, "librechat.search.documents_total", raw.fields.get("mongoMap"))
    return SYNC


def error(raw: Raw, attrs: Attributes) -> str:
    put_request(attrs, raw.fields)
    put_exception(raw, attrs, "search")
    return SEARCH_ERROR
