"""Realistic `calls.raw` events for the benchmarks: seed-003 columns as a plain gateway sends them.

One JSON object per event, ~460-530 bytes, no `api_call_history_id` (the seed's gateway DTO has none, so
the pipeline derives it from the source coordinates). Each event's `trace_id` is `<tag 8 hex><seq 24 hex>`,
so a benchmark finds its own rows (the facade records its own calls into the same table) and knows each
row's sequence number, hence its produce time.

Two shapes. `native` is the project's own spelling (string ids, upper-case methods, UTC `Z` times, 40 tenants,
200 agents). `seed` is what seed 003's gateway sends: each of its VARIANTS can be switched on alone, and the
seed shape is all of them at once.
"""

from __future__ import annotations

import random
import secrets
import string
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qsl

import orjson

METHODS = ["GET"] * 12 + ["POST"] * 5 + ["PUT", "PATCH", "DELETE"]
STATUSES = [200] * 40 + [201] * 6 + [204] * 3 + [304, 400, 400, 401, 403, 404, 404, 404, 409, 422, 429, 500, 502,
                                                 503, 504]
ERROR_CODES = {400: "COD_001", 401: "COD_002", 403: "COD_003", 404: "COD_004", 409: "COD_P005", 422: "COD_P001",
               429: "RATE_LIMITED", 500: "COD_005", 502: "COD_P004", 503: "UPSTREAM_UNAVAILABLE",
               504: "COD_P002"}
SOURCES = ["AURA"] * 5 + ["DWP"] * 3 + ["GATEWAY", "MOBILE"]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0 aura-desktop/1.4",
    "okhttp/4.12.0 (Android 14; SM-S918N) aura-mobile/3.8.2 build/20261104",
    "python-httpx/0.28.1 streamdesk-connector/0.1.0 (freshdesk ingest; +https://example.invalid/bot)",
    "curl/8.5.0 (x86_64-pc-linux-gnu) libcurl/8.5.0 OpenSSL/3.0.13 zlib/1.3 brotli/1.1.0 nghttp2/1.59.0",
    "Apache-HttpClient/5.3.1 (Java/21.0.5) dwp-batch/2.4.0 spring-cloud-gateway/4.1.5",
]
PATHS = [
    "/api/aura/test/stream", "/api/aura/chat/completions", "/api/aura/agents/{agent}/runs",
    "/api/aura/agents/{agent}/runs/{uuid}/events", "/api/v1/tickets/{n}", "/api/v1/tickets/{n}/conversations",
    "/api/v1/tickets", "/api/v1/kb/articles/{n}", "/api/v1/users/{n}/profile", "/api/v1/users/{n}/settings",
    "/v1/sol-cod/predictions/{uuid}", "/v1/sol-cod/predictions", "/v1/sleep-quality-cod/records/{n}",
    "/ingest/jobs/{uuid}", "/ingest/jobs/{uuid}/progress", "/api/dwp/documents/{uuid}/render",
    "/api/dwp/workspaces/{n}/members", "/api/v1/health/dependencies", "/api/v2/search/semantic",
    "/api/v1/attachments/{uuid}/download",
]
QUERIES = [
    "page={n}&size=20&sort=created_at,desc", "q={word}&lang=ko&limit=10", "status=open&priority=high&page={n}",
    "include=conversations,attachments", "from=2026-11-01&to=2026-11-25&granularity=hour",
    "api_key=sk_live_{secret}&format=json", "access_token={secret}&scope=read", "token={secret}",
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA{upper}%2F20261125%2Fap-northeast-2%2Fs3%2Faws4_request"
    "&X-Amz-Signature={hex}",
    "stream=true&model=aura-large&temperature=0.2", "cursor={secret}&limit=50", "user={n}&password={secret}",
]
WORDS = ["refund", "login", "sleep", "invoice", "password reset", "배송", "환불", "latency", "timeout", "export"]


# What seed 003's gateway (a Spring Cloud Gateway filter and its Jackson-serialised DTO) does differently.
VARIANTS = {
    "numeric-ids": "tenant_id and user_id as JSON numbers (the DTO declares them Long)",
    "mixed-case": "methods as clients spell them: get, Post, patch, DELETE",
    "offset-time": "created_at with a +09:00 offset and milliseconds (a KST gateway's OffsetDateTime)",
    "secrets": "one query string in five carries a secret to redact",
    "null-sizes": "request_size_bytes NULL unless Content-Length was sent (most GETs, chunked bodies)",
    "few-tenants": "16 tenants and 50 agents",
    "extra-fields": "fields the pipeline does not know (a gateway's route id, a retry count)",
    "kong-weight": "Kong's fields the rules never read (route, service, tries, workspace, URLs, headers) on a native"
                   " event: as heavy as Kong's log object, to tell what Kong's adapter costs from what its bytes do",
}
SHAPES = {"native": frozenset(), "seed": frozenset(VARIANTS) - {"extra-fields", "kong-weight"}}
# Whose bytes: the project's own event, seed 003's DTO as Jackson writes it, or Kong's logging-plugin object
# (shaped as Kong 3.8's documented sample: route, service, tries and workspace included).
FORMATS = ("native", "seed-dto", "kong")
_DTO_ORDER = ("tenantId", "userId", "agentId", "method", "path", "queryString", "statusCode", "latencyMs",
              "requestSizeBytes", "responseSizeBytes", "ipAddress", "userAgent", "traceId", "errorCode", "source")
_KST = timezone(timedelta(hours=9))
# Secrets as secrets.token_urlsafe spells them, drawn from the seeded generator: a test that builds events twice
# gets the same bytes (a random token once held "Inf" and sent its event down the exact path in one CI run).
_URLSAFE = string.ascii_letters + string.digits + "-_"
_CASES = (str.lower, str.upper, str.capitalize, str.upper)
SECRET_QUERIES = [q for q in QUERIES if "{secret}" in q or "Credential" in q]
PLAIN_QUERIES = [q for q in QUERIES if q not in SECRET_QUERIES]


def variants_of(shape: str, extra: str = "", without: str = "") -> frozenset[str]:
    """A shape's variants, plus and minus comma-separated names (both checked against VARIANTS)."""
    chosen = set(SHAPES[shape])
    for names, add in ((extra, True), (without, False)):
        for name in filter(None, (n.strip() for n in names.split(","))):
            if name not in VARIANTS:
                raise ValueError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
            (chosen.add if add else chosen.discard)(name)
    return frozenset(chosen)


class EventFactory:
    """Deterministic (seeded) generator; `make(tag, seq)` returns one event's JSON bytes."""

    def __init__(self, seed: int = 3, variants: frozenset[str] = frozenset(), fmt: str = "native") -> None:
        self.rng = random.Random(seed)
        self.variants = variants
        self.fmt = fmt
        r = self.rng
        tenants, agents = (16, 50) if "few-tenants" in variants else (40, 200)
        self.tenants = [str(i) for i in range(1, tenants + 1)]
        self.tenant_weights = [1.0 / i for i in range(1, tenants + 1)]  # a few big tenants, a long tail
        self.agents = [f"agent_{r.choice(['aura', 'dwp', 'sol', 'help', 'test'])}_{i:03d}" for i in range(agents)]
        self.ips = [f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}" for _ in range(1500)]
        self.ips += [f"2001:db8:{r.randrange(65536):x}::{r.randrange(1, 65536):x}" for _ in range(100)]
        self.base = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

    def _fill(self, template: str) -> str:
        r = self.rng
        if "{" not in template:
            return template
        return (template.replace("{n}", str(r.randrange(1, 200_000)))
                .replace("{uuid}", f"{r.getrandbits(128):032x}")
                .replace("{agent}", r.choice(self.agents))
                .replace("{word}", r.choice(WORDS))
                .replace("{secret}", "".join(r.choices(_URLSAFE, k=r.choice((24, 32, 43)))))
                .replace("{upper}", "".join(r.choices(string.ascii_uppercase + string.digits, k=16)))
                .replace("{hex}", f"{r.getrandbits(256):064x}"))

    def event(self, tag: str, seq: int) -> dict:
        r = self.rng
        method = r.choice(METHODS)
        status = r.choice(STATUSES)
        path = self._fill(r.choice(PATHS))
        streamed = path.endswith("/stream") or "completions" in path
        query = self._fill(r.choice(QUERIES)) if r.random() < 0.45 else None
        latency = int(r.lognormvariate(3.4, 1.1)) + (1500 if streamed else 0)
        created = self.base + timedelta(milliseconds=seq * 7 + r.randrange(5))
        return {
            "tenant_id": r.choices(self.tenants, self.tenant_weights)[0],
            "user_id": str(r.randrange(1, 5000)),
            "agent_id": r.choice(self.agents) if r.random() < 0.85 else None,
            "method": method,
            "path": path,
            "query_string": query,
            "status_code": status,
            "latency_ms": latency,
            "request_size_bytes": r.randrange(20, 8000) if method in ("POST", "PUT", "PATCH") else None,
            "response_size_bytes": None if streamed or status == 204 else r.randrange(40, 60_000),
            "ip_address": r.choice(self.ips),
            "user_agent": r.choice(USER_AGENTS),
            "trace_id": f"{tag}{seq:024x}",
            "error_code": ERROR_CODES.get(status),
            "source": r.choice(SOURCES),
            "created_at": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }

    def reshape(self, ev: dict) -> dict:
        """The native event as the chosen variants spell it (the same call, other gateway's bytes)."""
        r, v = self.rng, self.variants
        if "numeric-ids" in v:
            ev["tenant_id"], ev["user_id"] = int(ev["tenant_id"]), int(ev["user_id"])
        if "mixed-case" in v:
            ev["method"] = r.choice(_CASES)(ev["method"])
        if "offset-time" in v:
            when = datetime.fromisoformat(ev["created_at"]).astimezone(_KST)
            ev["created_at"] = when.isoformat(timespec="milliseconds")
        if "secrets" in v:
            template = r.choice(SECRET_QUERIES) if r.random() < 0.2 else r.choice(PLAIN_QUERIES)
            ev["query_string"] = self._fill(template) if template in SECRET_QUERIES or r.random() < 0.5 else None
        if "null-sizes" in v and (ev["method"].upper() == "GET" or r.random() < 0.3):
            ev["request_size_bytes"] = None
        if "extra-fields" in v:
            ev["route_id"] = f"route-{r.randrange(12)}"
            ev["retry_count"] = r.choice((0, 0, 0, 1))
        if "kong-weight" in v and self.fmt == "native":  # Kong's own log object carries these already
            ev |= self.kong_ignored(ev)
        return ev

    def make(self, tag: str, seq: int) -> tuple[bytes, bytes]:
        """(key, value): keyed by tenant, as docs/architecture.md partitions calls."""
        ev = self.event(tag, seq)
        key = ev["tenant_id"].encode()
        ev = self.reshape(ev) if self.variants else ev
        if self.fmt == "seed-dto":
            ev = self.as_seed_dto(ev)
        elif self.fmt == "kong":
            ev = self.as_kong(ev)
        return key, orjson.dumps(ev)

    @staticmethod
    def as_seed_dto(ev: dict) -> dict:
        """Jackson's output for seed 003's ApiCallHistoryRequest: declared order, nulls kept, no time."""
        camel = {"".join(w.capitalize() if i else w for i, w in enumerate(k.split("_"))): v for k, v in ev.items()}
        return {k: camel.get(k) for k in _DTO_ORDER}

    @staticmethod
    def kong_ignored(ev: dict) -> dict:
        """What `as_kong` adds around the fields the rules read, under names the native event does not use."""
        uri = ev["path"] + (f"?{ev['query_string']}" if ev["query_string"] else "")
        return {
            "route": {"id": "78f79740-c410-4fd9-a998-d0a60a99dc9b", "paths": ["/api"], "protocols": ["https"],
                      "strip_path": False, "name": "aura-api"},
            "workspace": "54baa5a9-23d6-41e0-9c9a-02434b010b25",
            "tries": [{"balancer_latency": 0, "port": 8080, "ip": "10.0.3.4"}],
            "upstream_uri": uri,
            "url": f"https://gateway.example.com{uri}",
            "upstream": "upstream",
            "latencies": {"kong": 1, "proxy": max(0, ev["latency_ms"] - 2), "receive": 1},
            "service": {"host": "aura.internal", "id": "fb4eecf8-dec2-40ef-b779-16de7e2384c7", "protocol": "http",
                        "port": 8080, "name": "aura"},
            "headers": {"host": "gateway.example.com", "accept": "*/*", "content-type": "application/json",
                        "connection": "close", "via": "1.1 kong/3.8.0.0-enterprise-edition"},
        }

    def as_kong(self, ev: dict) -> dict:
        """Kong's log object for the same call (trace id in a W3C traceparent, as Kong's OpenTelemetry plugin
        propagates it; tenant, user, agent and source in the seed's headers)."""
        r = self.rng
        path = ev["path"] + (f"?{ev['query_string']}" if ev["query_string"] else "")
        created = datetime.fromisoformat(ev["created_at"])
        headers = {"host": "gateway.example.com", "user-agent": ev["user_agent"], "accept": "*/*",
                   "x-tenant-id": str(ev["tenant_id"]), "x-user-id": str(ev["user_id"]),
                   "x-dwp-source": ev["source"], "traceparent": f"00-{ev['trace_id']}-{r.getrandbits(64):016x}-01"}
        if ev["agent_id"]:
            headers["x-agent-id"] = ev["agent_id"]
        # Kong's sizes count the whole message, headers included, so it always has one.
        parsed: dict = {}
        for key, value in parse_qsl(ev["query_string"] or "", keep_blank_values=True):
            parsed[key] = [*parsed[key], value] if isinstance(parsed.get(key), list) else (
                [parsed[key], value] if key in parsed else value)
        request = {"headers": headers, "uri": path, "size": 180 + (ev["request_size_bytes"] or 0),
                   "method": ev["method"], "querystring": parsed, "url": f"https://gateway.example.com{path}"}
        response = {"size": 220 + (ev["response_size_bytes"] or 0), "status": ev["status_code"],
                    "headers": {"content-type": "application/json", "connection": "close",
                                "via": "1.1 kong/3.8.0.0-enterprise-edition"}}
        return {
            "response": response,
            "route": {"id": "78f79740-c410-4fd9-a998-d0a60a99dc9b", "paths": ["/api"], "protocols": ["https"],
                      "strip_path": False, "name": "aura-api"},
            "workspace": "54baa5a9-23d6-41e0-9c9a-02434b010b25",
            "tries": [{"balancer_latency": 0, "port": 8080, "ip": "10.0.3.4"}],
            "client_ip": ev["ip_address"],
            "request": request,
            "upstream_uri": path,
            "started_at": int(created.timestamp() * 1000),
            "source": "upstream",
            "latencies": {"kong": 1, "proxy": max(0, ev["latency_ms"] - 2), "request": ev["latency_ms"], "receive": 1},
            "service": {"host": "aura.internal", "id": "fb4eecf8-dec2-40ef-b779-16de7e2384c7", "protocol": "http",
                        "port": 8080, "name": "aura"},
        }

    def batch(self, tag: str, n: int) -> list[tuple[bytes, bytes]]:
        return [self.make(tag, i) for i in range(n)]


def new_tag() -> str:
    return secrets.token_hex(4)


if __name__ == "__main__":
    import sys
    f = EventFactory(variants=SHAPES[sys.argv[1] if len(sys.argv) > 1 else "native"])
    evs = f.batch(new_tag(), 20000)
    sizes = sorted(len(v) for _, v in evs)
    print(f"n={len(sizes)} mean={sum(sizes) / len(sizes):.0f} p5={sizes[len(sizes) // 20]} "
          f"p50={sizes[len(sizes) // 2]} p95={sizes[len(sizes) * 19 // 20]} min={sizes[0]} max={sizes[-1]}")
    print(evs[0][1].decode())
    print(evs[5][1].decode())
