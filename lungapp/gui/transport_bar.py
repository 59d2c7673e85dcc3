"""The bar above the Review plots: play/pause, speed, playback clock, the file's name,
and the spectrogram's colour scale (dB range, colour map)."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from lungapp.gui.elided_label import ElidedLabel
from lungapp.gui.file_list import fmt_clock
from lungapp.gui.playback import SPEEDS
from lungapp.gui.plots import COLORMAPS

# The dB range shown before the user changes it: SpectrogramConfig's default range
# (not imported here: lungapp.dsp pulls in scipy.signal, too slow for the first paint).
DEFAULT_DB_RANGE = (-100.0, 0.0)


class TransportBar(QWidget):
    """``levelsChanged(min_db, max_db)`` only for a valid range (min below max);
    ``speed.currentData()`` is the playback speed, ``cmap`` the colour map's name."""

    levelsChanged = Signal(float, float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.play_btn = QPushButton("▶ Play")
        self.play_btn.setMinimumWidth(90)
        self.play_btn.setEnabled(False)
        self.speed = QComboBox()
        for s in SPEEDS:
            self.speed.addItem(f"{s:g}×", s)
        self.speed.setToolTip("Playback speed (tape-style: slower is also lower in pitch)")
        self.time_label = QLabel("0:00.0 / 0:00.0")
        self.time_label.setMinimumWidth(110)
        self.time_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.title = ElidedLabel("")
        self.title.setStyleSheet("font-weight: bold;")
        self.min_db = QDoubleSpinBox()
        self.max_db = QDoubleSpinBox()
        for sb, tip in ((self.min_db, "Floor of the colour scale (dB)"),
                        (self.max_db, "Top of the colour scale (dB)")):
            sb.setRange(-200, 50)
            sb.setDecimals(0)
            sb.setSingleStep(5)
            sb.setSuffix(" dB")
            sb.setToolTip(tip)
            sb.valueChanged.connect(self._levels_changed)
        self.auto_levels = QCheckBox("Auto")
        self.auto_levels.setToolTip("Colour scale from each recording's own levels (its 20th "
                                    "and 99.8th percentiles); untick to set the range by hand")
        self.auto_levels.toggled.connect(self._auto_toggled)
        self.cmap = QComboBox()
        self.cmap.addItems(COLORMAPS)
        self.cmap.setToolTip("Colour map (perceptually uniform, colour-blind safe)")
        self._lay_out()

    def _lay_out(self) -> None:
        # The file's name on a line of its own: it gets the plots' whole width and never
        # squeezes the controls (or widens the window).
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(2)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.time_label)
        col.addLayout(top)
        row = QHBoxLayout()
        col.addLayout(row)
        row.addWidget(self.play_btn)
        row.addWidget(self.speed)
        row.addStretch(1)
        row.addWidget(QLabel("Range"))
        row.addWidget(self.auto_levels)
        row.addWidget(self.min_db)
        row.addWidget(QLabel("–"))
        row.addWidget(self.max_db)
        row.addWidget(self.cmap)

    # --- settings ---------------------------------------------------------------------
    def restore(self, s) -> None:
        """Take the remembered range, colour map and speed from QSettings ``s``."""
        self.min_db.setValue(float(s.value("review/min_db", DEFAULT_DB_RANGE[0])))
        self.max_db.setValue(float(s.value("review/max_db", DEFAULT_DB_RANGE[1])))
        self.cmap.setCurrentText(str(s.value("review/colormap", "viridis")))
        self.auto_levels.setChecked(str(s.value("review/auto_levels", "true")).lower() == "true")
        self._auto_toggled(self.auto_levels.isChecked())
        speed = float(s.value("review/speed", 1.0))
        i = self.speed.findData(speed)
        self.speed.setCurrentIndex(i if i >= 0 else SPEEDS.index(1.0))

    def save(self, s) -> None:
        s.setValue("review/min_db", self.min_db.value())
        s.setValue("review/max_db", self.max_db.value())
        s.setValue("review/colormap", self.cmap.currentText())
        s.setValue("review/auto_levels", "true" if self.auto_levels.isChecked() else "false")
        s.setValue("review/speed", self.speed.currentData())

    # --- state --------------------------------------------------------------------------
    def levels(self) -> tuple[float, float]:
        return self.min_db.value(), self.max_db.value()

    def _auto_toggled(self, on: bool) -> None:
        for sb in (self.min_db, self.max_db):
            sb.setEnabled(not on)

    def show_recording_levels(self, spec_db) -> None:
        """With Auto on, set the range from ``spec_db``'s percentiles (emits levelsChanged)."""
        from lungapp.gui.levels import auto_levels

        if not self.auto_levels.isChecked():
            return
        levels = auto_levels(spec_db)
        if levels is None:
            return
        for sb, v in zip((self.min_db, self.max_db), levels):
            sb.blockSignals(True)
            sb.setValue(v)
            sb.blockSignals(False)
        self._levels_changed()

    def _levels_changed(self) -> None:
        lo, hi = self.levels()
        if lo < hi:
            self.levelsChanged.emit(lo, hi)

    def set_clock(self, seconds: float, duration: float) -> None:
        self.time_label.setText(f"{fmt_clock(seconds)} / {fmt_clock(duration)}")

    def set_title(self, path: str) -> None:
        """Show ``path``'s file name, shortened with "…" when it does not fit; the tool tip
        holds the whole path."""
        self.title.set_full_text(os.path.basename(path) if path else "", tooltip=path)

    def set_playing(self, playing: bool) -> None:
        self.play_btn.setText("❚❚ Pause" if playing else "▶ Play")

    def show_player(self, player) -> None:
        """Enable Play when ``player`` (a playback.Player) has an output and audio; the
        tool tip says which output, or why there is none."""
        if not player.available:
            self.play_btn.setEnabled(False)
            self.play_btn.setToolTip(f"Playback unavailable: {player.unavailable_reason}")
        else:
            self.play_btn.setEnabled(player.has_audio)
            self.play_btn.setToolTip(f"Play / pause (Space) on {player.device_name}")
