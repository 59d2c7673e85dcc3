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
    height) in pixels. The PNG is encoded in memory and written whole or not at all (a
    full disk keeps an earlier file of that name as it was). Raises LungappError naming
    the file when it cannot be written."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    from lungapp.fsutil import atomic_write_bytes

    pixmap = widget.grab()
    if pixmap.isNull():
        raise LungappError("nothing to save: the view is not shown", target)
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if not pixmap.save(buf, "PNG"):
        raise LungappError("cannot encode the view as PNG", target)
    buf.close()
    try:
        atomic_write_bytes(target, bytes(data.data()))
    except OSError as exc:
        raise LungappError(f"cannot write this PNG ({exc.strerror or exc}); nothing was written",
                           target) from None
    return pixmap.width(), pixmap.height()


def save_view_dialog(parent: QWidget, widget: QWidget, stem: str | None, status) -> str | None:
    """Ask where (starting in the exports folder), save, and say so through
    ``status(text, timeout_ms)``; returns the file written, or None. A name typed without
    ``.png`` gets it, and the file of that name is replaced only if the user says so (the
    dialog asked about the name without it)."""
    from PySide6.QtWidgets import QMessageBox

    target, _ = QFileDialog.getSaveFileName(parent, "Save view as PNG", default_target(stem), "PNG (*.png)")
    if not target:
        return None
    if not target.lower().endswith(".png"):
        target += ".png"
        if os.path.exists(target) and QMessageBox.question(
                parent, "Replace the file?", f"{target} already exists. Replace it?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No) != QMessageBox.StandardButton.Yes:
            return None
    try:
        w, h = save_png(widget, target)
    except LungappError as exc:
        status(str(exc), 10000)
        return None
    status(f"Saved the view ({w}×{h} px) to {target}", 6000)
    return target
