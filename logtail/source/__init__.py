"""Files in, records' bytes out: discovery (`files.py`), closed-file reading (`read.py`) and live following
(fingerprint, reader, tracker, watcher, tailer, checkpoint)."""
