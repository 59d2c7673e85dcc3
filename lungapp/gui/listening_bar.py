"""The listening aids under the Review transport bar: band-pass presets (lung, bell,
diaphragm) or a custom range, gain, and playing the selected region once or in a loop.
Speed (down to 0.25x) is on the transport bar."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton, QWidget

from lungapp.dsp.listening import PRESETS

CUSTOM = "Custom"


class ListeningBar(QWidget):
    """``bandChanged(low, high)`` (both 0: off), ``gainChanged(dB)``, ``playSelection(loop)``."""

    bandChanged = Signal(float, float)
    gainChanged = Signal(float)
    playSelection = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.preset = QComboBox()
        self.preset.addItems((*PRESETS, CUSTOM))
        self.preset.setToolTip("Band-pass what you hear, like a stethoscope's bell or diaphragm")
        self.low, self.high = QDoubleSpinBox(), QDoubleSpinBox()
        for sb, value in ((self.low, 100.0), (self.high, 2000.0)):
            sb.setRange(0, 24000)
            sb.setDecimals(0)
            sb.setSingleStep(50)
            sb.setSuffix(" Hz")
            sb.setValue(value)
            sb.editingFinished.connect(self._band)
        self.gain = QDoubleSpinBox()
        self.gain.setRange(-24, 30)
        self.gain.setSingleStep(3)
        self.gain.setSuffix(" dB")
        self.gain.setToolTip("Playback gain (loud passages are clipped)")
        self.gain.valueChanged.connect(self.gainChanged)
        self.play_sel = QPushButton("Play selection")
        self.play_sel.setToolTip("Play the selected region (P)")
        self.loop = QCheckBox("Loop")
        self.play_sel.clicked.connect(lambda: self.playSelection.emit(self.loop.isChecked()))
        self.preset.currentIndexChanged.connect(lambda _i: self._band())
        self._lay_out()
        self._show_custom()

    def _lay_out(self) -> None:
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for w in (QLabel("Listen"), self.preset, self.low, self.high, QLabel("Gain"), self.gain,
                  self.play_sel, self.loop):
            row.addWidget(w)
        row.addStretch(1)

    def _show_custom(self) -> None:
        custom = self.preset.currentText() == CUSTOM
        self.low.setVisible(custom)
        self.high.setVisible(custom)

    def band(self) -> tuple[float, float] | None:
        """The chosen range in Hz, or None (off)."""
        name = self.preset.currentText()
        if name == CUSTOM:
            return self.low.value(), self.high.value()
        return PRESETS[name]

    def _band(self) -> None:
        self._show_custom()
        band = self.band()
        self.bandChanged.emit(*(band or (0.0, 0.0)))
