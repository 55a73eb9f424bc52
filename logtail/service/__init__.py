"""The parts of the running service around the data flow: systemd notification, journald logging, the health
endpoint and logtail's own metrics."""
