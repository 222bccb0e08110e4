"""A panel's view: its window aligned to its step, the key of its answer, the answer and patches.

The key holds everything the figure depends on: the dashboard and panel (with the variables'
values), the window, the theme, the caller's access levels, the newest sample of the panel's
series, why its collector is failing if it is, and the alert changes. So an answer is shared only
by viewers who would have computed the same figure, and a new sample makes a new answer for
exactly the panels that show its series.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from dashboard_app.pages.answers import Answer, SharedAnswers, answer_of
from dashboard_app.pages.panels import Window, bucket_step, panel_metrics, panel_trouble, render_panel
from dashboard_app.pages.patches import figure_patch
from dashboard_app.sources.source import NotPermitted
from layouts.schema import Panel


def levels_of(source) -> tuple[str, ...]:
    """Return the access levels a caller reads, as a key: callers with the same ones share answers."""
    who = source.identity
    return ("*",) if who.sees_everything else tuple(sorted(who.access))


def newest(source, panel: Panel) -> float:
    """Return the time of the newest sample of any series a panel shows (0: none, or none it may read)."""
    try:
        return max((source.newest(name) or 0 for name in panel_metrics(panel)), default=0)
    except NotPermitted:
        return 0


def aligned(window: Window, step: float, relative: bool) -> Window:
    """Return a relative window moved to end on its step's next edge, so viewers share its buckets."""
    if not relative:
        return window
    end = math.ceil(window.end / step) * step
    return Window(end - window.span, end)


@dataclass(frozen=True)
class PanelView:
    """What one viewer asks of one panel; ``key`` names its answer."""

    panel: Panel
    window: Window
    view: tuple
    key: tuple


class PanelViews:
    """Answers of dashboard panels, shared by every viewer who asks at the same data version."""

    def __init__(
        self,
        cache: SharedAnswers,
        points: int,
        episodes: Callable[[str, float, float], list[dict]],
        alert_changes: Callable[[], int],
        trouble: Callable[[str], str | None] | None,
    ):
        self.cache = cache
        self.points = points
        self.episodes = episodes
        self.alert_changes = alert_changes
        self.trouble = trouble

    def view(
        self,
        source,
        dashboard_id: str,
        panel: Panel,
        chosen: dict[str, str],
        theme: str,
        window: Window,
        relative: bool,
    ) -> PanelView:
        """Return the view of one panel (``panel`` already narrowed by the variables in ``chosen``)."""
        step, _ = bucket_step(source, panel, window.span, self.points)
        window = aligned(window, step, relative)
        view = (dashboard_id, panel.id, tuple(sorted(chosen.items())), theme, levels_of(source))
        version = (newest(source, panel), panel_trouble(panel, self.trouble), self.alert_changes())
        return PanelView(panel, window, view, (*view, window.start, window.end, *version))

    def answer(self, source, pv: PanelView) -> Answer:
        """Return the panel's answer, computed by the first viewer who asks for this key."""
        return self.cache.get(("figure", pv.key), lambda: self._compute(source, pv))

    def patch(self, held: str | None, new: Answer) -> bytes | None:
        """Return the patch from the answer a viewer holds to ``new``, when it can be proven."""
        old = self.cache.by_token(held)
        if old is None or old.view != new.view:
            return None  # unknown, evicted, or another view's: the whole figure
        patch = self.cache.get(("patch", old.token, new.token), lambda: figure_patch(old.plain, new.plain))
        return patch if patch is not None and len(patch) < len(new.json) else None

    def _compute(self, source, pv: PanelView) -> Answer:
        end = pv.window.end

        def episodes(metric: str, start: float, stop: float) -> list[dict]:
            # An open firing period reaches the window's edge, so the figure is one per version.
            return [
                {**e, "until": end} if e.get("resolved_at") is None else e
                for e in self.episodes(metric, start, stop)
            ]

        theme = pv.view[3]
        figure = render_panel(source, pv.panel, pv.window, theme, self.points, episodes, self.trouble)
        return answer_of(pv.view, figure)
