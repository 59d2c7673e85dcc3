"""The live scrolling waveform and spectrogram of the Record view.

Draws a :class:`lungapp.audio.live.LiveMonitor` (the data side, no Qt): one pyqtgraph
ImageItem holding the ring of spectrogram columns (newest at the right) and one curve
for the waveform's min/max envelope. The view calls :meth:`refresh` from its QTimer.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QVBoxLayout, QWidget

from lungapp.gui import theme


def _ticks(fmax: float) -> list[float]:
    for step in (250, 500, 1000, 2000, 5000):
        if fmax / step <= 8:
            return [float(f) for f in np.arange(0.0, fmax + 1e-9, step)]
    return [0.0, fmax]


class LiveSpectrogram(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground(theme.PLOT_BG)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.glw)

        self.wave = self.glw.addPlot(row=0, col=0)
        self.spec = self.glw.addPlot(row=1, col=0)
        self.glw.ci.layout.setRowStretchFactor(0, 1)
        self.glw.ci.layout.setRowStretchFactor(1, 3)
        for p in (self.wave, self.spec):
            p.setMenuEnabled(False)
            p.setMouseEnabled(x=False, y=False)
            p.hideButtons()
            p.getAxis("left").setWidth(62)
        self.spec.setXLink(self.wave)
        self.wave.setLabel("left", "Amplitude")
        self.wave.getAxis("bottom").setStyle(showValues=False)
        self.wave.setYRange(-1, 1, padding=0.02)
        self.curve = self.wave.plot(pen=pg.mkPen(theme.WAVE, width=1))
        self.spec.setLabel("left", "Frequency", units="Hz")
        self.spec.getAxis("left").enableAutoSIPrefix(False)
        self.spec.setLabel("bottom", "Time before now", units="s")
        self.image = pg.ImageItem(axisOrder="col-major")
        # uint8 columns through a 256-entry colour table: the cheapest path to a QImage.
        self.image.setLookupTable(pg.colormap.get("viridis").getLookupTable(nPts=256))
        self.spec.addItem(self.image)
        self.monitor = None
        self.frames_drawn = 0

    def attach(self, monitor) -> None:
        """Show ``monitor`` (a LiveMonitor); None detaches and keeps the last picture."""
        self.monitor = monitor
        if monitor is None:
            return
        span = monitor.seconds
        self.wave.setXRange(-span, 0, padding=0)
        self.spec.setYRange(0, monitor.fmax, padding=0)
        self.spec.getAxis("left").setTicks([[(f, f"{f:g}") for f in _ticks(monitor.fmax)]])
        self.image.setImage(monitor.image8(), autoLevels=False, levels=(0, 255))
        self.image.setRect(QRectF(-span, 0, span, monitor.fmax))
        self.curve.setData([], [])

    def refresh(self) -> None:
        """Redraw from the monitor's current state (call after ``monitor.update()``)."""
        m = self.monitor
        if m is None:
            return
        self.image.setImage(m.image8(), autoLevels=False, levels=(0, 255))
        t, y = m.envelope()
        self.curve.setData(t, y)
        self.frames_drawn += 1

    def image_data(self) -> np.ndarray | None:
        """What the spectrogram item currently shows, uint8 0..255 = min_db..max_db."""
        return None if self.image.image is None else np.array(self.image.image, copy=True)
