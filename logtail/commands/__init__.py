"""The commands an operator types: `parse`, `replay`, `run`, `check`, `stats` (wired in `logtail/cli.py`), `demo`."""
