"""The live scrolling waveform and spectrogram of the Record view.

Draws a :class:`lungapp.audio.live.LiveMonitor` (the data side, no Qt) the way Friture
draws its live spectrogram: the picture is a ring of already-coloured columns in one
QImage, and each frame only

* colours and writes the columns that arrived since the last frame (a few; each is
  written twice, at slot ``k % M`` and ``k % M + M`` of a canvas ``2 M`` columns wide,
  so the visible window is always one contiguous slice of it), and
* draws that slice at its place in time with one ``QPainter.drawImage``: nothing is
  re-coloured, re-uploaded or copied per frame.

The axes are pyqtgraph plots; the moving pictures are small opaque widgets laid over
their view boxes (:class:`ScrollingCanvas`), so a frame repaints only them.

The waveform's min/max envelope is drawn the same way: one image column per envelope
point, lit from its minimum to its maximum (cheaper than stroking a 1000-vertex path
every frame). Both move by the same :class:`~lungapp.audio.live.ScrollClock` time, so
they scroll evenly at the view's timer rate although audio arrives in bursts. The view
calls :meth:`refresh` from its QTimer (~33 ms).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QVBoxLayout, QWidget

from lungapp.audio.live import FMAX, SECONDS, ScrollClock, live_bins, live_config
from lungapp.gui import theme

CMAP = "viridis"
# The picture runs behind the audio by the ScrollClock's delay (typically tens of ms);
# the canvases keep this much more than the visible span so the left edge stays drawn.
SPARE_S = 1.0
WAVE_ROWS = 256  # amplitude resolution of the waveform image (-1..1)


def _ticks(fmax: float) -> list[float]:
    for step in (250, 500, 1000, 2000, 5000):
        if fmax / step <= 8:
            return [float(f) for f in np.arange(0.0, fmax + 1e-9, step)]
    return [0.0, fmax]


def _rgb32(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb, dtype=np.uint32)
    return (0xFF000000 | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]).astype(np.uint32)


def colour_table(name: str = CMAP) -> np.ndarray:
    """(256,) uint32 0xAARRGGBB colours (QImage.Format_RGB32 pixels) of a colormap."""
    return _rgb32(pg.colormap.get(name).getLookupTable(nPts=256))


def envelope_columns(env: np.ndarray, rows: int = WAVE_ROWS) -> np.ndarray:
    """(k, rows) uint8 masks of (k, 2) min/max pairs: row r (amplitude
    -1 + 2r/rows .. -1 + 2(r+1)/rows) is 1 where it meets [min, max]."""
    idx = np.floor((np.asarray(env, dtype=np.float64) + 1.0) * (rows / 2)).astype(np.int64)
    idx = idx.clip(0, rows - 1)
    r = np.arange(rows)
    return ((r[None, :] >= idx[:, :1]) & (r[None, :] <= idx[:, 1:])).astype(np.uint8)


@dataclass(frozen=True)
class ColumnGrid:
    """How a :class:`ScrollingCanvas` lays out its ring: ``slots`` columns of ``rows``
    values; column ``k`` covers stream times ``left0 + k * col_w`` .. ``+ col_w`` (s) and
    values ``y0 .. y0 + height`` (Hz or amplitude); ``span`` seconds are shown across."""

    slots: int
    rows: int
    span: float
    y0: float
    height: float
    left0: float
    col_w: float


class ScrollingCanvas(QWidget):
    """A ring of columns in one RGB32 QImage, drawn as one contiguous slice.

    Column ``k`` holds ``rows`` uint8 values (coloured once, through ``lut``, when
    written) and covers stream times ``[left0 + k * col_w, left0 + (k + 1) * col_w)``
    and values ``y0 .. y0 + height`` (Hz for the spectrogram, amplitude for the
    waveform). The widget shows stream times ``right - span .. right`` across its width
    and the value range ``ymin .. ymax`` (the plot's) bottom to top.

    It is a plain opaque widget laid over a pyqtgraph plot's view box rather than an
    item in the plot's scene: a frame then repaints only this widget, not the scene
    (measured: about 5 % of a core less at 33 frames/s).
    """

    def __init__(self, lut: np.ndarray, background: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.lut = lut
        self.background = QColor(background)
        self.span = SECONDS
        self.ymin, self.ymax = 0.0, 1.0
        self.y0, self.height_ = 0.0, 1.0
        self.col_w = 1.0
        self.left0 = 0.0
        self.slots = 0            # M: columns the ring holds
        self.rows = 0
        self._rgb = None          # (rows, 2M) uint32, the QImage's own memory, top row first
        self._vals = None         # (rows, M) uint8: the values behind the colours
        self._qimg = None
        self._valid_from = 0      # oldest column index the ring holds without a gap
        self._next = 0            # one past the newest column written
        self._c0 = self._c1 = 0   # columns drawn
        self._x0 = 0.0            # stream time of column c0's left edge minus `right`
        self.paints = 0
        self.columns_written = 0  # in total (tests: only new columns are written)
        self.last_written = 0     # by the last write()

    def setup(self, grid: ColumnGrid) -> None:
        """Start an empty ring laid out as ``grid`` says."""
        self.slots, self.rows = int(grid.slots), int(grid.rows)
        self.span, self.y0, self.height_ = float(grid.span), float(grid.y0), float(grid.height)
        self.left0, self.col_w = float(grid.left0), float(grid.col_w)
        self._rgb = np.empty((self.rows, 2 * self.slots), dtype=np.uint32)
        self._rgb[:] = self.lut[0]
        self._vals = np.zeros((self.rows, self.slots), dtype=np.uint8)
        self._qimg = pg.functions.ndarray_to_qimage(self._rgb, QImage.Format.Format_RGB32)
        self._valid_from = self._next = 0
        self._c0 = self._c1 = 0
        self.columns_written = self.last_written = 0
        self.update()

    def set_view(self, span: float, ymin: float, ymax: float) -> None:
        """The plot's ranges: ``span`` seconds across, ``ymin .. ymax`` bottom to top."""
        self.span, self.ymin, self.ymax = float(span), float(ymin), float(ymax)
        self.update()

    def write(self, first: int, cols8: np.ndarray) -> None:
        """Colour and store columns ``first .. first + len(cols8) - 1`` ((k, rows) uint8,
        row 0 = lowest value)."""
        k = len(cols8)
        self.last_written = k
        if k == 0 or self._rgb is None:
            return
        if k > self.slots:
            first, cols8 = first + k - self.slots, cols8[-self.slots:]
            k = self.slots
        if first > self._next:      # a gap: older columns in the ring are not continuous
            self._valid_from = first
        slot = (first + np.arange(k)) % self.slots
        vals = cols8[:, ::-1].T     # (rows, k), top row first as the image is drawn
        colours = self.lut[vals]    # the only colouring done
        self._rgb[:, slot] = colours
        self._rgb[:, slot + self.slots] = colours
        self._vals[:, slot] = vals
        self._next = max(self._next, first + k)
        self._valid_from = max(self._valid_from, self._next - self.slots)
        self.columns_written += k

    def scroll_to(self, right: float) -> bool:
        """Put stream time ``right`` (seconds) at the right edge: draw the columns that
        start before it and end after ``right - span``. Returns True when that changed
        the picture."""
        # Columns whose left edge is before the right edge; the widget clips the rest.
        c1 = min(self._next, int(math.floor((right - self.left0) / self.col_w)) + 1)
        first_visible = int(math.floor((right - self.span - self.left0) / self.col_w))
        c0 = max(first_visible, c1 - self.slots, self._valid_from, 0)
        c1 = max(c0, c1)
        x0 = self.left0 + c0 * self.col_w - right
        if (c0, c1, x0) == (self._c0, self._c1, self._x0):
            return False
        self._c0, self._c1, self._x0 = c0, c1, x0
        self.update()
        return True

    def shown_columns(self) -> tuple[int, int]:
        return self._c0, self._c1

    def shown_values(self) -> np.ndarray:
        """(c1 - c0, rows) uint8 values of the columns drawn now, oldest first, row 0 =
        lowest value (as written)."""
        if self._vals is None or self._c1 <= self._c0:
            return np.zeros((0, self.rows), dtype=np.uint8)
        slot = np.arange(self._c0, self._c1) % self.slots
        return self._vals[::-1, slot].T.copy()

    def shown_pixels(self) -> np.ndarray:
        """(rows, c1 - c0) uint32 pixels of the QImage slice drawn now, top row first."""
        if self._rgb is None or self._c1 <= self._c0:
            return np.zeros((self.rows, 0), dtype=np.uint32)
        s = self._c0 % self.slots
        return self._rgb[:, s:s + self._c1 - self._c0].copy()

    def paintEvent(self, ev) -> None:
        p = QPainter(self)
        w, h = self.width(), self.height()
        n = self._c1 - self._c0
        if self._qimg is None or n <= 0 or self.span <= 0 or self.ymax <= self.ymin:
            p.fillRect(self.rect(), self.background)
            p.end()
            return
        sx = w / self.span                        # pixels per second
        sy = h / (self.ymax - self.ymin)          # pixels per value unit
        dst = QRectF(w + self._x0 * sx, h - (self.y0 + self.height_ - self.ymin) * sy,
                     n * self.col_w * sx, self.height_ * sy)
        if dst.left() > 0:                        # no audio there yet
            p.fillRect(QRectF(0, 0, dst.left(), h), self.background)
        if dst.right() < w:
            p.fillRect(QRectF(dst.right(), 0, w - dst.right(), h), self.background)
        if dst.top() > 0:
            p.fillRect(QRectF(0, 0, w, dst.top()), self.background)
        if dst.bottom() < h:
            p.fillRect(QRectF(0, dst.bottom(), w, h - dst.bottom()), self.background)
        # Columns c0..c1-1 are contiguous in the double-width canvas.
        p.drawImage(dst, self._qimg, QRectF(self._c0 % self.slots, 0, n, self.rows))
        p.end()
        self.paints += 1


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
            p.vb.disableAutoRange()
        self.spec.setXLink(self.wave)
        self.wave.setLabel("left", "Amplitude")
        self.wave.getAxis("bottom").setStyle(showValues=False)
        self.wave.setYRange(-1, 1, padding=0.02)
        self.spec.setLabel("left", "Frequency", units="Hz")
        self.spec.getAxis("left").enableAutoSIPrefix(False)
        self.spec.setLabel("bottom", "Time before now", units="s")
        self.spec.getAxis("bottom").enableAutoSIPrefix(False)
        # The moving pictures: opaque widgets over the two view boxes (see ScrollingCanvas).
        bg, fg = pg.mkColor(theme.PLOT_BG), pg.mkColor(theme.WAVE)
        vp = self.glw.viewport()
        self.wave_image = ScrollingCanvas(_rgb32([[bg.red(), bg.green(), bg.blue()],
                                                  [fg.red(), fg.green(), fg.blue()]]),
                                          theme.PLOT_BG, vp)
        self.image = ScrollingCanvas(colour_table(), theme.PLOT_BG, vp)
        for canvas in (self.wave_image, self.image):
            canvas.hide()  # until a recording starts: the empty plots show their axes
        for plot in (self.wave, self.spec):
            plot.vb.sigResized.connect(self._place)
            plot.vb.sigRangeChanged.connect(self._place)
        vp.installEventFilter(self)
        self.monitor = None
        self.clock = ScrollClock()
        self.refreshes = 0
        self._next_col = 0
        self._next_env = 0
        self._seen_samples = 0
        self.set_geometry(48000)

    # --- axes ---------------------------------------------------------------------------
    def set_geometry(self, rate: int, seconds: float = SECONDS, fmax: float = FMAX) -> None:
        """Axes for a live view of a recording at ``rate`` Hz: ``seconds`` before now on
        x, 0 Hz up to the top frequency shown (``fmax`` or Nyquist, whichever is lower)
        on y. Shown before recording starts too, so the empty view already has the
        recording's axes."""
        _, top = live_bins(live_config(int(rate)), fmax)
        self.seconds, self.fmax = float(seconds), top
        self.wave.setXRange(-self.seconds, 0, padding=0)
        self.spec.setXRange(-self.seconds, 0, padding=0)
        self.spec.setYRange(0, top, padding=0)
        self.spec.getAxis("left").setTicks([[(f, f"{f:g}") for f in _ticks(top)]])
        self._place()

    def _place(self, *args) -> None:
        """Lay each canvas exactly over its view box, with the view box's ranges."""
        for plot, canvas in ((self.wave, self.wave_image), (self.spec, self.image)):
            vb = plot.vb
            rect = self.glw.mapFromScene(vb.sceneBoundingRect()).boundingRect()
            canvas.setGeometry(rect)
            (x0, x1), (y0, y1) = vb.viewRange()
            canvas.set_view(x1 - x0, y0, y1)

    def eventFilter(self, obj, ev) -> bool:
        if ev.type() == QEvent.Type.Resize:
            QTimer.singleShot(0, self._place)  # after the layout has followed the resize
        return False

    def axis_ranges(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """((x0, x1), (y0, y1)) of the spectrogram plot as shown."""
        (x0, x1), (y0, y1) = self.spec.vb.viewRange()
        return (x0, x1), (y0, y1)

    # --- data ---------------------------------------------------------------------------
    def attach(self, monitor) -> None:
        """Show ``monitor`` (a LiveMonitor); None detaches and keeps the last picture."""
        self.monitor = monitor
        if monitor is None:
            return
        self.set_geometry(monitor.rate, monitor.seconds, monitor.fmax)
        df = monitor.cfg.rate / monitor.cfg.n_fft
        # Bin b is drawn from f_b - df/2 to f_b + df/2. Spare columns: the partly
        # visible ones at the edges, and the display delay (SPARE_S).
        spare = int(math.ceil(SPARE_S / monitor.column_s)) + 2
        self.image.setup(ColumnGrid(
            slots=monitor.n_cols + spare, rows=monitor.n_bins, span=monitor.seconds, y0=-df / 2,
            height=monitor.n_bins * df, left0=float(monitor.column_left_s(0)),
            col_w=monitor.column_s))
        env_w = monitor.decim / monitor.rate
        self.wave_image.setup(ColumnGrid(
            slots=monitor.points + int(math.ceil(SPARE_S / env_w)) + 2, rows=WAVE_ROWS,
            span=monitor.seconds, y0=-1.0, height=2.0, left0=0.0, col_w=env_w))
        self._place()
        for canvas in (self.wave_image, self.image):
            canvas.show()
        self.clock.reset()
        self._next_col = 0
        self._next_env = 0
        self._seen_samples = 0

    def refresh(self, now: float | None = None) -> bool:
        """Take what the monitor gained since the last call (call after
        ``monitor.update()``) and move the picture to wall time ``now``
        (time.monotonic()). Returns True when the picture moved or changed."""
        m = self.monitor
        if m is None:
            return False
        now = time.monotonic() if now is None else now
        self.refreshes += 1
        self._take_new()
        if m.samples_total != self._seen_samples:
            self._seen_samples = m.samples_total
            self.clock.observe(m.stream_s, now)
        right = self.clock.time(now)
        if right is None:
            return False
        return self._show(right)

    def show_all(self) -> None:
        """Draw up to the newest audio (after the recording stopped)."""
        if self.monitor is not None:
            self._take_new()
            self._show(self.monitor.stream_s)

    def _take_new(self) -> None:
        """Colour and store the columns and envelope points that arrived since the
        last call (only those)."""
        m = self.monitor
        first, cols = m.columns8(self._next_col)
        self.image.write(first, cols)
        self._next_col = first + len(cols)
        first, env = m.envelope_since(self._next_env)
        self.wave_image.write(first, envelope_columns(env))
        self._next_env = first + len(env)

    def _show(self, right: float) -> bool:
        """Put stream time ``right`` at the right edge of both plots."""
        moved = self.image.scroll_to(right)
        return self.wave_image.scroll_to(right) or moved

    @property
    def frames_drawn(self) -> int:
        """Times the spectrogram was painted."""
        return self.image.paints

    def image_data(self) -> np.ndarray | None:
        """The spectrogram columns drawn now, (columns, bins) uint8 0..255 =
        min_db..max_db, oldest first; None before anything was drawn."""
        vals = self.image.shown_values()
        return vals if len(vals) else None
