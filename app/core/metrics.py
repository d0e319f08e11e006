"""Prometheus metrics of one app instance (a registry of its own, so several apps can coexist).

Under `parley serve --workers N` every worker writes its values to prometheus-client's multiprocess
files (`PROMETHEUS_MULTIPROC_DIR`, set by the supervisor), and a scrape of any worker reads all of
them: counters and histograms are summed over every worker that ever ran, the connected-sockets
gauge over the live ones only (the supervisor drops a dead worker's files).
"""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
HANDLER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
FLUSH_WITHIN = 1.0
"""Seconds at most between a socket event and its figures reaching the Prometheus series."""


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
            buckets=HANDLER_BUCKETS,
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
            "Chat messages written per batch (group commit)",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )
        self.chat_batches = Counter(
            "parley_chat_write_batches_total",
            "Chat batches written, by way: at_once (PostgreSQL's one statement, SQLite's one hand-over)"
            " or transaction",
            ["way"],
            registry=self.registry,
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

        self._flushes: list[Callable[[], None]] = []

    def event_figures(self, counted: Iterable[str], timed: Iterable[str]) -> EventFigures:
        """Where socket events are counted (by the names `counted`) and their handlers timed (by
        the names `timed`): `EventFigures`."""
        figures = EventFigures(self, counted, timed)
        self._flushes.append(figures.flush)
        return figures

    def flush(self) -> None:
        """Bring every series up to date with what was gathered outside it (`EventFigures`)."""
        for flush in self._flushes:
            flush()

    def render(self) -> bytes:
        """The text exposition: of this instance, or of every worker of this node."""
        self.flush()
        directory = os.environ.get(MULTIPROCESS_DIR)
        if not directory:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker, directory)  # type: ignore[no-untyped-call]
        return generate_latest(every_worker)


class EventFigures:
    """Socket events counted (`parley_socket_events_in_total`) and their handlers timed
    (`parley_socket_handler_seconds`) in plain numbers, added to those series in one go.

    prometheus-client takes a lock for every increment, and under `--workers N` writes a file
    shared with the scraping worker: an event cost three of them. Here it costs two additions; the
    series catch up whenever this process renders its metrics (`Metrics.render`), stops
    (`Metrics.flush`), or at the latest FLUSH_WITHIN seconds after the first figure they lack, so
    a scrape of another worker is at most that late.

    The histogram is brought up to date through its buckets and sum (prometheus-client's
    `Histogram._buckets` and `_sum`), as many `observe` calls would; its test compares the two.
    """

    def __init__(self, metrics: Metrics, counted: Iterable[str], timed: Iterable[str]) -> None:
        self._counted = {name: metrics.events_in.labels(name) for name in counted}
        self._timed = {name: metrics.handler_latency.labels(name) for name in timed}
        self._counts = dict.fromkeys(self._counted, 0)
        self._times = {name: [0.0] * (len(HANDLER_BUCKETS) + 2) for name in self._timed}
        """Per event: the sum of its handlers' times, then a count per bucket (the last: +Inf)."""
        self._flush_timer: asyncio.TimerHandle | None = None

    def count(self, event: str) -> None:
        self._counts[event] += 1
        if self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(FLUSH_WITHIN, self.flush)

    def time(self, event: str, seconds: float) -> None:
        times = self._times[event]
        times[0] += seconds
        times[bisect_left(HANDLER_BUCKETS, seconds) + 1] += 1

    def flush(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        for event, count in self._counts.items():
            if count:
                self._counted[event].inc(count)
                self._counts[event] = 0
        for event, times in self._times.items():
            if any(times[1:]):
                series = self._timed[event]
                series._sum.inc(times[0])  # see the class docstring
                for bucket, observed in enumerate(times[1:]):
                    if observed:
                        series._buckets[bucket].inc(observed)
                times[:] = [0.0] * len(times)
