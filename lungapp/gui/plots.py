"""Waveform, spectrogram and per-window probability timeline of one recording, on one
linked time axis, with a playback cursor.

Pure display: the spectrogram columns come from :func:`lungapp.dsp.spectrogram`
(computed in a worker), the probabilities from the model's Prediction. Drag to pan,
wheel to zoom (time axis), double-click to see the whole recording, click to seek.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import QMenu, QVBoxLayout, QWidget

from lungapp.annotation.suggest import merge_intervals
from lungapp.gui import theme

COLORMAPS = ("viridis", "cividis", "magma")


def nice_hz_ticks(fmax: float) -> list[float]:
    for step in (50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if fmax / step <= 8:
            return [float(f) for f in np.arange(0.0, fmax + 1e-9, step)]
    return [0.0, fmax]


class TimeGrid(pg.GraphicsObject):
    """Vertical grid lines at the time axis's major and minor ticks, drawn inside the view
    by one item with cosmetic, non-antialiased pens.

    pyqtgraph's own grid (``showGrid``) is drawn by the axis, which replays a QPicture the
    size of the whole plot on every repaint: on a 10-minute recording that made a pan frame
    about 35 ms against 14 ms without it (cProfile of benchmarks/bench_annotation.py's pan)."""

    def __init__(self, axis: pg.AxisItem, alpha: float = 0.15):
        super().__init__()
        self._axis = axis
        self._alpha = alpha
        self.setZValue(0.5)  # over the spectrogram image, under curves and regions

    def boundingRect(self) -> QRectF:
        vb = self.getViewBox()
        return QRectF() if vb is None else vb.viewRect()

    def viewRangeChanged(self) -> None:
        self.prepareGeometryChange()
        self.update()

    def paint(self, p, *args) -> None:
        vb = self.getViewBox()
        if vb is None or vb.width() <= 0:
            return
        r = vb.viewRect()
        base = QColor(self._axis.pen().color())
        # The alpha of each level as pyqtgraph's grid gives it: fainter for minor ticks and
        # where lines would be dense.
        for level, (_spacing, values) in enumerate(self._axis.tickValues(r.left(), r.right(), vb.width())):
            if not len(values):
                continue
            density = min(1.0, 0.05 * vb.width() / (len(values) + 1))
            color = QColor(base)
            color.setAlphaF(min(1.0, self._alpha * density / (level + 1)))
            pen = QPen(color)
            pen.setCosmetic(True)
            p.setPen(pen)
            p.drawLines([QLineF(v, r.top(), v, r.bottom()) for v in values])


class _TimePlot(pg.PlotItem):
    """A PlotItem whose wheel and drag act on time only (frequency/probability stay)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.setMenuEnabled(False)
        self.getViewBox().setMouseEnabled(x=True, y=False)
        self.hideButtons()


class RecordingPlots(QWidget):
    """Three stacked plots sharing the time axis. ``seekRequested(seconds)`` on click;
    ``savePngRequested`` from the right-click menu (the owning view saves the PNG)."""

    seekRequested = Signal(float)
    savePngRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        pg.setConfigOptions(antialias=False, imageAxisOrder="col-major")
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground(theme.PLOT_BG)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.glw)
        self._build_stack()
        self._build_wave()
        self._build_spec()
        self._build_timeline()
        self._build_cursors()
        self.glw.scene().sigMouseClicked.connect(self._clicked)
        self.glw.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.glw.customContextMenuRequested.connect(
            lambda pos: self.context_menu().popup(self.glw.mapToGlobal(pos)))
        self.duration = 0.0
        self.cfg = None
        self.colormap = "viridis"
        self.levels = (-100.0, 0.0)
        self.set_colormap("viridis")
        self.clear()

    # --- construction --------------------------------------------------------------
    def _build_stack(self) -> None:
        """The three plots, stacked 2:6:3, sharing the waveform's time axis."""
        self.wave = _TimePlot()
        self.spec = _TimePlot()
        self.timeline = _TimePlot()
        self.glw.addItem(self.wave, row=0, col=0)
        self.glw.addItem(self.spec, row=1, col=0)
        self.glw.addItem(self.timeline, row=2, col=0)
        ci = self.glw.ci.layout
        ci.setRowStretchFactor(0, 2)
        ci.setRowStretchFactor(1, 6)
        ci.setRowStretchFactor(2, 3)
        for p in (self.spec, self.timeline):
            p.setXLink(self.wave)
        for p in (self.wave, self.spec, self.timeline):
            p.getAxis("left").setWidth(62)
            p.addItem(TimeGrid(p.getAxis("bottom")), ignoreBounds=True)

    def _build_wave(self) -> None:
        self.wave.setLabel("left", "Amplitude")
        self.wave.getAxis("left").enableAutoSIPrefix(False)
        self.wave.getAxis("bottom").setStyle(showValues=False)
        self.wave.setYRange(-1, 1, padding=0.02)
        self.wave_curve = self.wave.plot(pen=pg.mkPen(theme.WAVE, width=1))
        self.wave_curve.setDownsampling(auto=True, method="peak")
        self.wave_curve.setClipToView(True)

    def _build_spec(self) -> None:
        self.spec.setLabel("left", "Frequency", units="Hz")
        self.spec.getAxis("left").enableAutoSIPrefix(False)
        self.spec.getAxis("bottom").setStyle(showValues=False)
        self.image = pg.ImageItem()
        self.spec.addItem(self.image)

    def _build_timeline(self) -> None:
        self.timeline.setLabel("left", "Probability")
        self.timeline.setLabel("bottom", "Time", units="s")
        self.timeline.setYRange(0, 1.05, padding=0.02)
        self.timeline.getAxis("left").setTicks([[(0, "0"), (0.5, "0.5"), (1, "1")]])
        # The legend in a row of its own under the plots: inside the timeline it covered
        # the curves whenever it needed a second line.
        self.legend = pg.LegendItem(labelTextSize="8pt", colCount=3, verSpacing=-6,
                                    brush=pg.mkBrush(255, 255, 255, 0))
        self.glw.addItem(self.legend, row=3, col=0)
        self.glw.ci.layout.setRowStretchFactor(3, 0)
        self.timeline_items: list = []
        self.empty_text = pg.TextItem("", color=theme.MUTED, anchor=(0.5, 0.5))
        self.empty_text.setTextWidth(520)
        self.timeline.addItem(self.empty_text, ignoreBounds=True)

    def _build_cursors(self) -> None:
        """The playback cursor: one vertical line per plot, moved together."""
        self.cursors = []
        for p in (self.wave, self.spec, self.timeline):
            line = pg.InfiniteLine(pos=0, angle=90, movable=False,
                                   pen=pg.mkPen(theme.CURSOR, width=2))
            line.setZValue(100)
            p.addItem(line, ignoreBounds=True)
            self.cursors.append(line)

    def context_menu(self) -> QMenu:
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # not one kept per right-click
        menu.addAction("Save view as PNG…", self.savePngRequested.emit)
        return menu

    # --- content -------------------------------------------------------------------
    def clear(self, message: str = "") -> None:
        self.duration = 0.0
        self.wave_curve.setData([], [])
        self.image.clear()
        top = self.cfg.rate / 2 if self.cfg is not None and self.cfg.scale == "linear" else 4000
        if self.cfg is None or self.cfg.scale == "linear":
            self.spec.getAxis("left").setTicks(None)
            self.spec.setYRange(0, top, padding=0)
        self.wave.setYRange(-1, 1, padding=0.02)
        for p in (self.wave, self.spec, self.timeline):
            p.getViewBox().setLimits(xMin=0, xMax=1, minXRange=0.05)
        self.wave.setXRange(0, 1, padding=0)
        self.clear_timeline(message)
        self.set_cursor(0.0)

    def set_recording(self, samples: np.ndarray, rate: int, spec_db: np.ndarray, cfg,
                      wave: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Show one recording: ``samples`` at ``rate`` (what is played) and its
        spectrogram ``spec_db`` (n_frames, n_bins) computed with ``cfg``. ``wave``:
        precomputed (t, y) points for the waveform (default: every sample)."""
        self.cfg = cfg
        n = len(samples)
        self.duration = n / rate if rate else 0.0
        if wave is None:
            wave = (np.arange(n, dtype=np.float32) / np.float32(rate), samples)
        self.wave_curve.setData(*wave)
        peak = float(np.max(np.abs(wave[1]))) if n else 1.0
        self.wave.setYRange(-max(peak, 1e-3), max(peak, 1e-3), padding=0.05)

        hop_s = cfg.hop_length / cfg.rate
        x0 = (cfg.win_length / 2 - cfg.hop_length / 2) / cfg.rate
        if cfg.scale == "linear":
            df = cfg.rate / cfg.n_fft
            rect = QRectF(x0, -df / 2, max(len(spec_db), 1) * hop_s, cfg.n_bins * df)
            self.spec.getAxis("left").setTicks(None)
            self.spec.setLabel("left", "Frequency", units="Hz")
            self.spec.setYRange(0, cfg.rate / 2, padding=0)
        else:
            # Mel bands are not evenly spaced in Hz: draw one row per band and label the
            # axis in Hz at the bands nearest to round frequencies.
            freqs = cfg.frequencies()
            rect = QRectF(x0, 0, max(len(spec_db), 1) * hop_s, cfg.n_bins)
            ticks = [(float(np.interp(f, freqs, np.arange(len(freqs)) + 0.5)), f"{f:g}")
                     for f in nice_hz_ticks(float(freqs[-1])) if freqs[0] <= f <= freqs[-1]]
            self.spec.getAxis("left").setTicks([ticks, []])
            self.spec.setLabel("left", "Frequency (Hz, mel scale)")
            self.spec.setYRange(0, cfg.n_bins, padding=0)
        if len(spec_db):
            self.image.setImage(spec_db, autoLevels=False, levels=self.levels)
            self.image.setRect(rect)
        else:
            self.image.clear()
        end = max(self.duration, 1e-3)
        for p in (self.wave, self.spec, self.timeline):
            p.getViewBox().setLimits(xMin=0, xMax=end, minXRange=min(0.05, end))
        self.wave.setXRange(0, end, padding=0)
        self.set_cursor(0.0)

    def clear_timeline(self, message: str = "") -> None:
        for item in self.timeline_items:
            plot, item = item if isinstance(item, tuple) else (self.timeline, item)
            plot.removeItem(item)
        self.timeline_items = []
        self.shaded: list[tuple[float, float]] = []   # the shaded spans (s), for tests
        self.noisy: list[tuple[float, float]] = []    # the hatched noisy spans (s), for tests
        self.legend.clear()
        self.empty_text.setText(message)
        self._place_empty_text()

    def _place_empty_text(self) -> None:
        end = self.duration or 1.0
        self.empty_text.setPos(end / 2, 0.6)

    def set_timeline(self, prediction, threshold) -> None:
        """Per-window probabilities of ``prediction`` (one curve per class, and shaded
        windows where the abnormal probability reaches ``threshold``)."""
        self.clear_timeline("")
        quality = getattr(prediction, "quality", None)
        if quality is not None and not quality.ok:
            # A refused recording: the model's output on silence or clipping means nothing,
            # so none is drawn (the result panel says why).
            self.empty_text.setText(f"Not judged: {quality.reason}")
            self._place_empty_text()
            return
        self._mark_noisy(getattr(quality, "noisy_ranges", ()) or ())
        windows = list(getattr(prediction, "windows", []) or [])
        if not windows:
            self.empty_text.setText("No per-window result")
            self._place_empty_text()
            return
        starts = np.array([w.start_s for w in windows], dtype=float)
        ends = np.array([w.end_s for w in windows], dtype=float)
        centres = (starts + ends) / 2
        thr = _abnormal_threshold(threshold)
        self._shade_hits(starts, ends, windows, thr)
        classes = list(windows[0].probabilities.keys())
        sym = "o" if len(windows) <= 40 else None
        for cls in classes:
            if cls.lower() == "normal":
                continue  # the abnormal classes say where; "normal" is their complement
            if cls.lower() == "abnormal":
                continue  # a binary model: its one class is the dashed "abnormal" line below
            ys = np.array([w.probabilities.get(cls, np.nan) for w in windows], dtype=float)
            color = theme.class_color(cls)
            curve = self.timeline.plot(centres, ys, pen=pg.mkPen(color, width=2), name=cls,
                                       symbol=sym, symbolSize=5, symbolBrush=color,
                                       symbolPen=None)
            self.legend.addItem(curve, cls)
            self.timeline_items.append(curve)
        ab = np.array([w.abnormal_probability for w in windows], dtype=float)
        curve = self.timeline.plot(centres, ab, pen=pg.mkPen(theme.ABNORMAL_LINE, width=1.5,
                                                               style=Qt.PenStyle.DashLine),
                                   name="abnormal")
        self.legend.addItem(curve, "abnormal")
        self.timeline_items.append(curve)
        self._threshold_line(thr)

    def _shade_hits(self, starts: np.ndarray, ends: np.ndarray, windows, thr: float) -> None:
        """Shade where the model hears something: each window over the threshold shades
        one step around its centre (not its whole 2 s: overlapping windows' union
        covered nearly everything), merged so the shade does not darken. A legend entry
        says what the shade means."""
        step = float(np.median(np.diff(starts))) if len(starts) > 1 else float(ends[0] - starts[0])
        centres = (starts + ends) / 2
        hits = [(c - step / 2, c + step / 2) for c, w in zip(centres, windows)
                if w.abnormal_probability is not None and w.abnormal_probability >= thr]
        self.shaded = merge_intervals(hits)
        self._regions([(max(0.0, s), e) for s, e in self.shaded], (self.timeline, self.wave),
                      pg.mkBrush(*theme.HIT_RGBA), pg.mkPen(None), -10, "over threshold")

    def _regions(self, spans, plots, brush, pen, z: float, legend: str) -> None:
        """Fixed (start_s, end_s) regions on each of ``plots``, cleared with the timeline,
        and one legend entry saying what they mean (none without spans). The timeline's own
        y range ignores them."""
        for s, e in spans:
            for plot in plots:
                region = pg.LinearRegionItem((s, e), movable=False, brush=brush, pen=pen)
                region.setZValue(z)
                plot.addItem(region, ignoreBounds=True)
                self.timeline_items.append((plot, region))
        if spans:
            sample = pg.BarGraphItem(x=[0], height=[0], width=0, brush=brush, pen=pg.mkPen(None))
            self.legend.addItem(sample, legend)

    def _mark_noisy(self, ranges) -> None:
        """Hatch the stretches the quality check found noisy on all three plots (hatching,
        not a fill, so the spectrogram stays readable under it), with a legend entry."""
        self.noisy = [(max(0.0, float(a)), float(b)) for a, b in ranges if float(b) > float(a)]
        # z 1: over the spectrogram image, under the curves
        self._regions(self.noisy, (self.wave, self.spec, self.timeline),
                      QBrush(QColor(*theme.NOISY_RGBA), Qt.BrushStyle.BDiagPattern),
                      pg.mkPen(theme.NOISY_RGBA[:3], width=1), 1, "noisy: interpret with care")

    def _threshold_line(self, thr: float) -> None:
        """The threshold as a dotted line, named in the legend (a label on the line sat
        on top of the curves)."""
        pen = pg.mkPen(theme.MUTED, width=1, style=Qt.PenStyle.DotLine)
        line = pg.InfiniteLine(pos=thr, angle=0, movable=False, pen=pen)
        self.timeline.addItem(line, ignoreBounds=True)
        self.timeline_items.append(line)
        self.legend.addItem(pg.PlotDataItem(pen=pen), f"threshold {thr:.2f}")

    def set_levels(self, min_db: float, max_db: float) -> None:
        self.levels = (float(min_db), float(max_db))
        if self.image.image is not None:
            self.image.setLevels(self.levels)

    def set_colormap(self, name: str) -> None:
        if name not in COLORMAPS:
            name = "viridis"
        self.colormap = name
        cmap = pg.colormap.get(name)
        self.image.setLookupTable(cmap.getLookupTable(nPts=256))

    def set_cursor(self, seconds: float) -> None:
        for line in self.cursors:
            line.setValue(seconds)

    def cursor(self) -> float:
        return float(self.cursors[0].value())

    def has_image(self) -> bool:
        return self.image.image is not None and self.image.image.size > 0

    def timeline_curves(self) -> int:
        return sum(isinstance(i, pg.PlotDataItem) for i in self.timeline_items)

    def reset_view(self) -> None:
        """Show the whole recording again (after zooming)."""
        if self.duration:
            self.wave.setXRange(0, self.duration, padding=0)

    def _clicked(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or not self.duration:
            return
        if ev.double():
            self.reset_view()
            ev.accept()
            return
        pos = ev.scenePos()
        for p in (self.wave, self.spec, self.timeline):
            if p.sceneBoundingRect().contains(pos):
                x = p.getViewBox().mapSceneToView(pos).x()
                self.seekRequested.emit(float(np.clip(x, 0.0, self.duration)))
                ev.accept()
                return


def _abnormal_threshold(threshold) -> float:
    if isinstance(threshold, dict):
        for key in ("abnormal", "default"):
            if key in threshold:
                return float(threshold[key])
        vals = [float(v) for v in threshold.values()]
        return min(vals) if vals else 0.5
    try:
        return float(threshold)
    except (TypeError, ValueError):
        return 0.5
