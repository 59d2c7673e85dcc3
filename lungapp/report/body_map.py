"""The body map: front and back chest outlines with the auscultation sites, each filled
with its result's colour (QPainter, so the same drawing serves the PDF and the GUI)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen

from lungapp.audio.recorder import SITES

# Fill colour of a site by state; a site with no recording yet is drawn as an empty ring.
STATE_COLOURS = {"normal": "#2e9e6b", "abnormal": "#d9480f", "poor quality": "#9e9e9e",
                 "not analysed": "#cfd8e3", "missing": "#ffffff"}
TO_RECORD = "to record"

# Site centres in a unit box per view (x 0..1 across the view, y 0..1 down). In the front
# view the patient's left is on the viewer's right; in the back view, on the viewer's left.
FRONT_SITES = {"Trachea": (0.5, 0.12), "Anterior right": (0.36, 0.38), "Anterior left": (0.64, 0.38),
               "Lateral right": (0.18, 0.62), "Lateral left": (0.82, 0.62)}
BACK_SITES = {"Posterior left": (0.36, 0.42), "Posterior right": (0.64, 0.42),
              "Posterior left lower": (0.36, 0.68), "Posterior right lower": (0.64, 0.68)}


def _torso(r: QRectF) -> QPainterPath:
    """A simple torso outline (neck, shoulders, chest) inside ``r``."""
    x, y, w, h = r.x(), r.y(), r.width(), r.height()
    p = QPainterPath(QPointF(x + 0.42 * w, y))
    p.lineTo(x + 0.42 * w, y + 0.1 * h)
    p.cubicTo(x + 0.2 * w, y + 0.12 * h, x + 0.05 * w, y + 0.14 * h, x + 0.05 * w, y + 0.3 * h)
    p.lineTo(x + 0.1 * w, y + h)
    p.lineTo(x + 0.9 * w, y + h)
    p.lineTo(x + 0.95 * w, y + 0.3 * h)
    p.cubicTo(x + 0.95 * w, y + 0.14 * h, x + 0.8 * w, y + 0.12 * h, x + 0.58 * w, y + 0.1 * h)
    p.lineTo(x + 0.58 * w, y)
    return p


def paint_body_map(painter: QPainter, rect: QRectF, states: dict[str, str],
                   planned: list[str] | None = None) -> None:
    """Draw both views in ``rect``. ``states``: {site: state (a key of STATE_COLOURS)};
    ``planned``: the sites of the exam protocol, drawn as empty rings when not in ``states``
    (None: the recorder's seven sites; the lower posterior ones only when recorded)."""
    planned = list(SITES) if planned is None else planned
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    half = rect.width() / 2
    views = (("Front", FRONT_SITES, QRectF(rect.x(), rect.y(), half, rect.height())),
             ("Back", BACK_SITES, QRectF(rect.x() + half, rect.y(), half, rect.height())))
    for title, sites, box in views:
        _paint_view(painter, box, title, sites, states, planned)
    painter.restore()


def _paint_view(painter: QPainter, box: QRectF, title: str, sites: dict, states: dict[str, str],
                planned: list[str]) -> None:
    title_h = box.height() * 0.1
    body = box.adjusted(box.width() * 0.08, title_h, -box.width() * 0.08, 0)
    font = QFont(painter.font())
    font.setPixelSize(max(8, int(title_h * 0.6)))
    painter.setFont(font)
    painter.setPen(QPen(QColor("#333333")))
    painter.drawText(QRectF(box.x(), box.y(), box.width(), title_h), Qt.AlignmentFlag.AlignCenter, title)
    painter.setPen(QPen(QColor("#555555"), max(1.0, box.width() / 150)))
    painter.setBrush(QColor("#f7f3ee"))
    painter.drawPath(_torso(body))
    _paint_sides(painter, body, title_h * 0.7, front=title == "Front")
    radius = body.width() * 0.085
    for site, (ux, uy) in sites.items():
        if site not in states and site not in planned:
            continue
        centre = QPointF(body.x() + ux * body.width(), body.y() + uy * body.height())
        _paint_site(painter, centre, radius, states.get(site))


def _paint_sides(painter: QPainter, body: QRectF, size: float, front: bool) -> None:
    """"R" and "L" low inside the outline: in the front view the patient's right is on the
    viewer's left, in the back view on the viewer's right."""
    font = QFont(painter.font())
    font.setPixelSize(max(7, int(size)))
    painter.setFont(font)
    painter.setPen(QPen(QColor("#555555")))
    y, w = body.bottom() - size * 2, body.width() * 0.3
    left, right = ("R", "L") if front else ("L", "R")
    painter.drawText(QRectF(body.x() + body.width() * 0.1, y, w, size * 1.5), Qt.AlignmentFlag.AlignCenter, left)
    painter.drawText(QRectF(body.right() - body.width() * 0.1 - w, y, w, size * 1.5),
                     Qt.AlignmentFlag.AlignCenter, right)


def _paint_site(painter: QPainter, centre: QPointF, radius: float, state: str | None) -> None:
    if state is None:  # still to record: an empty dashed ring
        pen = QPen(QColor("#333333"), max(1.0, radius / 6), Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
    else:
        painter.setPen(QPen(QColor("#222222"), max(1.0, radius / 8)))
        painter.setBrush(QColor(STATE_COLOURS[state]))
    painter.drawEllipse(centre, radius, radius)
    if state == "missing":  # a file moved or deleted outside the app: crossed out
        painter.drawLine(centre + QPointF(-radius * 0.6, -radius * 0.6), centre + QPointF(radius * 0.6, radius * 0.6))


def site_at(rect: QRectF, point: QPointF) -> str | None:
    """The site under ``point`` in a map drawn in ``rect`` (for clicks in the GUI)."""
    half = rect.width() / 2
    for i, sites in enumerate((FRONT_SITES, BACK_SITES)):
        box = QRectF(rect.x() + i * half, rect.y(), half, rect.height())
        body = box.adjusted(box.width() * 0.08, box.height() * 0.1, -box.width() * 0.08, 0)
        radius = body.width() * 0.085
        for site, (ux, uy) in sites.items():
            c = QPointF(body.x() + ux * body.width(), body.y() + uy * body.height())
            if (point.x() - c.x()) ** 2 + (point.y() - c.y()) ** 2 <= radius ** 2:
                return site
    return None
