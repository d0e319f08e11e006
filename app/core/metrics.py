"""Prometheus metrics of one app instance (a registry of its own, so several apps can coexist).

Under `parley serve --workers N` every worker writes its values to prometheus-client's multiprocess
files (`PROMETHEUS_MULTIPROC_DIR`, set by the supervisor), and a scrape of any worker reads all of
them: counters and histograms are summed over every worker that ever ran, the connected-sockets
gauge over the live ones only (the supervisor drops a dead worker's files).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.sockets_connected = Gauge(
            "parley_sockets_connected",
            "Sockets connected to this node",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.events_in = Counter(
            "parley_socket_events_in_total", "Client events received", ["event"], registry=self.registry
        )
        self.events_out = Counter(
            "parley_socket_events_out_total", "Server events emitted", ["event"], registry=self.registry
        )
        self.handler_latency = Histogram(
            "parley_socket_handler_seconds",
            "Socket handler latency",
            ["event"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.errors = Counter(
            "parley_errors_total", "Errors answered, by code", ["code"], registry=self.registry
        )
        self.transport_faults = Counter(
            "parley_transport_faults_total",
            "What the transport refused from clients, by kind (malformed, oversized, out_of_order, "
            "deadline, backlog)",
            ["kind"],
            registry=self.registry,
        )
        self.messages_stored = Counter(
            "parley_messages_stored_total", "Chat messages stored", registry=self.registry
        )
        self.chat_batch_size = Histogram(
            "parley_chat_write_batch_size",
            "Chat messages written per transaction (group commit)",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )
        self.fanout_received = Counter(
            "parley_fanout_messages_received_total",
            "Fan-out messages this node read (and decoded) from Redis",
            registry=self.registry,
        )
        self.sync_recoveries = Counter(
            "parley_sync_recoveries_total",
            "chat:sync answers, by outcome",
            ["recovered"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The text exposition: of this instance, or of every worker of this node."""
        directory = os.environ.get(MULTIPROCESS_DIR)
        if not directory:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker, directory)  # type: ignore[no-untyped-call]
        return generate_latest(every_worker)
