"""The body-map widget: the report's drawing (lungapp.report.body_map) on screen, with
clicks on a site reported as ``siteClicked(site)``."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Signal
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from lungapp.report.body_map import paint_body_map, site_at


class BodyMapWidget(QWidget):
    siteClicked = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.states: dict[str, str] = {}
        self.planned: list[str] | None = None
        self.setMinimumSize(240, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(320, 240)

    def set_states(self, states: dict[str, str], planned: list[str] | None = None) -> None:
        """{site: state} to colour; ``planned`` sites without a state are drawn as still
        to record (None: every site)."""
        self.states, self.planned = dict(states), planned
        self.update()

    def _map_rect(self) -> QRectF:
        return QRectF(4, 4, self.width() - 8, self.height() - 8)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        paint_body_map(painter, self._map_rect(), self.states, self.planned)
        painter.end()

    def mousePressEvent(self, event) -> None:
        site = site_at(self._map_rect(), QPointF(event.position()))
        if site:
            self.siteClicked.emit(site)
        super().mousePressEvent(event)
