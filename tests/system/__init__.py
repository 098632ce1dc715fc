"""System tests: npsloop run as its own processes (servers, roles and one-shot commands), crashes,
outages, Kafka end to end, the dashboard in Chromium and the OpenAPI fuzzer. tests/conftest.py
marks everything here `system`; `make test-system` runs only these, `make test-fast` none."""
