"""Let a panel shrink below its controls' natural size by scrolling, so the window fits a
1280x720 screen (or 1920x1080 at 150 %) whatever the tabs hold (issue #29, item 7)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QScrollArea, QSizePolicy, QWidget


def scrolling(widget: QWidget, *, vertical: bool = True) -> QScrollArea:
    """``widget`` in a frameless scroll area that shows a scroll bar only when the space
    given is smaller than the widget needs; ``vertical=False`` for a one-row bar (it keeps
    its height and scrolls sideways only)."""
    area = QScrollArea()
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidgetResizable(True)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
    area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded if vertical
                                    else Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(widget)
    if not vertical:
        # As tall as the bar plus room for a horizontal scroll bar; never taller.
        height = widget.sizeHint().height() + area.horizontalScrollBar().sizeHint().height()
        area.setFixedHeight(height)
        area.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    return area
