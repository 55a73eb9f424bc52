"""An embedded OTLP collector (rotel-agent) for `make demo`, the tests and the benchmark."""
