"""Pure parsing: `Record` (bytes and offsets) in, typed `Event` out (events.md §1-§3).

No file, clock or network access here, and nothing from `logtail`: the caller hands in a
`FileContext` that carries what the file name tells (family, date) and the time of the previous
record, which is how records without a timestamp get theirs.
"""

from __future__ import annotations

from parsers.parse import UNPARSED, UNPARSED_BODY_CAP, FileContext, parse_record, record_uid

__all__ = ["UNPARSED", "UNPARSED_BODY_CAP", "FileContext", "parse_record", "record_uid"]
