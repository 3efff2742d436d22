"""Live mode in the GUI: watch a folder, show each new capture's map as it arrives.

``install_live(window)`` adds *File ▸ Watch folder…*, the live indicator (capture
rate, age of the map, stale warning, pause/resume) and the filmstrip of the last
maps to a :class:`app.main_window.MainWindow`, through its extension points and
its one ``show_live`` hook. The work runs in :class:`core.model.live.LivePipeline`
threads; this package only paints.
"""
from app.live.controller import LiveController, install_live

__all__ = ["LiveController", "install_live"]
