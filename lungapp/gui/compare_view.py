"""Compare a site's recording with an earlier one of the same site: both spectrograms on
the same scales (time, frequency, dB levels), their results and confirmed labels, both
playable; and the per-site trend of the abnormal probability over the visits."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from lungapp.gui import theme
from lungapp.gui.playback import Player
from lungapp.gui.plots import RecordingPlots
from lungapp.gui.review_tasks import load_display
from lungapp.gui.workers import run_task
from lungapp.inference.predictor import WindowResult
from lungapp.inference.quality import QualityVerdict
from lungapp.report.content import judged, site_history, trend


class _StoredPrediction:
    """A stored result in the shape RecordingPlots.set_timeline reads (its noisy stretches
    are hatched too)."""

    def __init__(self, result: dict):
        self.windows = [WindowResult(s, e, {}, p) for s, e, p in result["windows"]]
        q = result.get("quality")
        self.quality = QualityVerdict.from_dict(q) if isinstance(q, dict) else None


def describe(h: dict) -> str:
    r = h["result"]
    words = "not analysed" if r is None else (
        f"{r['decision']} ({r['label']})"
        + (f", p(abnormal) {r['abnormal_probability']:.2f}" if judged(r) else "") + f", {r['model']}"
        + (" — made by another model" if r.get("stale") else ""))
    labels = ", ".join(f"{lab['label']} ({lab['confirmed_by']})" for lab in h["labels"]) or "none"
    return f"Visit {h['visit_number']} ({h['visit_date']}): {words}. Confirmed: {labels}."


class CompareDialog(QDialog):
    def __init__(self, hook, identifier: str, uid: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Compare: patient {identifier}")
        self.hook = hook
        store = hook.store
        self.site = store.recording(uid)["site"] or "unknown site"
        self.history = site_history(store, identifier, self.site, hook.active_model())
        self.current = next(h for h in self.history if h["uid"] == uid)
        self.earlier = [h for h in self.history if h["uid"] != uid
                        and (h["recorded_at"], h["id"]) < (self.current["recorded_at"], self.current["id"])]
        self.loaded: dict[str, dict] = {}
        self.player = Player(self)
        self.player.probe_device()
        self._playing = 1
        self._build()
        self.player.error.connect(self.status.setText)
        self.player.positionChanged.connect(lambda t: self.plots[self._playing].set_cursor(t))
        self._show_trend()
        self._load(self.current, 1)
        if self.earlier:
            self.choose_earlier(len(self.earlier) - 1)
        self.resize(1300, 760)

    def _build(self) -> None:
        grid = QGridLayout()
        self.plots = [RecordingPlots(), RecordingPlots()]
        self.labels = [QLabel(), QLabel(describe(self.current))]
        self.play_buttons = [QPushButton("▶ Play earlier"), QPushButton("▶ Play current")]
        self.earlier_combo = QComboBox()
        for h in self.earlier:
            self.earlier_combo.addItem(f"Visit {h['visit_number']}: {h['visit_date']} [{h['uid']}]")
        self.earlier_combo.currentIndexChanged.connect(self.choose_earlier)
        head = QHBoxLayout()
        head.addWidget(QLabel(f"{self.site}: earlier recording"))
        head.addWidget(self.earlier_combo, 1)
        grid.addLayout(head, 0, 0)
        grid.addWidget(QLabel(f"{self.site}: current recording (visit {self.current['visit_number']})"), 0, 1)
        for col in (0, 1):
            self.labels[col].setWordWrap(True)
            grid.addWidget(self.plots[col], 1, col)
            grid.addWidget(self.labels[col], 2, col)
            grid.addWidget(self.play_buttons[col], 3, col)
            self.play_buttons[col].clicked.connect(lambda _=False, c=col: self.play(c))
        if not self.earlier:
            self.labels[0].setText(f"No earlier recording of {self.site} for this patient.")
            self.play_buttons[0].setEnabled(False)
        self.trend_plot = pg.PlotWidget(background=theme.PLOT_BG)
        self.trend_plot.setMaximumHeight(200)
        self.trend_plot.setLabel("left", "p(abnormal)")
        self.trend_plot.setLabel("bottom", "Visit")
        lay = QVBoxLayout(self)
        lay.addLayout(grid, 1)
        lay.addWidget(QLabel(f"Trend at {self.site} (results of the active model only)"))
        lay.addWidget(self.trend_plot)
        self.status = QLabel("")
        self.png_button = QPushButton("Save as PNG…")
        self.png_button.clicked.connect(self.save_png_dialog)
        row = QHBoxLayout()
        row.addWidget(self.status, 1)
        row.addWidget(self.png_button)
        lay.addLayout(row)

    def choose_earlier(self, index: int) -> None:
        if not 0 <= index < len(self.earlier):
            return
        if self.earlier_combo.currentIndex() != index:
            self.earlier_combo.setCurrentIndex(index)  # comes back here through the signal
            return
        h = self.earlier[index]
        self.labels[0].setText(describe(h))
        self._load(h, 0)

    def _load(self, h: dict, col: int) -> None:
        if h["missing"]:
            self.plots[col].clear("File missing: relocate it in the Patients view")
            return
        predictor = self.hook.ctx.predictor()
        card = getattr(predictor, "card", None)
        cfg = card.features.spectrogram if card is not None else None
        self.plots[col].clear("Loading…")
        run_task(load_display, h["path"], cfg, name="load for comparison", owner=self,
                 on_finished=lambda data, c=col, hh=h: self._loaded(c, hh, data),
                 on_failed=lambda msg, exc, c=col, hh=h: self._failed(c, hh, msg))

    def _failed(self, col: int, h: dict, message: str) -> None:
        """The recording could not be read: the whole message under the column (the plot's
        own line is too short for a path and a reason)."""
        self.plots[col].clear("Could not be read: see below")
        self.labels[col].setText(f"{describe(h)}\n{message}")

    def _loaded(self, col: int, h: dict, data) -> None:
        if data is None:
            return
        audio = data["audio"]
        self.plots[col].set_recording(audio.samples, audio.rate, data["spec"], data["cfg"], wave=data["wave"])
        if h["result"] is not None:
            self.plots[col].set_timeline(_StoredPrediction(h["result"]), h["result"].get("threshold"))
        self.loaded[str(col)] = data
        self._same_scales()

    def _same_scales(self) -> None:
        """Both on one time axis (the longer recording's) and the same dB levels."""
        end = max(p.duration for p in self.plots) or 1.0
        for p in self.plots:
            for item in (p.wave, p.spec, p.timeline):
                item.getViewBox().setLimits(xMin=0, xMax=end)
            p.set_levels(*self.plots[1].levels)
            p.wave.setXRange(0, end, padding=0)
        self.plots[0].wave.setXLink(self.plots[1].wave)

    def play(self, col: int) -> None:
        data = self.loaded.get(str(col))
        if data is None:
            return
        self.player.stop()
        self._playing = col
        self.player.set_audio(data["audio"].samples, data["audio"].rate)
        self.player.play()

    def _show_trend(self) -> None:
        points = trend(self.history)
        self.trend_plot.clear()
        if not points:
            return
        x, y = np.array(points, dtype=float).T
        self.trend_plot.plot(x, y, pen=pg.mkPen(theme.ABNORMAL_LINE, width=2), symbol="o", symbolSize=8)
        thr = next((h["result"].get("threshold") for h in self.history if h["result"]), None)
        if thr is not None:
            self.trend_plot.addItem(pg.InfiniteLine(pos=thr, angle=0, pen=pg.mkPen(theme.MUTED,
                                                                                 style=Qt.PenStyle.DotLine)))
        self.trend_plot.setYRange(0, 1)
        visits = sorted({int(v) for v in x})
        self.trend_plot.getAxis("bottom").setTicks([[(v, str(v)) for v in visits], []])
        self.trend_plot.setXRange(min(visits) - 0.3, max(visits) + 0.3)

    def save_png_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the comparison", f"compare-{self.site}.png", "PNG (*.png)")
        if path:
            self.save_png(path)

    def save_png(self, path: str) -> bool:
        """Both spectrograms, their results and the trend as one PNG (what is on screen)."""
        ok = self.grab().save(path, "PNG")
        self.status.setText(f"Saved {path}" if ok else f"{path}: could not write the PNG")
        return ok

    def trend_points(self) -> list[tuple[int, float]]:
        return trend(self.history)

    def closeEvent(self, event) -> None:
        self.player.stop()
        super().closeEvent(event)
