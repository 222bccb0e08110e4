"""Statistics over one series: linear trend, forecast, time to a threshold and robust anomaly detection.

Pure functions of numpy arrays (times in Unix seconds), so the API, the charts and the tests share them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

DAY = 86400.0
MAD_SCALE = 1.4826  # makes the median absolute deviation comparable to a standard deviation


@dataclass(frozen=True)
class Trend:
    """A least-squares line: slope per day with its 95 % confidence interval."""

    slope_per_day: float
    low_per_day: float
    high_per_day: float
    intercept: float  # value at ``origin``
    origin: float
    r2: float
    points: int

    def at(self, t: float) -> float:
        return self.intercept + self.slope_per_day * (t - self.origin) / DAY

    def as_dict(self) -> dict:
        return {
            "slope_per_day": self.slope_per_day,
            "confidence_95": [self.low_per_day, self.high_per_day],
            "r2": self.r2,
            "points": self.points,
        }


def _clean(ts: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(ts) & np.isfinite(values)
    return np.asarray(ts, float)[ok], np.asarray(values, float)[ok]


def linear_trend(ts: np.ndarray, values: np.ndarray) -> Trend | None:
    """Fit a line; None with fewer than three points or no spread in time."""
    ts, values = _clean(ts, values)
    if len(ts) < 3 or ts[-1] == ts[0]:
        return None
    origin = float(ts[0])
    fit = stats.linregress(ts - origin, values)
    t_crit = stats.t.ppf(0.975, len(ts) - 2)
    slope, err = fit.slope * DAY, fit.stderr * DAY
    return Trend(
        slope,
        slope - t_crit * err,
        slope + t_crit * err,
        float(fit.intercept),
        origin,
        float(fit.rvalue**2),
        len(ts),
    )


def time_to_threshold(trend: Trend, now: float, threshold: float) -> float | None:
    """Return seconds until the trend line reaches a threshold, like predict_linear.

    0 when the value is already past it in the direction it moves; None when it does not move.
    """
    current, slope = trend.at(now), trend.slope_per_day
    if slope == 0:
        return None
    if (slope > 0 and current >= threshold) or (slope < 0 and current <= threshold):
        return 0.0
    return (threshold - current) / slope * DAY


def daily_seasonality(ts: np.ndarray, values: np.ndarray, step: float) -> float | None:
    """Return the autocorrelation at a lag of one day, or None when the series spans under two days."""
    ts, values = _clean(ts, values)
    lag = round(DAY / step)
    if len(values) < 2 * lag or lag < 2:
        return None
    a, b = values[:-lag], values[lag:]
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


@dataclass(frozen=True)
class Forecast:
    method: str
    reason: str
    times: np.ndarray
    values: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def as_dict(self) -> dict:
        return {
            "method": self.method,
            "reason": self.reason,
            "points": [
                [float(t), float(v), float(lo), float(hi)]
                for t, v, lo, hi in zip(self.times, self.values, self.low, self.high)
            ],
        }


def forecast(ts: np.ndarray, values: np.ndarray, horizon: float, step: float) -> Forecast | None:
    """Forecast ``horizon`` seconds ahead at ``step``: Holt-Winters for daily shape, a line otherwise.

    The band is a 95 % interval: from the residuals of the fitted model, widening with the distance
    for the line.
    """
    ts, values = _clean(ts, values)
    if len(ts) < 3:
        return None
    steps = max(1, int(horizon // step))
    future = ts[-1] + step * np.arange(1, steps + 1)
    season = daily_seasonality(ts, values, step)
    if season is not None and season > 0.3:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        grid = np.arange(ts[0], ts[-1] + step / 2, step)
        regular = np.interp(grid, ts, values)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ExponentialSmoothing(
                regular, trend="add", seasonal="add", seasonal_periods=round(DAY / step)
            ).fit()
        predicted = model.forecast(steps)
        spread = 1.96 * float(np.std(model.resid))
        reason = f"the series repeats daily (autocorrelation {season:.2f} at a one-day lag)"
        return Forecast("holt-winters", reason, future, predicted, predicted - spread, predicted + spread)
    trend = linear_trend(ts, values)
    if trend is None:
        return None
    predicted = np.array([trend.at(t) for t in future])
    residual = values - np.array([trend.at(t) for t in ts])
    sigma = float(np.std(residual, ddof=2)) if len(ts) > 2 else 0.0
    n, mean_t = len(ts), float(ts.mean())
    sxx = float(((ts - mean_t) ** 2).sum()) or 1.0
    spread = 1.96 * sigma * np.sqrt(1 + 1 / n + (future - mean_t) ** 2 / sxx)
    if season is None:
        reason = "less than two days of history: no daily shape can be told apart, so a straight line"
    else:
        reason = f"no daily shape (autocorrelation {season:.2f} at a one-day lag), so a straight line"
    return Forecast("linear", reason, future, predicted, predicted - spread, predicted + spread)


def anomalies(values: np.ndarray, window: int = 31, threshold: float = 4.0) -> np.ndarray:
    """Return the indices of points far from their rolling median, in robust standard deviations.

    A point is anomalous when |value - median| > threshold x 1.4826 x MAD of the centred window;
    a flat window (MAD 0) only flags points that differ from it by more than a hair.
    """
    values = np.asarray(values, float)
    n = len(values)
    if n < 5:
        return np.zeros(0, dtype=int)
    half = max(2, window // 2)
    padded = np.pad(values, half, constant_values=np.nan)  # shorter windows at the ends, not repeats
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    median = np.nanmedian(windows, axis=1)
    mad = np.nanmedian(np.abs(windows - median[:, None]), axis=1) * MAD_SCALE
    floor = 1e-9 * np.maximum(1.0, np.abs(median))
    score = np.abs(values - median) / np.maximum(mad, floor)
    return np.flatnonzero(np.isfinite(values) & (score > threshold))
