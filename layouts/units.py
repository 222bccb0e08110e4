"""Display units: scale base-unit values (bytes, seconds, ratios) into readable numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_SI = ("", "k", "M", "G", "T")
# SI units in Prometheus' naming, by their symbol: shown with a prefix that fits (3 mV, 1.5 kJ, 2.4 GHz).
SI_SYMBOLS = {
    "joules": "J",
    "volts": "V",
    "amperes": "A",
    "watts": "W",
    "hertz": "Hz",
    "meters": "m",
    "grams": "g",
    "pascals": "Pa",
    "newtons": "N",
    "ohms": "Ω",
    "lumens": "lm",
    "liters": "L",
}
# Units shown with their symbol, never scaled (a temperature in kilo-degrees reads wrong).
SYMBOLS = {"celsius": "°C", "fahrenheit": "°F", "kelvin": "K", "degrees": "°"}
_SMALL = ((1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))


@dataclass(frozen=True)
class Scale:
    """Divide values by ``factor`` and show them with ``suffix`` (or ``prefix``)."""

    factor: float
    suffix: str
    prefix: str = ""

    def apply(self, value: float) -> float:
        return value / self.factor


def scale_for(unit: str | None, magnitude: float) -> Scale:
    """Pick the scale that shows numbers around ``magnitude`` best for a unit."""
    magnitude = abs(magnitude) if magnitude and math.isfinite(magnitude) else 0.0
    if unit == "ratio":
        return Scale(0.01, "%")
    if unit == "percent":
        return Scale(1, "%")
    if unit in ("bytes", "bytes_per_second"):
        power = 0 if magnitude < 1024 else min(len(_BINARY) - 1, int(math.log(magnitude, 1024)))
        return Scale(1024**power, " " + _BINARY[power] + ("/s" if unit == "bytes_per_second" else ""))
    if unit == "seconds":
        if magnitude == 0 or magnitude >= 1:
            for size, name in ((86400, "d"), (3600, "h"), (60, "min")):
                if magnitude >= 2 * size:
                    return Scale(size, " " + name)
            return Scale(1, " s")
        if magnitude >= 1e-3:
            return Scale(1e-3, " ms")
        return Scale(1e-6, " µs")
    if unit == "per_second":
        return _si(magnitude, "/s")
    if unit == "currency":
        return Scale(1, "", "$")
    if unit in SYMBOLS:
        return Scale(1, " " + SYMBOLS[unit])
    if unit in SI_SYMBOLS:
        return _si_prefixed(magnitude, SI_SYMBOLS[unit])
    if unit in (None, "none", "count"):
        return _si(magnitude, "")
    return _si(magnitude, " " + unit.replace("_", " "))  # any other unit, as it is: 12.3k requests


def _si_prefixed(magnitude: float, symbol: str) -> Scale:
    """Scale with an SI prefix either way: milli- to tera-."""
    if 0 < magnitude < 1:
        for factor, prefix in _SMALL:
            if magnitude >= factor:
                return Scale(factor, f" {prefix}{symbol}")
        return Scale(_SMALL[-1][0], f" {_SMALL[-1][1]}{symbol}")
    power = 0 if magnitude < 1000 else min(len(_SI) - 1, int(math.log10(magnitude) // 3))
    return Scale(1000**power, f" {_SI[power]}{symbol}")


def _si(magnitude: float, suffix: str) -> Scale:
    power = 0 if magnitude < 1000 else min(len(_SI) - 1, int(math.log10(magnitude) // 3))
    return Scale(1000**power, (_SI[power] + suffix) if power or suffix else "")


def aggregated_unit(unit: str | None, aggregation: str) -> str:
    """The unit of a metric's aggregation over a window: a rate is per second, a count has none."""
    if aggregation == "count":
        return "none"
    if aggregation != "rate":
        return unit or "none"
    if unit == "bytes":
        return "bytes_per_second"
    if unit in (None, "none", "count"):
        return "per_second"
    return f"{unit}_per_second"


def format_value(value: float | None, unit: str | None, digits: int = 3) -> str:
    """Return a value as a person reads it: 1536 bytes -> '1.5 KiB', 0.4213 ratio -> '42.1%'."""
    if value is None or not math.isfinite(value):
        return "–"
    scale = scale_for(unit, value)
    scaled = scale.apply(value)
    if unit == "currency":
        return f"{'-' if scaled < 0 else ''}${abs(scaled):,.2f}"
    text = f"{scaled:.{digits}g}" if abs(scaled) < 10**digits else f"{scaled:,.0f}"
    if "e" in text:
        text = f"{scaled:.2f}"
    return f"{scale.prefix}{text}{scale.suffix}"


def scale_values(values, unit: str | None) -> tuple[Scale, object]:
    """Scale an array (or frame) of values for one axis, choosing the scale from its largest value."""
    try:
        magnitude = float(abs(values).max().max()) if hasattr(values, "max") else 0.0
    except (TypeError, ValueError):
        magnitude = 0.0
    scale = scale_for(unit, magnitude)
    return scale, values / scale.factor


def format_time(seconds: float | None) -> str:
    """Return a Unix time as people read it on the pages: 2026-11-25 17:50:13 UTC ("–" when unset)."""
    if seconds is None:
        return "–"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
