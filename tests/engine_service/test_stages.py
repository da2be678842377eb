"""The stage clock: per-stage histograms of a batch's time, as Prometheus reads them."""

from prometheus_client import CollectorRegistry, generate_latest

from bench.engine_service import histogram, summary
from engine import stages
from engine.stages import BOUNDS_NS, StageClock


def test_a_lap_counts_the_time_since_the_previous_mark_into_its_stage() -> None:
    clock = StageClock()
    clock.start()
    clock.lap(stages.MATCH)
    clock.lap(stages.COMMIT)
    assert sum(clock.counts[stages.MATCH]) == 1
    assert sum(clock.counts[stages.COMMIT]) == 1
    assert sum(clock.counts[stages.READ]) == 0
    assert clock.sums_ns[stages.COMMIT] == clock.last_ns >= 0


def test_the_histogram_has_prometheus_buckets_per_stage() -> None:
    clock = StageClock()
    clock.observe(stages.MATCH, 7_000)
    clock.observe(stages.MATCH, BOUNDS_NS[-1] + 1)
    registry = CollectorRegistry()
    registry.register(clock)
    text = generate_latest(registry).decode()
    assert 'engine_stage_seconds_bucket{le="5e-06",stage="match"} 0.0' in text
    assert 'engine_stage_seconds_bucket{le="1e-05",stage="match"} 1.0' in text
    assert 'engine_stage_seconds_bucket{le="0.1",stage="match"} 1.0' in text
    assert 'engine_stage_seconds_bucket{le="+Inf",stage="match"} 2.0' in text
    assert 'engine_stage_seconds_count{stage="match"} 2.0' in text
    assert 'engine_stage_seconds_count{stage="read"} 0.0' in text
    assert f'engine_stage_seconds_sum{{stage="match"}} {(7_000 + BOUNDS_NS[-1] + 1) / 1e9}' in text


def test_the_benchmark_reads_counts_means_and_quantiles_back_from_the_text() -> None:
    clock = StageClock()
    for micros in (*[20] * 98, 300, 300):  # 98 in (10, 25] µs, 2 in (250, 500] µs
        clock.observe(stages.ENCODE, micros * 1000)
    registry = CollectorRegistry()
    registry.register(clock)
    text = generate_latest(registry).decode()
    buckets, total = histogram(text, "engine_stage_seconds", {"stage": "encode"})
    assert summary(buckets, total, 1e6) == {
        "count": 100,
        "mean": 25.6,
        "p50": round(10 + 15 * 50 / 98, 1),  # within (10, 25] µs, as histogram_quantile
        "p99": 375.0,  # halfway through the 2 in (250, 500] µs
    }
    assert summary(*histogram(text, "engine_stage_seconds", {"stage": "read"}), 1e6) == {"count": 0}
