"""The files compose users get for Prometheus and Grafana: every metric they query is one streamdesk exports,
each of seed 000's alerts has its Prometheus rule, and the services start only under the `monitoring` profile,
listening on loopback, with files that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import pipeline.metrics  # noqa: F401 - registers every metric the project exports
from api.alerts import RULES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NOT_METRICS = {"sum", "max", "min", "by", "rate", "delta", "increase", "histogram_quantile", "le", "and", "or",
               "without", "on", "avg", "count", "topk"}


def _exported() -> set[str]:
    names = set()
    for metric in REGISTRY.collect():
        names.add(metric.name)
        names |= {s.name for s in metric.samples}
        if metric.type in ("histogram", "counter"):
            names |= {f"{metric.name}{suffix}" for suffix in ("_bucket", "_sum", "_count", "_total", "_created")}
    return names


def _metrics_in(expr: str) -> set[str]:
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_ranges))
    return {w for w in words - NOT_METRICS if w.startswith("streamdesk_") or w == "up"}


def _rules() -> list[dict]:
    doc = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_every_rule_queries_metrics_streamdesk_exports():
    exported = _exported() | {"up"}
    for rule in _rules():
        used = _metrics_in(rule["expr"])
        assert used, rule["alert"]
        assert used <= exported, (rule["alert"], used - exported)


def test_each_seed_000_alert_has_its_prometheus_rule():
    forwarded = {m for rule in _rules() for m in re.findall(r'alert="([a-z_]+)"', rule["expr"])}
    assert forwarded == set(RULES)


def test_the_dashboard_queries_exported_metrics_through_the_provisioned_datasource():
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "streamdesk.json").read_text())
    source = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = source["datasources"][0]["uid"]
    exported = _exported()
    assert len(dashboard["panels"]) >= 8
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid
        for target in panel["targets"]:
            used = _metrics_in(target["expr"])
            assert used and used <= exported, (panel["title"], used - exported)


def test_prometheus_and_grafana_run_only_under_the_monitoring_profile_on_loopback():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in ("prometheus", "grafana"):
        service = services[name]
        assert service["profiles"] == ["monitoring"]
        assert all(str(p).startswith("127.0.0.1:") for p in service["ports"])
        for volume in service["volumes"]:
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert prometheus["scrape_configs"][0]["static_configs"][0]["targets"] == ["api:8000"]
    assert all("profiles" not in services[name] for name in ("kafka", "worker", "api"))


def test_promtool_accepts_the_config_and_the_rules_and_their_unit_tests_pass(tmp_path):
    """Prometheus's own checker on the files (Debian's `prometheus` package; `.ci/run` installs it)."""
    import os
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("STREAMDESK_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool is not installed (apt-get install prometheus)")
        pytest.skip("no promtool on this machine")
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["rule_files"] = [str(DEPLOY / "prometheus" / "rules.yml")]  # the compose mount's path, here
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    for args in (["check", "config", str(tmp_path / "prometheus.yml")],
                 ["check", "rules", str(DEPLOY / "prometheus" / "rules.yml")],
                 ["test", "rules", str(DEPLOY / "prometheus" / "rules_test.yml")]):
        done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
