"""Live mode's trust rules: the same quality checks and banners as a capture opened alone.

- An unusable live capture shows no map: the last good map stays on screen, dimmed, with
  a banner naming the unusable capture, why, and which map is shown instead.
- A stale live map (no new capture for ``stale_after_s``, a setting) raises a banner with
  the map's age, in normal and theatre mode alike (the status bar is hidden in theatre).
- A "remote failed" warning of an earlier session does not follow into live mode once the
  endpoint is cleared.
"""
from __future__ import annotations

import time
from datetime import datetime

DIMMED_OPACITY = 0.35  # the last good map under an unusable capture's banner: visible, clearly not live


class LiveQualityGate:
    """Decides whether a live result reaches the screen and keeps the live banners current."""

    def __init__(self, window, indicator) -> None:
        self.window = window
        self.indicator = indicator
        self.good = None  # the newest usable LiveResult shown
        self.dimmed = False
        self._stale_acknowledged = False
        self._stale_shown = False
        window.warnings.acknowledged.connect(self._acknowledged)

    def started(self) -> None:
        self.good, self._stale_acknowledged, self._stale_shown = None, False, False
        self._dim(False)
        if not self.window.settings.remote_enabled():
            self.window.warnings.acknowledge(("remote",))  # about an endpoint no longer in use

    def admit(self, live) -> bool:
        """True to show ``live`` as usual; False for an unusable capture while a good map is on screen
        (kept, dimmed, with a banner saying why)."""
        quality = live.result.quality
        if quality is None or quality.usable or self.good is None:
            if quality is None or quality.usable:
                self.good = live
                self._dim(False)
                if "live" in self.window.warnings.warnings:
                    self.window.warnings.acknowledge(("live",))
            self._new_map()
            return True
        shown = self.good.prepared.capture.capture_id
        cid = live.prepared.capture.capture_id
        self._dim(True)
        self.window.show_warning(
            "live", f"{cid} is unusable ({quality.reason}): no map made from it; the dimmed map is {shown}", capture=shown)
        return False

    def tick(self, now: float | None = None) -> None:
        """Raise (or update) the stale banner once the indicator says the map is stale."""
        indicator = self.indicator
        if not indicator.stale or indicator.map_at is None or self._stale_acknowledged:
            return
        now = time.perf_counter() if now is None else now
        age = now - indicator.map_at
        since = datetime.now().timestamp() - age
        text = (f"the live map is {age:.0f} s old: no new capture since "
                f"{datetime.fromtimestamp(since).strftime('%H:%M:%S')}; it may not show the field now")
        opened = self.window.opened
        capture = opened.capture.capture_id if opened is not None else None
        if self._stale_shown:
            self.window.warnings.show_warning("stale", text, capture=capture)  # the age grows: no new notice
        else:
            self.window.show_warning("stale", text, capture=capture)
            self._stale_shown = True

    def _new_map(self) -> None:
        shown, self._stale_shown = self._stale_shown, False  # first: clearing it is not the user's acknowledgement
        if shown and "stale" in self.window.warnings.warnings:
            self.window.warnings.acknowledge(("stale",))
        self._stale_acknowledged = False

    def _acknowledged(self, kinds) -> None:
        if "stale" in kinds and self._stale_shown:
            self._stale_acknowledged = True  # not again until the next map

    def _dim(self, on: bool) -> None:
        self.dimmed = bool(on)
        self.window.image_view.view.setOpacity(DIMMED_OPACITY if on else 1.0)
