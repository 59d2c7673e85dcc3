"""An input level meter (peak and RMS in dBFS) with a clipping warning.

The warning is a word, not only a colour ("CLIPPING"), and is held for a couple of
seconds so a short overload is noticed.
"""

from __future__ import annotations

import math
import time

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QWidget

FLOOR_DB = -60.0
HOLD_S = 2.0
TEXT_EVERY_S = 0.25  # the number changes at most 4 times a second: readable, and cheap


def to_db(x: float) -> float:
    return FLOOR_DB if x <= 10 ** (FLOOR_DB / 20) else max(FLOOR_DB, 20 * math.log10(x))


class _Bar(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.peak_db = FLOOR_DB
        self.rms_db = FLOOR_DB
        self.setMinimumHeight(18)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        # paintEvent fills every pixel: Qt need not paint the parents behind it first.
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def sizeHint(self) -> QSize:
        return QSize(240, 18)

    def paintEvent(self, ev):
        p = QPainter(self)
        # The whole rect, every pixel (WA_OpaquePaintEvent: Qt clears nothing first). A
        # rect shrunk by one pixel left the bottom row and right column with whatever was
        # drawn there before.
        r = self.rect()
        p.fillRect(r, QColor("#202020"))
        span = -FLOOR_DB

        def x_of(db):
            return r.left() + r.width() * (db - FLOOR_DB) / span

        # RMS as a solid bar, peak as a thin line; amber above -12 dBFS, red above -1.
        rms_x = x_of(self.rms_db)
        col = "#009E73" if self.rms_db < -12 else ("#E69F00" if self.rms_db < -1 else "#D55E00")
        p.fillRect(QRectF(r.left(), r.top(), max(0.0, rms_x - r.left()), r.height()), QColor(col))
        px = min(int(x_of(self.peak_db)), r.right())   # 0 dBFS: the last column, not past it
        p.setPen(QColor("#ffffff"))
        p.drawLine(px, r.top(), px, r.bottom())
        p.setPen(QColor("#555555"))
        for db in (-48, -36, -24, -12, -6):
            x = int(x_of(db))
            p.drawLine(x, r.bottom() - 4, x, r.bottom())
        p.end()


class LevelMeter(QWidget):
    """Call :meth:`set_level` with linear peak/RMS (full scale 1.0) and whether any
    sample clipped since the previous call."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.bar = _Bar(self)
        self.text = QLabel("–∞ dBFS")
        self.clip_label = QLabel("")
        # Fixed sizes: a label whose text changes ~30 times a second must not make Qt
        # lay out (and repaint) the whole window each time.
        fm = self.text.fontMetrics()
        self.text.setFixedSize(fm.horizontalAdvance("-00.0 dBFS") + 12, fm.height() + 4)
        self.text.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        bold = self.clip_label.font()
        bold.setBold(True)
        self.clip_label.setFixedSize(max(80, QFontMetrics(bold).horizontalAdvance("CLIPPING") + 16),
                                     fm.height() + 6)
        self.clip_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(QLabel("Level"))
        lay.addWidget(self.bar, 1)
        lay.addWidget(self.text)
        lay.addWidget(self.clip_label)
        self._clip_until = 0.0
        self._text_at = 0.0
        self.clipping = False

    def set_level(self, peak: float, rms: float, clipped: bool = False) -> None:
        self.bar.peak_db = to_db(peak)
        self.bar.rms_db = to_db(rms)
        now = time.monotonic()
        if now - self._text_at >= TEXT_EVERY_S or peak <= 0:
            text = f"{self.bar.peak_db:5.1f} dBFS" if peak > 0 else "–∞ dBFS"
            if text != self.text.text():
                self.text.setText(text)
            self._text_at = now
        if clipped:
            self._clip_until = now + HOLD_S
        clipping = now < self._clip_until
        if clipping != self.clipping:
            self.clipping = clipping
            self.clip_label.setText("CLIPPING" if clipping else "")
            self.clip_label.setStyleSheet(
                "background: #D55E00; color: white; font-weight: bold; padding: 2px 6px;"
                if clipping else "")
            self.clip_label.setToolTip("The input is overloaded: lower the stethoscope's gain"
                                       if clipping else "")
        self.bar.update()

    def reset(self) -> None:
        self._clip_until = 0.0
        self.set_level(0.0, 0.0, False)
