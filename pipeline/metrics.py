"""Prometheus metrics, named once. Each process exposes its own registry; the worker's counters also ride on
its heartbeats so the api's /metrics shows the whole pipeline in one scrape."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("streamdesk_events_total", "Events through the pipeline", ["topic", "outcome"])
# outcome: in (consumed), out (forwarded), dlq (dead-lettered)

MATERIALIZED_ROWS = Counter("streamdesk_materialized_rows_total", "Rows written to DuckDB", ["table"])
DUPLICATES_DROPPED = Counter("streamdesk_duplicates_dropped_total", "Records whose key was already stored",
                             ["table"])
MATERIALIZER_BATCH = Histogram("streamdesk_materializer_batch_rows", "Rows per materializer transaction",
                               buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000))
MATERIALIZER_SECONDS = Histogram("streamdesk_materializer_batch_seconds", "Seconds per materializer transaction",
                                 buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
CONSUMER_LAG = Gauge("streamdesk_consumer_lag_messages",
                     "Materializer lag (approximate on the embedded broker: its end offsets are wrong)",
                     ["topic", "partition"])
CALL_EVENTS_DROPPED = Counter("streamdesk_call_events_dropped_total",
                              "Facade call records not delivered to calls.raw (broker down or buffer full)",
                              ["reason"])
HTTP_REQUESTS = Counter("streamdesk_http_requests_total", "HTTP requests served", ["method", "route", "status"])
HTTP_SECONDS = Histogram("streamdesk_http_request_seconds", "HTTP request latency", ["method", "route"])
WORKER_EVENTS = Gauge("streamdesk_worker_events", "Worker counters as of its last heartbeat",
                      ["worker", "topic", "outcome"])
OFFSET_GAPS = Counter("streamdesk_offset_gaps_total",
                      "Fetches that skipped offsets the broker had not stored yet (broker/offset_gaps.py)",
                      ["topic", "outcome"])
# outcome: held (fetched again from the first missing offset), skipped (stepped over after waiting HOLD_S)
ROWS_EXPIRED = Counter("streamdesk_rows_expired_total", "Rows deleted by retention (api/retention.py)", ["table"])
FRESHNESS_SECONDS = Histogram("streamdesk_freshness_seconds", "Produce -> row committed in DuckDB, per source topic",
                              ["topic"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300))
ALERT_FIRING = Gauge("streamdesk_alert_firing", "Tenants (or the host) a seed-000 alert is on for (api/alerts.py)",
                     ["alert"])
ALERT_VALUE = Gauge("streamdesk_alert_value", "The worst figure a seed-000 alert compares with its threshold",
                    ["alert"])
GROUP_LAG = Gauge("streamdesk_group_lag_messages", "Messages a worker consumer group is behind, per topic, as last "
                  "asked (pipeline/broker/lag.py)", ["group", "topic"])
