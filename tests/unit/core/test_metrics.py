"""Socket events counted and timed in plain numbers reach their Prometheus series as one `inc`
and `observe` per event would: at a render, at a flush, and by themselves within FLUSH_WITHIN."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.core import metrics as metrics_module
from app.core.metrics import HANDLER_BUCKETS, Metrics

TIMES = [0.0004, 0.001, 0.003, 0.003, 0.07, 0.9, 2.5, 7.0]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: bytes, family: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for metric in text_string_to_metric_families(text.decode())
        if metric.name == family
        for sample in metric.samples
        if not sample.name.endswith("_created")
    }


async def test_a_render_shows_what_observe_and_inc_would_have_shown() -> None:
    metrics = Metrics()
    figures = metrics.event_figures(["bench:ping", "unknown"], ["bench:ping"])
    reference = CollectorRegistry()
    observed = Histogram(
        "parley_socket_handler_seconds", "x", ["event"], registry=reference, buckets=HANDLER_BUCKETS
    )
    for seconds in TIMES:
        figures.count("bench:ping")
        figures.time("bench:ping", seconds)
        observed.labels("bench:ping").observe(seconds)
    figures.count("unknown")

    rendered = metrics.render()

    family = "parley_socket_handler_seconds"
    assert samples(rendered, family) == samples(generate_latest(reference), family)
    counted = samples(rendered, "parley_socket_events_in")
    assert counted[("parley_socket_events_in_total", (("event", "bench:ping"),))] == len(TIMES)
    assert counted[("parley_socket_events_in_total", (("event", "unknown"),))] == 1
    assert samples(metrics.render(), "parley_socket_events_in") == counted, "a figure is added once"


async def test_figures_reach_the_series_by_themselves_after_the_flush_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics_module, "FLUSH_WITHIN", 0.0)
    metrics = Metrics()
    figures = metrics.event_figures(["bench:ping"], ["bench:ping"])
    series = metrics.events_in.labels("bench:ping")
    added: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    monkeypatch.setattr(series, "inc", added.set_result)

    figures.count("bench:ping")
    figures.count("bench:ping")

    assert not added.done(), "not in the event's own step"
    assert await asyncio.wait_for(added, 1) == 2
