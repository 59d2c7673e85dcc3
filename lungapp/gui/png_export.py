"""Save what a plot area shows (as shown: its size, its zoom) as a PNG, by default in the
app's exports folder (never among the recordings: see ReviewView.export_folder)."""

from __future__ import annotations

import os
import time

from PySide6.QtWidgets import QFileDialog, QWidget

from lungapp.errors import LungappError


def default_target(stem: str | None) -> str:
    """``exports/<stem>-view.png`` (a time stamp when there is no recording's name)."""
    from lungapp import paths

    name = f"{stem}-view.png" if stem else time.strftime("lungapp-view-%Y%m%d-%H%M%S.png")
    return os.path.join(str(paths.ensure(paths.exports_dir())), name)


def save_png(widget: QWidget, target: str) -> tuple[int, int]:
    """Write ``widget`` as it is on screen to ``target``; returns the image's (width,
    height) in pixels. Raises LungappError naming the file when it cannot be written."""
    pixmap = widget.grab()
    if pixmap.isNull():
        raise LungappError("nothing to save: the view is not shown", target)
    if not pixmap.save(target, "PNG"):
        raise LungappError("cannot write this PNG (folder missing or not writable?)", target)
    return pixmap.width(), pixmap.height()


def save_view_dialog(parent: QWidget, widget: QWidget, stem: str | None, status) -> str | None:
    """Ask where (starting in the exports folder), save, and say so through
    ``status(text, timeout_ms)``; returns the file written, or None."""
    target, _ = QFileDialog.getSaveFileName(parent, "Save view as PNG", default_target(stem), "PNG (*.png)")
    if not target:
        return None
    if not target.lower().endswith(".png"):
        target += ".png"
    try:
        w, h = save_png(widget, target)
    except LungappError as exc:
        status(str(exc), 10000)
        return None
    status(f"Saved the view ({w}×{h} px) to {target}", 6000)
    return target
