"""A recording's spectrogram as a QImage, made by lungapp.dsp with the model's config (the
spectrogram the model reads), and its probability timeline drawn under it."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen

from lungapp.audio import audio_info, load_audio
from lungapp.dsp.spectrogram import SpectrogramConfig, normalise, spectrogram

MAX_SECONDS = 60.0  # a report shows at most this much of a recording


def colour_table(name: str = "viridis") -> np.ndarray:
    """(256, 3) uint8 RGB of a pyqtgraph colormap (the one Review draws with)."""
    import pyqtgraph as pg

    return np.asarray(pg.colormap.get(name).getLookupTable(nPts=256, alpha=False), dtype=np.uint8)[:, :3]


def spectrogram_rgb(path: str, cfg: SpectrogramConfig) -> tuple[np.ndarray, float, float]:
    """(rows, cols, 3) uint8 RGB of the first :data:`MAX_SECONDS` at most, low frequencies
    at the bottom; the duration shown and the recording's whole duration, in s."""
    audio = load_audio(path, rate=cfg.rate, max_seconds=MAX_SECONDS)
    spec = normalise(spectrogram(audio.samples, cfg), cfg)  # (frames, bins) in [0, 1]
    idx = np.clip(np.nan_to_num(spec) * 255, 0, 255).astype(np.uint8)
    whole = audio_info(path).duration_s if audio.duration_s >= MAX_SECONDS - 0.5 else audio.duration_s
    return np.ascontiguousarray(colour_table()[idx.T[::-1]]), audio.duration_s, max(whole, audio.duration_s)


def to_qimage(rgb: np.ndarray) -> QImage:
    """A deep copy as a QImage (RGB888), independent of the array."""
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def paint_timeline(painter: QPainter, rect: QRectF, windows: list, duration_s: float,
                   threshold: float | None, hatched=()) -> None:
    """Each window's abnormal probability ([start_s, end_s, p] items) as a line through the
    windows' centres over ``rect`` (0 at the bottom, 1 at the top), the decision threshold
    dashed, over the ``hatched`` (start_s, end_s) ranges (:func:`hatch_ranges`)."""
    painter.save()
    painter.setPen(QPen(QColor("#888888"), 1))
    painter.setBrush(QColor("#fafafa"))
    painter.drawRect(rect)
    hatch_ranges(painter, rect, hatched, duration_s)
    x = _time_to_x(rect, duration_s)
    y = lambda p: rect.bottom() - rect.height() * p
    if threshold is not None:
        painter.setPen(QPen(QColor("#555555"), 1, Qt.PenStyle.DashLine))
        painter.drawLine(QPointF(rect.x(), y(threshold)), QPointF(rect.right(), y(threshold)))
    painter.setPen(QPen(QColor("#d9480f"), 2))
    points = [QPointF(x((start + end) / 2), y(p)) for start, end, p in windows]
    if len(points) == 1:
        painter.drawEllipse(points[0], 2, 2)
    for a, b in zip(points, points[1:]):
        painter.drawLine(a, b)
    painter.restore()


def hatch_ranges(painter: QPainter, rect: QRectF, ranges, duration_s: float) -> None:
    """Hatch the (start_s, end_s) ``ranges`` of a recording of ``duration_s`` over ``rect``
    (the quality check's noisy stretches, as the app hatches them on its plots)."""
    painter.save()
    painter.setPen(QPen(QColor(90, 90, 90), 1))
    painter.setBrush(QBrush(QColor(90, 90, 90), Qt.BrushStyle.BDiagPattern))
    x = _time_to_x(rect, duration_s)
    for a, b in ranges:
        if b > a:
            painter.drawRect(QRectF(x(a), rect.y(), x(b) - x(a), rect.height()))
    painter.restore()


def _time_to_x(rect: QRectF, duration_s: float):
    """t (s) -> x over ``rect`` for a recording of ``duration_s``, clamped to the rect."""
    return lambda t: rect.x() + rect.width() * min(max(t / max(duration_s, 1e-6), 0.0), 1.0)
