"""Prometheus metrics of the profile service, on a registry the app factory owns."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ProfileMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.applied = Counter("touchpoint_profile_events_applied_total",
                               "Events and decisions applied to profiles.", ["topic"], registry=r)
        self.duplicates = Counter("touchpoint_profile_duplicates_skipped_total",
                                  "Redelivered events recognised and skipped.", ["topic"],
                                  registry=r)
        self.refused = Counter("touchpoint_profile_refused_erased_total",
                               "Events for erased people, refused.", ["topic"], registry=r)
        self.dead_lettered = Counter("touchpoint_profile_dead_lettered_total",
                                     "Undecodable records sent to the dead-letter topic.",
                                     ["topic"], registry=r)
        self.links = Counter("touchpoint_profile_identity_links_total",
                             "Anonymous ids linked to customers.", ["result"], registry=r)
        self.commit_failures = Counter("touchpoint_profile_commit_failures_total",
                                       "Offset commits refused (rebalance); records redelivered.",
                                       registry=r)
        self.poll_errors = Counter("touchpoint_profile_poll_errors_total",
                                   "Polls that failed (group membership, coordinator) and were "
                                   "retried.", registry=r)
        self.store_retries = Counter("touchpoint_profile_batch_retries_total",
                                     "Batches retried after Redis or Kafka was unavailable.",
                                     registry=r)
        self.lag = Gauge("touchpoint_profile_consumer_lag",
                         "Records behind the end of each assigned partition.",
                         ["topic", "partition"], registry=r,
                         multiprocess_mode="mostrecent")
        self.batch_seconds = Histogram(
            "touchpoint_profile_batch_seconds", "Time to apply one polled batch.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r)
