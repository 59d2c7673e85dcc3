"""The PDF report, drawn with QPainter on Qt's QPdfWriter (A4, 150 dpi).

Page 1: the patient and visit, the body map, one line per recording (site, result,
quality, the notes beside the result, confirmed labels), the visit's notes. Then each
recording's spectrogram with its timeline. Every page ends with the model and the notice
that lungapp is decision support."""

from __future__ import annotations

import os
import re
from pathlib import Path

from PySide6.QtCore import QBuffer, QIODevice, QMarginsF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPageLayout, QPageSize, QPainter, QPdfWriter, QPen, QTextOption

from lungapp.dsp.spectrogram import SpectrogramConfig
from lungapp.errors import LungappError
from lungapp.fsutil import check_output_file
from lungapp.report.body_map import STATE_COLOURS, paint_body_map
from lungapp.report.content import NOTICE, ReportData, SiteEntry, judged
from lungapp.report.images import hatch_ranges, paint_timeline, spectrogram_rgb, to_qimage

DPI = 150
SPECTROGRAMS_PER_PAGE = 3


FOOTER_H = 60   # device pixels at the bottom of every page for the footer
# Characters a typed or pasted name or note may hold that would garble the page: control
# characters (but line breaks and tabs) and the bidirectional overrides and isolates, an
# unclosed one of which reverses the rest of the line.
_GARBLING = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def plain(text) -> str:
    """``text`` as the report prints a user's field: without the characters that garble a
    line (:data:`_GARBLING`)."""
    return _GARBLING.sub("", str(text))


class _Page:
    """A painter on the writer with a text cursor (y, in device pixels). Text that does not
    fit above the footer goes on to a new page."""

    def __init__(self, writer: QPdfWriter, painter: QPainter, footer: str):
        self.writer, self.painter, self.footer = writer, painter, footer
        self.w, self.h = writer.width(), writer.height()
        self.bottom = self.h - FOOTER_H - 10
        self.y = 0.0

    def font(self, points: float, bold: bool = False) -> None:
        f = QFont("DejaVu Sans")
        f.setPointSizeF(points)
        f.setBold(bold)
        # No ligatures: a path or id copied out of the PDF must be the characters shown
        # ("fl" of ".flac" and "ff" of an id were copied as one ligature character).
        for tag in ("liga", "clig", "dlig"):
            f.setFeature(QFont.Tag(tag), 0)
        self.painter.setFont(f)

    def text(self, text: str, points: float = 10, bold: bool = False, colour: str = "#000000") -> None:
        option = QTextOption()
        option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)  # a long id too
        self.font(points, bold)
        height = self.painter.boundingRect(QRectF(0, 0, self.w, 1e6), text, option).height()
        if self.y + height > self.bottom:
            # Lines (and a paragraph taller than a page) fill this page, then the next.
            if ("\n" in text.strip("\n") or height > self.bottom) and len(text) > 1:
                for part in _halves(text):
                    self.text(part, points, bold, colour)
                return
            if self.y > 0:
                self.new_page()
                self.font(points, bold)
        self.painter.setPen(QColor(colour))
        self.painter.drawText(QRectF(0, self.y, self.w, height), text, option)
        self.y += height + points * DPI / 72 * 0.3

    def finish(self) -> None:
        """Draw the footer (model, notice) at the bottom of the page."""
        self.font(8)
        self.painter.setPen(QColor("#444444"))
        self.painter.drawText(QRectF(0, self.h - FOOTER_H, self.w, FOOTER_H), Qt.AlignmentFlag.AlignBottom
                              | Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap, self.footer)

    def new_page(self) -> None:
        self.finish()
        self.writer.newPage()
        self.y = 0.0


def _halves(text: str) -> tuple[str, str]:
    """``text`` in two parts: at the line break nearest its middle, else the space, else
    the middle."""
    mid = len(text) // 2
    for sep in ("\n", " "):
        cut = min((i for i, c in enumerate(text) if c == sep), key=lambda i: abs(i - mid), default=-1)
        if cut > 0:
            return text[:cut], text[cut + 1:]
    return text[:mid], text[mid:]


def ensure_app():
    """The QGuiApplication that fonts and painting need; created offscreen when there is
    none (a PDF needs no display: the CLI works on a server or over ssh)."""
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance()
    if app is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = ensure_app.app = QGuiApplication([])
    return app


def write_report(data: ReportData, out: str | os.PathLike, cfg: SpectrogramConfig | None = None,
                 *, overwrite: bool = True) -> Path:
    """Write ``data`` as a PDF to ``out`` (written beside it, then renamed into place).
    ``cfg``: the spectrogram config (the active model's; None: the default config).
    ``overwrite``: replace an existing ``out`` (the GUI's Save dialog has asked); with
    False (``lungapp report`` without ``--overwrite``) an existing file is refused before
    anything is drawn, and never replaced. A folder named ``out`` is refused; nothing is
    left behind on a failure."""
    out = Path(out).expanduser()
    if out.suffix.lower() != ".pdf":
        raise LungappError("the report is a PDF; use a .pdf name", out)
    check_output_file(out, overwrite=overwrite)
    tmp = out.with_name(f".{out.name}.partial")
    try:
        if out.parent.exists() and not out.parent.is_dir():
            raise LungappError("is a file, not a folder: the report cannot be written in it", out.parent)
        out.parent.mkdir(parents=True, exist_ok=True)
        # Drawn in memory, then written by Python: Qt's PDF writer says nothing of a
        # write that failed (a full disk left a truncated PDF that passed for a report).
        pdf = render(data, cfg or SpectrogramConfig())
        with open(tmp, "wb") as f:
            f.write(pdf)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, out)
        else:
            _publish_new(tmp, out)
    except OSError as exc:
        where = out if exc.filename in (None, str(tmp)) else Path(exc.filename)
        raise LungappError(f"cannot write the report ({exc.strerror or exc}); nothing was written", where) from None
    finally:
        if tmp.is_file() or tmp.is_symlink():
            tmp.unlink()
    return out


def _publish_new(tmp: Path, out: Path) -> None:
    """Move ``tmp`` to ``out`` unless ``out`` exists (it may have appeared while drawing)."""
    exists = LungappError("already exists; not overwritten (use --overwrite to replace it)", out)
    try:  # link() fails rather than replace a file: no window in which it could be clobbered
        os.link(tmp, out)
    except FileExistsError:
        raise exists from None
    except OSError:  # file systems without hard links
        if os.path.lexists(out):
            raise exists from None
        os.replace(tmp, out)


def render(data: ReportData, cfg: SpectrogramConfig) -> bytes:
    """The report as the bytes of a PDF."""
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setResolution(DPI)
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                                     QMarginsF(15, 15, 15, 15), QPageLayout.Unit.Millimeter))
    writer.setTitle(f"lungapp report: patient {data.patient['identifier']}")
    writer.setCreator("lungapp")
    painter = QPainter()
    if not painter.begin(writer):
        raise LungappError("Qt could not start a PDF")
    page = _Page(writer, painter, _footer(data))
    try:
        _summary_page(page, data)
        _spectrogram_pages(page, data, cfg)
        page.finish()
    finally:
        ended = painter.end()
    if not ended or buffer.size() == 0:
        raise LungappError("Qt could not finish the PDF")
    return bytes(buffer.data())


def _footer(data: ReportData) -> str:
    models = plain(", ".join(data.models()) or "no results yet")
    active = f"; active model: {data.active_model}" if data.active_model else ""
    return (f"Model: {models}{active}. Report made {data.created} by lungapp.\n"
            f"{NOTICE}: every result must be confirmed by a qualified clinician.")


def _summary_page(page: _Page, data: ReportData) -> None:
    p, v = data.patient, data.visit
    page.text("Lung auscultation report", 18, bold=True)
    page.text(NOTICE, 11, bold=True, colour="#8a3300")
    who = ", ".join(plain(x) for x in (p["name"], f"born {p['birth_year']}" if p["birth_year"] else "",
                                       p["sex"]) if x)
    page.text(f"Patient {plain(p['identifier'])}" + (f" ({who})" if who else ""), 12, bold=True)
    page.text(f"Visit {v['number']} on {v['date']}"
              + (f", clinician {plain(v['clinician'])}" if v["clinician"] else ""))
    page.text(f"Report date {data.created}")
    map_h = page.h * 0.3
    if page.y + map_h + 20 > page.bottom:
        page.new_page()
    paint_body_map(page.painter, QRectF(page.w * 0.1, page.y, page.w * 0.55, map_h), data.site_states())
    _legend(page, QRectF(page.w * 0.7, page.y + map_h * 0.15, page.w * 0.3, map_h))
    page.y += map_h + 20
    page.text("Recordings", 12, bold=True)
    for e in data.entries:
        page.text(_entry_line(e), 9)
    page.text("Notes", 12, bold=True)
    page.text(plain(v["notes"] or "(none)"), 9)


def _legend(page: _Page, rect: QRectF) -> None:
    painter, y = page.painter, rect.y()
    page.font(8)
    for state in (*STATE_COLOURS, "to record"):
        painter.setPen(QPen(QColor("#222222"), 1, Qt.PenStyle.SolidLine if state != "to record"
                            else Qt.PenStyle.DashLine))
        painter.setBrush(QColor(STATE_COLOURS.get(state, "#ffffff")))
        painter.drawEllipse(QRectF(rect.x(), y, 22, 22))
        painter.drawText(QRectF(rect.x() + 32, y - 4, rect.width() - 32, 30), Qt.AlignmentFlag.AlignVCenter, state)
        y += 32


def _entry_line(e: SiteEntry) -> str:
    head = f"{plain(e.site)} [{e.uid}]: " + (f"file missing ({e.path}). " if e.missing else "")
    labels = "; ".join(f"{lab['label']} (confirmed by {plain(lab['confirmed_by'])}, {lab['confirmed_at'][:10]})"
                       for lab in e.labels) or "none"
    if e.result is None:
        return head + f"not analysed. Confirmed labels: {labels}"
    r = e.result
    q = r.get("quality") or {}
    stale = f" [made by another model: {r['model']}]" if r.get("stale") else ""
    notes = " ".join((r.get("details") or {}).get("notes") or [])
    return (head + f"{r['decision']}, {r['label']}{_probability_words(r)}"
            f"{stale}. Quality: {q.get('level', '?')}, {q.get('reason', '')}."
            + (f" {notes}" if notes else "") + f" Confirmed labels: {labels}")


def _probability_words(r: dict) -> str:
    """" (abnormal probability 0.91)", or nothing for a recording the quality check refused
    (the model's output on it means nothing)."""
    if not judged(r):
        return ""
    return f" (abnormal probability {r['abnormal_probability']:.2f})"


def _clock(seconds: float) -> str:
    """``m:ss`` (a recording's length)."""
    m, s = divmod(round(seconds), 60)
    return f"{m}:{s:02d}"


def _spectrogram_pages(page: _Page, data: ReportData, cfg: SpectrogramConfig) -> None:
    shown = [e for e in data.entries if not e.missing]
    block_h = (page.h - 120) / SPECTROGRAMS_PER_PAGE
    for i, e in enumerate(shown):
        if i % SPECTROGRAMS_PER_PAGE == 0:
            page.new_page()
        _spectrogram_block(page, e, cfg, block_h)


def _spectrogram_block(page: _Page, e: SiteEntry, cfg: SpectrogramConfig, block_h: float) -> None:
    top = page.y
    r = e.result
    words = f"{r['decision']}, {r['label']}{_probability_words(r)}" if r else "not analysed"
    page.text(f"{plain(e.site)} [{e.uid}]: {words}", 10, bold=True)
    try:
        rgb, duration, whole = spectrogram_rgb(e.path, cfg)
    except LungappError as exc:
        page.text(f"spectrogram unavailable: {exc.problem}", 9, colour="#8a3300")
        page.y = top + block_h
        return
    q = (r.get("quality") or {}) if r else {}
    # A long recording is shown up to images.MAX_SECONDS: so are its windows and stretches.
    noisy = [(float(a), min(float(b), duration)) for a, b in q.get("noisy_ranges") or () if float(a) < duration]
    windows = [w for w in (r["windows"] if r else ()) if (w[0] + w[1]) / 2 <= duration]
    img_h = block_h * 0.55
    image_rect = QRectF(0, page.y, page.w, img_h)
    page.painter.drawImage(image_rect, to_qimage(rgb))
    hatch_ranges(page.painter, image_rect, noisy, duration)
    page.y += img_h + 4
    line_h = block_h * 0.14
    line_rect = QRectF(0, page.y, page.w, line_h)
    # A refused recording's per-window output means nothing: no line is drawn for it.
    refused = q.get("level") == "refuse"
    paint_timeline(page.painter, line_rect, windows if not refused else [], duration,
                   r.get("threshold") if r and not refused else None, hatched=noisy)
    page.y += line_h + 4
    quality = q.get("reason", "")
    shown = (f"the first {duration:.0f} s of {_clock(whole)} shown" if whole > duration + 0.5
             else f"0 to {duration:.1f} s")
    page.text(f"{shown}, {cfg.rate // 2} Hz at the top; line: abnormal probability per window"
              + ("; hatched: noisy" if noisy else "")
              + (f". Quality: {quality}" if quality else ""), 8, colour="#444444")
    page.y = top + block_h
