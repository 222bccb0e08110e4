"""A panel's view: its window aligned to its step, the key of its answer, the answer and patches.

The key holds everything the figure depends on: the dashboard and panel (with the variables'
values), the window, the theme, the caller's access levels, the newest sample of the panel's
series, why its collector is failing if it is, and the alert changes. So an answer is shared only
by viewers who would have computed the same figure, and a new sample makes a new answer for
exactly the panels that show its series.

Views being watched are rendered ahead: right after a new sample (or the window's next edge) makes a
new answer, ``ahead`` computes it, and the patches to it from the answers viewers hold, once for all
of them, so no viewer's refresh waits for a render. The work each second is bounded by the views
watched, not by the viewers.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from dashboard_app.pages.answers import Answer, SharedAnswers, answer_of
from dashboard_app.pages.panels import Window, bucket_step, panel_metrics, panel_trouble, render_panel
from dashboard_app.pages.patches import figure_patch
from dashboard_app.sources.source import NotPermitted
from layouts.schema import Panel


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
class _Made:
    key: tuple
    token: str
    made: float  # time.monotonic()


@dataclass(frozen=True)
class PanelView:
    """What one viewer asks of one panel; ``key`` names its answer."""

    panel: Panel
    window: Window
    view: tuple
    key: tuple


AHEAD_EVERY = 0.2  # seconds between looks for new answers of watched views
WATCHED_FOR = 15.0  # seconds a view is rendered ahead after a viewer last asked for it (3 refreshes)
EDGE_AHEAD = 1.5 * AHEAD_EVERY  # a window edge this close (seconds) is rendered before it comes
FRESH_FOR = 2.0  # seconds an answer of a watched view is given while the next one is rendered ahead
HELD_ANSWERS = 6  # answers of a view viewers may hold (a 5 s refresh of 1 s samples), patched ahead


@dataclass
class _Watched:
    """A view a viewer asked for lately, with what it takes to render it again."""

    source: object
    dashboard_id: str
    panel: Panel
    chosen: dict[str, str]
    theme: str
    span: float
    asked: float  # time.monotonic() of the last ask
    recent: deque = field(default_factory=lambda: deque(maxlen=HELD_ANSWERS))  # answers made, oldest first


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
        self._watched: dict[tuple, _Watched] = {}
        self._ahead_at = -math.inf  # time.monotonic() of the render ahead's last look

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
        pv = self._view(source, dashboard_id, panel, chosen, theme, window, relative)
        if relative:
            watched = self._watched.get((pv.view, window.span))
            if watched is None:
                self._watched[(pv.view, window.span)] = _Watched(
                    source, dashboard_id, panel, chosen, theme, window.span, time.monotonic()
                )
            else:
                watched.source, watched.panel, watched.asked = source, panel, time.monotonic()
        return pv

    def _view(
        self, source, dashboard_id: str, panel: Panel, chosen, theme: str, window: Window, relative: bool
    ):
        step, _ = bucket_step(source, panel, window.span, self.points)
        window = aligned(window, step, relative)
        view = (dashboard_id, panel.id, tuple(sorted(chosen.items())), theme, source.levels)
        version = (newest(source, panel), panel_trouble(panel, self.trouble), self.alert_changes())
        return PanelView(panel, window, view, (*view, window.start, window.end, *version))

    def ahead(self, changed: threading.Event | None = None) -> int:
        """Render the answers of the views watched lately that are new since the last call (a new
        sample, the window's next edge coming), and the patches to them; return how many.

        ``changed``: wait for it (the store's change, set by every append) at most ``AHEAD_EVERY``
        seconds first, so a new second is rendered as soon as it is stored."""
        if changed is not None:
            changed.wait(AHEAD_EVERY)
            changed.clear()
        self._ahead_at = time.monotonic()
        made = 0
        now, moment = time.time(), time.monotonic()
        for key, w in list(self._watched.items()):
            if moment - w.asked > WATCHED_FOR:
                self._watched.pop(key, None)
                continue
            for end in (now, now + EDGE_AHEAD):
                pv = self.view_at(w, end)
                if any(made.key == pv.key for made in w.recent):
                    continue
                held = list(w.recent)
                answer = self.answer(w.source, pv)
                for old in held:
                    self.patch(old.token, answer)
                made += 1
                time.sleep(0)  # a refresh waiting meanwhile goes first: it only reads what is made
        return made

    def view_at(self, w: _Watched, end: float) -> PanelView:
        """Return a watched view's panel view for a window ending at ``end`` (as a viewer then asks)."""
        return self._view(
            w.source, w.dashboard_id, w.panel, w.chosen, w.theme, Window(end - w.span, end), True
        )

    def answer(self, source, pv: PanelView, live: bool = False) -> Answer:
        """Return the panel's answer, computed by the first viewer who asks for this key.

        ``live``: while the render ahead runs and the newest answer of a watched view is not rendered
        yet, the one before it (made less than ``FRESH_FOR`` seconds ago) is given at once, and the
        render ahead makes the newest for the next refresh: no refresh waits for a render.
        """
        watched = self._watched.get((pv.view, pv.window.span))
        rendering = time.monotonic() - self._ahead_at < 3 * AHEAD_EVERY  # the render ahead is running
        if live and rendering and watched and watched.recent and self.cache.peek(("figure", pv.key)) is None:
            last = watched.recent[-1]
            previous = self.cache.by_token(last.token) if time.monotonic() - last.made < FRESH_FOR else None
            if previous is not None:
                return previous  # the newest is being rendered ahead: the next refresh brings it
        answer = self.cache.get(("figure", pv.key), lambda: self._compute(source, pv))
        if watched is not None and not any(made.key == pv.key for made in watched.recent):
            watched.recent.append(_Made(pv.key, answer.token, time.monotonic()))  # viewers hold it
        return answer

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
