"""What LibreChat writes to the console when it is not JSON: Winston's colourised text.

`YYYY-MM-DD HH:mm:ss <level>: <message>` with ANSI colour codes around the level and the message (`colorize({all:
true})`), the request context appended as ` {"requestId":…}` by the newest logger, and no metadata; the time has
no milliseconds and is the container's local time, so the runtime's envelope time stands in for it.
`DEBUG_CONSOLE=true` writes the debug file's own text instead, which `winston.match_header` reads.
"""

from __future__ import annotations

import re
from typing import Final

from parsers.records import DEBUG_HEADER
from parsers.winston import Raw, match_header, raw_from_debug, split_context

ANSI: Final = re.compile(r"\x1b\[[0-9;]*m")
_ANSI_BYTES: Final = re.compile(rb"\x1b\[[0-9;]*m")
_LEVELS: Final = r"(error|warn|info|http|verbose|debug|activity|silly)"
CONSOLE_HEADER: Final = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d " + _LEVELS + r"(?:: |$)")
_CONSOLE_HEADER_BYTES: Final = re.compile(CONSOLE_HEADER.pattern.encode())


def starts_record(line: bytes) -> bool:
    """Whether a console output line begins a record (a JSON object or a header), rather than continuing one."""
    if line.startswith(b'{"') or DEBUG_HEADER.match(line):
        return True
    return bool(_CONSOLE_HEADER_BYTES.match(_ANSI_BYTES.sub(b"", line[:200])))


def raw_from_console(text: str) -> Raw | None:
    """A text record of the console (colourised or `DEBUG_CONSOLE`), or None when it has no LibreChat header."""
    text = ANSI.sub("", text)
    header = match_header(text)
    if header:
        return raw_from_debug(text, header)
    console = CONSOLE_HEADER.match(text)
    if console is None:
        return None
    message, fields = split_context(text[console.end() :].rstrip("\r\n"))
    return Raw(level=console.group(1), message=message, time_ns=None, fields=fields)
