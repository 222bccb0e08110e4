"""Trend, forecast, time to threshold and anomalies on synthetic series with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from query.statistics import DAY, anomalies, daily_seasonality, forecast, linear_trend, time_to_threshold


def test_linear_trend_recovers_a_known_slope_with_its_interval():
    rng = np.random.default_rng(1)
    ts = np.arange(0, 3 * DAY, 300.0)
    values = 0.40 + 0.05 * ts / DAY + rng.normal(0, 0.01, len(ts))  # +5 points a day
    trend = linear_trend(ts, values)
    assert trend.slope_per_day == pytest.approx(0.05, abs=0.002)
    assert trend.low_per_day < 0.05 < trend.high_per_day
    assert trend.r2 > 0.9


def test_time_to_threshold_like_predict_linear():
    ts = np.arange(0, DAY, 600.0)
    trend = linear_trend(ts, 0.5 + 0.25 * ts / DAY)  # 50 % now, +25 points a day
    now = ts[-1]
    assert time_to_threshold(trend, now, 1.0) == pytest.approx((1.0 - trend.at(now)) / 0.25 * DAY, rel=1e-6)
    assert time_to_threshold(trend, now, 0.2) == 0.0  # already past it, moving away from below: reached
    flat = linear_trend(ts, np.full(len(ts), 0.5))
    assert time_to_threshold(flat, now, 1.0) is None


def test_a_daily_series_is_forecast_with_holt_winters_and_keeps_its_shape():
    step = 900.0
    ts = np.arange(0, 4 * DAY, step)
    shape = lambda t: 100 + 40 * np.sin(2 * np.pi * t / DAY)  # noqa: E731
    rng = np.random.default_rng(2)
    values = shape(ts) + rng.normal(0, 2, len(ts))
    assert daily_seasonality(ts, values, step) > 0.9
    result = forecast(ts, values, DAY / 2, step)
    assert result.method == "holt-winters" and "daily" in result.reason
    expected = shape(result.times)
    assert np.abs(result.values - expected).max() < 10
    assert np.all(result.low <= result.values) and np.all(result.values <= result.high)


def test_a_short_or_shapeless_series_gets_a_line_and_says_why():
    ts = np.arange(0, 3600.0, 60.0)
    result = forecast(ts, 2 + ts / 3600, 1800, 60)
    assert result.method == "linear" and "less than two days" in result.reason
    assert result.values[-1] == pytest.approx(2 + (ts[-1] + 1800) / 3600, rel=1e-6)
    assert result.high[-1] - result.low[-1] >= result.high[0] - result.low[0]  # widens with distance


def test_anomalies_find_injected_spikes_and_not_noise():
    rng = np.random.default_rng(3)
    values = 50 + rng.normal(0, 1, 2000)
    spikes = [150, 900, 1500]
    values[spikes] += [15, -12, 20]
    found = anomalies(values)
    assert set(spikes) <= set(found.tolist())
    assert len(found) <= len(spikes) + 2  # noise alone raises (almost) nothing at four robust sigmas


def test_a_flat_series_flags_only_real_departures():
    values = np.full(100, 7.0)
    values[40] = 9.0
    assert anomalies(values).tolist() == [40]
