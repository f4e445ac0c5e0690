"""Prometheus metrics (prometheus-client). Request metrics are counted in the API process; job and model
metrics are read at scrape time from the coordinator and the store, so they also cover jobs run by
``rq worker`` processes elsewhere."""

from __future__ import annotations

import logging

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)


class Metrics:
    def __init__(self, rt):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "beal_http_requests", "HTTP requests by endpoint and status", ["endpoint", "status"], registry=self.registry
        )
        self.predict_seconds = Histogram("beal_predict_seconds", "Time to answer /predict", registry=self.registry)
        self.predictions = Counter(
            "beal_predictions_returned", "Predictions returned by /predict", registry=self.registry
        )
        self.skipped_tasks = Counter(
            "beal_predict_skipped_tasks", "Tasks /predict could not score (no or bad text)", registry=self.registry
        )
        self.registry.register(_StoreCollector(rt))


class _StoreCollector:
    def __init__(self, rt):
        self.rt = rt

    def collect(self):
        jobs = GaugeMetricFamily("beal_jobs", "Projects by state of their latest training job", labels=["state"])
        counts: dict[str, int] = {}
        try:  # Redis may be away: the model metrics below are still worth a scrape
            for st in self.rt.coordinator.statuses().values():
                state = (st.get("current") or {}).get("state", "unknown")
                counts[state] = counts.get(state, 0) + 1
            counts["pending"] = sum(self.rt.coordinator.is_pending(p) for p in self.rt.store.projects())
        except redis.exceptions.RedisError as e:
            log.warning("/metrics: job states unavailable, Redis unreachable: %s", e)
            counts["unknown"] = counts.get("unknown", 0)
        for state, n in sorted(counts.items()):
            jobs.add_metric([state], n)
        yield jobs

        info = GaugeMetricFamily(
            "beal_model_info", "Current model version per project (value 1)", labels=["project", "version"]
        )
        train = GaugeMetricFamily("beal_training_seconds", "Training time of the current version", labels=["project"])
        score = GaugeMetricFamily(
            "beal_scoring_seconds", "Pool scoring time of the current version", labels=["project"]
        )
        pushed = GaugeMetricFamily(
            "beal_predictions_pushed", "Tasks scored and pushed for the current version", labels=["project"]
        )
        annotations = GaugeMetricFamily(
            "beal_training_annotations", "Annotations the current version was trained on", labels=["project"]
        )
        for p in self.rt.store.projects():
            v = self.rt.store.current(p)
            if v is None:
                continue
            meta = self.rt.store.metadata(p, v)
            info.add_metric([p, v], 1)
            train.add_metric([p], meta.get("train_seconds", 0.0))
            score.add_metric([p], meta.get("score_seconds", 0.0))
            pushed.add_metric([p], meta.get("n_pool", 0))
            annotations.add_metric([p], meta.get("n_annotations", 0))
        yield from (info, train, score, pushed, annotations)
