"""The level meter paints every one of its pixels (issue #29, item 8: it left the bottom
row and right column with whatever was drawn there before)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtGui import QColor, QImage, QPainter, QRegion
from PySide6.QtWidgets import QWidget

pytestmark = pytest.mark.gui


@pytest.mark.parametrize("peak,rms", [(0.0, 0.0), (0.05, 0.01), (1.0, 0.9)])
def test_every_pixel_is_painted(qtbot, peak, rms):
    from lungapp.gui.level_meter import LevelMeter

    meter = LevelMeter()
    qtbot.addWidget(meter)
    meter.resize(400, 30)
    meter.show()
    qtbot.waitExposed(meter)
    meter.set_level(peak, rms)
    bar = meter.bar
    img = QImage(bar.size(), QImage.Format.Format_RGB32)
    img.fill(QColor("#ff00ff"))            # stale content the bar must cover
    painter = QPainter(img)
    bar.render(painter, QPoint(0, 0), QRegion(), QWidget.RenderFlag(0))   # no background fill by Qt
    painter.end()
    magenta = QColor("#ff00ff").rgb()
    stale = [(x, y) for y in range(img.height()) for x in range(img.width()) if img.pixel(x, y) == magenta]
    assert not stale, f"{len(stale)} pixels not painted, e.g. {stale[:5]}"
