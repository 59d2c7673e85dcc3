"""Annotation regions on the Review plots (waveform and spectrogram), edited by mouse and keys.

Every edit goes through the core's commands (:mod:`lungapp.annotation.model`) on one undo
stack, and is saved at once to the recording's sidecar (:mod:`lungapp.annotation.sidecar`).
Mouse: drag on the waveform or spectrogram to create a region (Shift+drag pans), drag a
region to move it and its edges to resize it, click it to select it. Keys (while the Review
view has focus): 1-7 event type, Delete, Left/Right move by 10 ms (Ctrl: the start edge,
Shift: the end edge), Ctrl+Z / Ctrl+Shift+Z undo/redo, Ctrl+0..5 the record label, A accept
a suggestion, P play the selected region.
"""

from __future__ import annotations

import functools
import getpass
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QObject, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QImage, QKeySequence, QPen, QShortcut
from PySide6.QtWidgets import QMessageBox, QWidget

from lungapp.annotation.model import (
    AddRegion,
    ChangeRegion,
    Command,
    Region,
    RemoveRegion,
    SetRecordLabel,
    UndoStack,
    now_iso,
)
from lungapp.annotation.sidecar import Sidecar, SidecarConflict
from lungapp.annotation.suggest import suggest_regions
from lungapp.data.labels import EVENT_TYPES, RECORD_LABELS
from lungapp.errors import LungappError

TYPE_COLORS = {  # Okabe-Ito-like, one per event type; always shown with the type's name
    "Normal": (0, 158, 115), "Wheeze": (213, 94, 0), "Rhonchi": (230, 159, 0),
    "Stridor": (204, 121, 167), "Fine Crackle": (0, 114, 178), "Coarse Crackle": (86, 180, 233),
    "Wheeze+Crackle": (120, 60, 160), "Crackle": (0, 114, 178)}
STEP_S = 0.01
ALPHAS = (70, 18)  # region fill on the waveform and (lighter) on the spectrogram
MIN_REGION_S = 0.02
ANNOTATOR_KEY = "annotation/annotator"


def ask_conflict(parent: QWidget | None, path: str) -> str:
    """Ask what to do with a sidecar changed on disk: ``"reload"`` or ``"copy"``."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Labels changed on disk",
                      f"{path} was changed by another program or annotator since you opened it.\n"
                      "Your last edit was not saved over it.", parent=parent)
    reload_btn = box.addButton("Reload theirs", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Keep mine as a copy", QMessageBox.ButtonRole.RejectRole)
    box.exec()
    return "reload" if box.clickedButton() is reload_btn else "copy"


def _pen(region: Region, width: int = 1) -> QPen:
    return _pen_of(region.type, region.pending, width)


def _brush(region: Region, alpha: int) -> QBrush:
    return _brush_of(region.type, region.pending, alpha)


# Cached: a long recording's hundreds of regions share a few dozen pens and brushes, and
# making them anew on every edit cost ~4 ms per plot (300 regions).
@functools.lru_cache(maxsize=256)
def _pen_of(type_: str, pending: bool, width: int) -> QPen:
    return pg.mkPen(TYPE_COLORS.get(type_, (120, 120, 120)), width=width,
                    style=Qt.PenStyle.DashLine if pending else Qt.PenStyle.SolidLine)


@functools.lru_cache(maxsize=256)
def _brush_of(type_: str, pending: bool, alpha: int) -> QBrush:
    """A region's fill; suggestions (pending) at half the alpha, so they read as drafts."""
    r, g, b = TYPE_COLORS.get(type_, (120, 120, 120))
    return pg.mkBrush(r, g, b, alpha // 2 if pending else alpha)


def is_bundled_example(audio) -> bool:
    """Whether ``audio`` is one of the example recordings that ship with lungapp."""
    from lungapp.paths import resources_dir

    try:
        return Path(audio).resolve().is_relative_to((resources_dir() / "examples").resolve())
    except (OSError, ValueError):
        return False


def _read_only_reason(sidecar: Sidecar) -> str | None:
    """Why ``sidecar``'s labels cannot be edited in the app (None: they can)."""
    audio = sidecar.audio
    if sidecar.source == "icbhi":
        # A NAME.json beside ICBHI's NAME.txt would make the folder mix two layouts.
        return (f"{audio.with_suffix('.txt')}: ICBHI cycles are shown read-only; to edit them, "
                "import them into a copy of the recordings (lungapp labels import NAME.txt "
                "--audio-dir COPY)")
    if is_bundled_example(audio):
        # Its sidecar ships with lungapp: in a checkout it is a tracked file, in an
        # installed app usually not writable.
        return (f"{audio}: a bundled example, shown read-only; to label it, copy it and its "
                f"{audio.with_suffix('.json').name} into a folder of yours and open the copy")
    try:
        protected = sidecar.path.exists() and not os.stat(sidecar.path).st_mode & 0o222
    except OSError:
        protected = False
    if protected:  # write-protected by its owner (a mode root's access() would ignore)
        return (f"{sidecar.path}: write-protected, so the labels are shown read-only; make it "
                "writable to label this recording")
    if not os.access(sidecar.path.parent, os.W_OK | os.X_OK):
        # A read-only disk or folder (access() says so even to root): edits would show as
        # made, then vanish on the next recording. A save writes a new file in the folder
        # and renames it over the old, so the folder is what must be writable.
        return (f"{sidecar.path}: cannot be written here (read-only folder or disk), "
                "so the labels are shown read-only; copy the recordings to a folder you can "
                "write to label them")
    shared = _sharing_sidecar(audio)
    if shared:
        # NAME.wav and NAME.flac would both read and write NAME.json: editing one
        # recording's labels would overwrite the other's.
        return (f"{sidecar.path}: shared by {audio.name} and {', '.join(shared)}, so it cannot "
                "tell whose labels it holds; they are shown read-only. Rename one recording "
                "(and move its labels with it) so each has its own labels file")
    return None


def _sharing_sidecar(audio: Path) -> list[str]:
    """The other recordings in ``audio``'s folder with its name (another audio suffix)."""
    from lungapp.gui.review_tasks import audio_extensions

    try:
        names = os.listdir(audio.parent)
    except OSError:
        return []
    extensions = audio_extensions()
    return sorted(n for n in names if n != audio.name and os.path.splitext(n)[0] == audio.stem
                  and os.path.splitext(n)[1].lower() in extensions)


def _tooltip(region: Region) -> str:
    return (f"{region.type}{' (suggested, not accepted)' if region.pending else ''}"
            f"{': ' + region.note if region.note else ''}")


class RegionItem(pg.LinearRegionItem):
    """The selected region on one plot, editable; ``clicked(region id)`` on a left click."""

    clicked = Signal(int)

    def __init__(self, region: Region, selected: bool, duration: float, alpha: int = 70):
        r, g, b = TYPE_COLORS.get(region.type, (120, 120, 120))
        half = alpha // 2 if region.pending else alpha
        super().__init__((region.start_s, region.end_s), brush=pg.mkBrush(r, g, b, half + 40 * selected),
                         pen=_pen(region, 3 if selected else 1),
                         hoverBrush=pg.mkBrush(r, g, b, half + 60),
                         bounds=(0, max(duration, region.end_s)) if duration else None)
        self.region_id = region.id
        self.setZValue(5 + selected)
        self.setToolTip(_tooltip(region))

    def hoverEvent(self, ev) -> None:
        super().hoverEvent(ev)
        if not ev.isExit():  # clicks here are this item's, not the regions' drawn below it
            ev.acceptClicks(Qt.MouseButton.LeftButton)

    def mouseClickEvent(self, ev) -> None:
        super().mouseClickEvent(ev)
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.clicked.emit(self.region_id)


DragTarget = Callable[[int, str], "pg.GraphicsObject | None"]


class RegionsItem(pg.GraphicsObject):
    """All the regions that are not selected, on one plot, as ONE item: it paints a filled
    band (and edge lines) per region intersecting the view, so panning or zooming a long
    recording builds no items at all (building a pair of LinearRegionItems costs ~3 ms).

    A left click on a region emits ``clicked(region id)``; a drag on one asks
    ``drag_target(region id, edge)`` (edge "start", "end" or "" for the body) for the editable
    item to pass the drag to, so an unselected region is moved or resized in one gesture.
    Where regions overlap the one with the latest start wins: it is also the one painted on
    top (regions are painted in order of start).
    """

    clicked = Signal(int)
    EDGE_PX = 4  # a press this close to an edge (in pixels) grabs the edge, as on the items
    MIN_EDGE_PX = 4  # narrower on screen: painted without edges (see edges())

    def __init__(self, alpha: int, drag_target: DragTarget):
        super().__init__()
        self.alpha, self.drag_target = alpha, drag_target
        self.regions: list[Region] = []
        self._starts = self._ends = np.empty(0)
        self._brushes: list[QBrush] = []
        self._pens: list[QPen] = []
        self._hover = -1
        self._drag = None
        self._rect_cache: QRectF | None = None
        self.setZValue(4)

    def set_regions(self, regions: list[Region]) -> None:
        self.regions = sorted(regions, key=lambda r: (r.start_s, r.end_s))
        self._starts = np.array([r.start_s for r in self.regions], dtype=float)
        self._ends = np.array([r.end_s for r in self.regions], dtype=float)
        self._brushes = [_brush(r, self.alpha) for r in self.regions]
        self._pens = [_pen(r) for r in self.regions]
        self._hover = -1
        self.setToolTip("")
        self.update()

    def in_view(self) -> list[int]:
        """Indices (into ``regions``) of the regions intersecting the view: the ones painted."""
        view = self.viewRect()
        if view is None or not len(self._starts):
            return []
        return np.flatnonzero((self._ends >= view.left()) & (self._starts <= view.right())).tolist()

    def index_at(self, x: float, slack: float = 0.0) -> int:
        """The region under time ``x`` (-1: none), counting ``slack`` seconds outside its
        edges; of overlapping ones, the latest start."""
        hits = np.flatnonzero((self._starts - slack <= x) & (self._ends + slack >= x))
        return int(hits[-1]) if len(hits) else -1

    def _edge_slack(self) -> float:
        return self.EDGE_PX * (self.pixelWidth() or 0.0)

    # --- QGraphicsItem -------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        # The whole view: the item paints only what is in it; the cache tells Qt when it moves.
        view = self.viewRect()
        rect = QRectF() if view is None else QRectF(view)
        if rect != self._rect_cache:
            self._rect_cache = rect
            self.prepareGeometryChange()
        return rect

    def viewTransformChanged(self) -> None:
        self._rect_cache = None
        super().viewTransformChanged()

    def paint(self, painter, *args) -> None:
        """The fills as one image strip, then the edges, one draw call per pen (pens are
        shared by type)."""
        view = self.viewRect()
        if view is None:
            return
        idx = self.in_view()
        if not idx:
            return
        self._paint_fills(painter, idx, view)
        px = painter.transform().mapRect(view).width() / view.width() if view.width() > 0 else 0.0
        for pen, lines in self.edges(idx, view, px).values():
            painter.setPen(pen)
            painter.drawLines(lines)

    def edges(self, idx: list[int], view: QRectF, px_per_s: float) -> dict[int, tuple[QPen, list[QLineF]]]:
        """The edge lines to draw, grouped by pen: those of regions at least
        ``MIN_EDGE_PX`` wide on screen. Zoomed out over a long recording, hundreds of
        regions a pixel or two wide would otherwise hide the spectrogram under their edges;
        their fills still show where they are."""
        top, bottom = view.top(), view.bottom()
        lo, hi = view.left(), view.right()
        out: dict[int, tuple[QPen, list[QLineF]]] = {}
        for i in idx:
            if (self._ends[i] - self._starts[i]) * px_per_s < self.MIN_EDGE_PX:
                continue
            lines = out.setdefault(id(self._pens[i]), (self._pens[i], []))[1]
            for x in (self._starts[i], self._ends[i]):
                if lo <= x <= hi:
                    lines.append(QLineF(x, top, x, bottom))
        return out

    def _paint_fills(self, painter, idx: list[int], view: QRectF) -> None:
        """Every fill spans the plot's height, so the fills are one row of pixels: composed
        here (premultiplied "over", in the regions' order, as painting them one by one
        would), then stretched over the plot by one drawImage. Qt's raster engine fills a
        narrow rectangle scanline by scanline: 300 regions of a 10-minute recording cost
        ~14 ms a plot as rectangles, ~0.5 ms as a strip."""
        dev = painter.transform().mapRect(view)
        width = int(np.ceil(dev.width()))
        if width <= 0 or view.width() <= 0:
            return
        px = dev.width() / view.width()
        lo = view.left()
        strip = np.zeros((width, 4), np.float32)  # premultiplied b, g, r, a in 0..1
        for i in idx:
            color = self._brushes[i].color()
            a = min(255, color.alpha() + (60 if i == self._hover else 0)) / 255
            c0 = int(round((max(self._starts[i], lo) - lo) * px))
            c1 = max(c0 + 1, int(round((min(self._ends[i], view.right()) - lo) * px)))
            seg = strip[min(c0, width - 1):min(c1, width)]
            seg *= 1 - a
            seg += (color.blue() / 255 * a, color.green() / 255 * a, color.red() / 255 * a, a)
        pixels = np.ascontiguousarray(np.round(strip * 255).astype(np.uint8))  # alive while drawn
        image = QImage(pixels.data, width, 1, 4 * width, QImage.Format.Format_ARGB32_Premultiplied)
        painter.save()
        painter.resetTransform()
        painter.drawImage(QRectF(dev.left(), dev.top(), width, dev.height()), image)
        painter.restore()

    # --- mouse (pyqtgraph's scene events) ------------------------------------------------
    def hoverEvent(self, ev) -> None:
        i = -1 if ev.isExit() else self.index_at(ev.pos().x())
        if i >= 0:
            ev.acceptClicks(Qt.MouseButton.LeftButton)
        if not ev.isExit() and self.index_at(ev.pos().x(), self._edge_slack()) >= 0:
            ev.acceptDrags(Qt.MouseButton.LeftButton)
        if i != self._hover:
            self._hover = i
            self.setToolTip(_tooltip(self.regions[i]) if i >= 0 else "")
            self.update()

    def mouseClickEvent(self, ev) -> None:
        i = self.index_at(ev.pos().x())
        if ev.button() != Qt.MouseButton.LeftButton or i < 0:
            ev.ignore()
            return
        ev.accept()
        self.clicked.emit(self.regions[i].id)

    def mouseDragEvent(self, ev) -> None:
        if ev.isStart():
            self._drag = self._start_drag(ev)
        if self._drag is None:
            ev.ignore()  # the view box's: create a region, or pan with Shift
            return
        ev.currentItem = self._drag  # the target maps the pointer into its own coordinates
        self._drag.mouseDragEvent(ev)
        if ev.isFinish():
            self._drag = None

    def _start_drag(self, ev):
        if ev.button() != Qt.MouseButton.LeftButton or ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            return None
        x = ev.buttonDownPos().x()
        near = self._edge_slack()
        i = self.index_at(x, near)
        if i < 0:
            return None
        edge = ("start" if abs(x - self._starts[i]) <= near else
                "end" if abs(x - self._ends[i]) <= near else "")
        return self.drag_target(self.regions[i].id, edge)


class AnnotationLayer(QObject):
    """The regions of the open recording on ``plots`` (a RecordingPlots).

    Signals: ``changed()`` after every edit (saved), open and close; ``selectionChanged(id)``
    (-1: none); ``message(text, ms)`` for the status bar.
    """

    changed = Signal()
    annotatorChanged = Signal()
    selectionChanged = Signal(int)
    message = Signal(str, int)

    def __init__(self, plots, settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.plots, self.settings, self.parent_widget = plots, settings, parent
        self.sidecar: Sidecar | None = None
        self._read_only: str | None = None  # why the open labels cannot be edited (None: they can)
        self.save_error: str | None = None  # why the last save of the open labels failed
        self.stack: UndoStack | None = None
        self.selected = -1
        self.default_type = "Wheeze"
        self.items: dict[int, list[RegionItem]] = {}  # the selected region's editable pair
        self._shown: dict[int, tuple[Region, bool]] = {}
        # Every other region: one item per plot (light on the spectrogram, so the sound
        # under a region stays visible).
        self.combined = [RegionsItem(alpha, lambda rid, edge, k=k: self._drag_target(rid, edge, k))
                         for k, alpha in enumerate(ALPHAS)]
        for plot, item in zip(self._plots(), self.combined):
            plot.addItem(item, ignoreBounds=True)
            item.clicked.connect(self.select)
        self._combined_key = None
        self._version = 0  # counts document changes (open, edits)
        self._preview: list[tuple[pg.PlotItem, pg.LinearRegionItem]] = []
        self.ask_conflict: Callable[[QWidget | None, str], str] = ask_conflict
        for plot in (plots.wave, plots.spec):
            self._hook_drag(plot.getViewBox())

    # --- the document --------------------------------------------------------------------
    @property
    def doc(self):
        return None if self.sidecar is None else self.sidecar.doc

    def annotator(self) -> str:
        """The name set in the Labels panel (kept in the settings), else the login name: every
        label records someone."""
        name = str(self.settings.value(ANNOTATOR_KEY, "") or "").strip()
        if name:
            return name
        try:
            return getpass.getuser()
        except (KeyError, OSError):  # no user name in the environment or passwd
            return "unknown"

    def set_annotator(self, name: str) -> None:
        """Keep the annotator's name; the open recording is shown again as theirs (each
        annotator edits their own labels of it)."""
        if name == str(self.settings.value(ANNOTATOR_KEY, "") or "").strip():
            return
        self.settings.setValue(ANNOTATOR_KEY, name)
        if self.sidecar is not None:
            self.open(str(self.sidecar.audio))
        self.annotatorChanged.emit()

    def open(self, audio_path: str) -> None:
        """Show the annotator's labels of ``audio_path`` (their part of its sidecar, or ICBHI
        cycles): another annotator's labels of it are kept apart, never edited here."""
        sidecar = Sidecar(audio_path, self.annotator())
        try:
            sidecar.reload()
        except LungappError as err:
            self.close()
            self.message.emit(f"{err} (labels not shown; fix the file to annotate)", 10000)
            return
        self.sidecar, self.save_error = sidecar, None
        self._read_only = _read_only_reason(sidecar)
        self._version += 1
        self.stack = UndoStack(sidecar.doc, on_change=self._after_edit)
        self.selected = -1
        self.redraw()
        self.changed.emit()
        others = sidecar.others()
        if self._read_only is not None:  # said now, not first at an edit that is refused
            self.message.emit(self._read_only, 15000)
        elif others:
            self.message.emit(f"Also labelled by {', '.join(others)}: you see and edit only your "
                              f"own labels ({sidecar.annotator}); compare them with Labels ▾ "
                              "Agreement", 10000)

    def close(self) -> None:
        self.sidecar, self.stack, self.selected, self._read_only = None, None, -1, None
        self.save_error = None
        self._version += 1
        self.redraw()
        self.changed.emit()

    def push(self, command: Command) -> None:
        if self.stack is None or self._refused():
            return
        self.stack.push(command)

    def read_only_reason(self) -> str | None:
        """Why the open recording's labels cannot be edited here (None: they can); found
        once when it opens, not on every edit."""
        return self._read_only

    def _refused(self) -> bool:
        """Whether the open labels are read-only (then says why and redraws them as they are,
        undoing what a drag showed)."""
        reason = self.read_only_reason()
        if reason is None:
            return False
        self.message.emit(reason, 10000)
        self.redraw()
        self.changed.emit()  # the panel shows the labels as they are (say, the record label)
        return True

    def undo(self) -> None:
        if self.stack is not None:
            self.stack.undo()

    def redo(self) -> None:
        if self.stack is not None:
            self.stack.redo()

    def _after_edit(self) -> None:
        self._version += 1
        if self.doc is not None and self.selected != -1 and not self._exists(self.selected):
            self.selected = -1
        self._save()
        self.redraw()
        self.changed.emit()

    def _exists(self, region_id: int) -> bool:
        return any(r.id == region_id for r in self.doc.regions)

    def _save(self) -> None:
        self.save_error = None
        try:
            self.sidecar.save()
        except SidecarConflict as err:
            self._resolve_conflict(str(err))
        except OSError as err:
            # Kept until a save succeeds: the panel says "not saved" while it is set.
            self.save_error = f"{self.sidecar.path}: cannot save the labels ({err.strerror or err})"
            self.message.emit(self.save_error, 15000)

    def _resolve_conflict(self, text: str) -> None:
        """Never overwrite: keep the user's labels as a copy if they wish, then show the
        file as it is on disk now (a fresh undo stack: the old edits belong to other labels)."""
        self.message.emit(text, 15000)
        if self.ask_conflict(self.parent_widget, str(self.sidecar.path)) == "copy":
            try:
                copy = self.sidecar.save_copy()
            except OSError as err:  # a full disk: the edit stays here, unsaved, and says so
                self.save_error = (f"{self.sidecar.path}: your labels could not be kept as a copy "
                                   f"({err.strerror or err}); they are not saved")
                self.message.emit(self.save_error, 15000)
                return
            self.message.emit(f"Your labels were kept in {copy}", 15000)
        self.open(str(self.sidecar.audio))

    # --- edits ---------------------------------------------------------------------------
    def select(self, region_id: int) -> None:
        self.selected = region_id if self.doc is not None and self._exists(region_id) else -1
        self.redraw()
        self.selectionChanged.emit(self.selected)

    def add(self, start_s: float, end_s: float, type_: str | None = None) -> int:
        region = Region(start_s, end_s, type_ or self.default_type, author=self.annotator(),
                        time=now_iso())
        if self.stack is None or self._refused():
            return -1
        self.selected = region.id  # drawn selected at once
        self.push(AddRegion(region))
        self.selectionChanged.emit(region.id)
        return region.id

    def change(self, region_id: int, **changes) -> None:
        region = self.doc.region(region_id)
        if all(getattr(region, k) == v for k, v in changes.items()):
            return
        try:
            self.push(ChangeRegion(self.doc, region_id, author=self.annotator(), **changes))
        except ValueError as err:
            self.message.emit(str(err), 6000)
            self.redraw()

    def delete_selected(self) -> None:
        if self.doc is not None and self.selected != -1:
            self.push(RemoveRegion(self.doc, self.selected))

    def set_type(self, type_: str) -> None:
        self.default_type = type_
        if self.doc is not None and self.selected != -1:
            self.change(self.selected, type=type_)

    def arrow(self, direction: int, shift: bool) -> bool:
        """An arrow key (``direction`` -1 or 1, with or without Shift): with a region
        selected, move it (Shift: its end edge) and return True; else False (the view
        seeks instead)."""
        if self.doc is None or self.selected == -1:
            return False
        self.nudge("end" if shift else "both", direction * STEP_S)
        return True

    def nudge(self, which: str, delta: float) -> None:
        """Move the selected region (``which`` = "both") or one edge ("start"/"end")."""
        if self.doc is None or self.selected == -1:
            return
        r = self.doc.region(self.selected)
        start = max(0.0, r.start_s + delta) if which in ("both", "start") else r.start_s
        end = r.end_s + (start - r.start_s if which == "both" else 0.0)
        if which == "end":
            end = r.end_s + delta
        limit = self.plots.duration or end
        # An edge stops MIN_REGION_S from the other, as when drawing (a shorter region, say
        # an imported point label, may still grow).
        too_short = which != "both" and end - start < min(MIN_REGION_S, r.end_s - r.start_s)
        # A region that already runs past the end (an import) may move or shrink back in.
        inward = end <= r.end_s
        if (end <= limit or inward) and start <= end and not too_short:
            self.change(self.selected, start_s=round(start, 4), end_s=round(end, 4))
        elif end > limit:
            self.message.emit(f"A region cannot end after the recording's end ({limit:.2f} s)", 4000)

    def set_record_label(self, label: str | None) -> None:
        if self.doc is not None and label != self.doc.record_label:
            self.push(SetRecordLabel(self.doc, label, author=self.annotator()))

    def accept(self, region_id: int) -> None:
        if self.doc is not None and self.doc.region(region_id).pending:
            self.change(region_id, accepted=True)

    def suggest(self, windows, threshold: float, noisy_ranges=()) -> int:
        """Add the model's draft regions (not where an identical one exists); returns how many."""
        if self.doc is None or self._refused():  # read-only labels: nothing is added (said once)
            return 0
        have = {(round(r.start_s, 3), round(r.end_s, 3)) for r in self.doc.regions}
        new = [r for r in suggest_regions(windows, threshold, noisy_ranges=noisy_ranges)
               if (round(r.start_s, 3), round(r.end_s, 3)) not in have]
        for region in new:
            self.push(AddRegion(region))
        return len(new)

    # --- drawing -------------------------------------------------------------------------
    def redraw(self) -> None:
        """Show the selected region as an editable pair of items and every other region on
        the two combined items. Neither depends on the view: panning and zooming only repaint.
        The pair is rebuilt only when the selected region changes, the combined items only
        with the document or the selection."""
        chosen = self.doc.region(self.selected) if self.doc is not None and self.selected != -1 else None
        for rid in list(self.items):
            if chosen is None or self._shown[rid][0] is not chosen:
                self._remove_pair(rid)
        if chosen is not None and chosen.id not in self.items:
            self._add_pair(chosen)
        key = (self._version, self.selected)
        if key != self._combined_key:
            self._combined_key = key
            rest = [] if self.doc is None else [r for r in self.doc.regions if r.id != self.selected]
            for item in self.combined:
                item.set_regions(rest)

    def _add_pair(self, region: Region) -> None:
        pair = [RegionItem(region, region.id == self.selected, self.plots.duration, alpha)
                for alpha in ALPHAS]
        for plot, item in zip(self._plots(), pair):
            plot.addItem(item, ignoreBounds=True)
            item.clicked.connect(self.select)
            item.sigRegionChanged.connect(lambda it, p=pair: self._mirror(it, p))
            item.sigRegionChangeFinished.connect(
                lambda it: QTimer.singleShot(0, lambda: self._moved(it)))
        self.items[region.id] = pair
        self._shown[region.id] = (region, region.id == self.selected)

    def _remove_pair(self, region_id: int) -> None:
        for plot, item in zip(self._plots(), self.items.pop(region_id)):
            plot.removeItem(item)
        del self._shown[region_id]

    def _plots(self) -> tuple:
        return self.plots.wave, self.plots.spec

    def _drag_target(self, region_id: int, edge: str, plot_index: int):
        """A drag began on an unselected region of plot ``plot_index``: select it (which
        builds its editable pair) and return the item, or its edge line, that takes the drag."""
        self.select(region_id)
        if region_id not in self.items:
            return None
        item = self.items[region_id][plot_index]
        return {"start": item.lines[0], "end": item.lines[1]}.get(edge, item)

    def _mirror(self, item: RegionItem, pair: list[RegionItem]) -> None:
        for other in pair:
            if other is not item:
                other.blockSignals(True)
                other.setRegion(item.getRegion())
                other.blockSignals(False)

    def _moved(self, item: RegionItem) -> None:
        if self.doc is None or not self._exists(item.region_id):
            return
        start, end = (float(v) for v in item.getRegion())
        self.selected = item.region_id
        self.change(item.region_id, start_s=round(max(0.0, start), 4), end_s=round(end, 4))
        self.selectionChanged.emit(self.selected)

    # --- drag to create ------------------------------------------------------------------
    def _hook_drag(self, vb) -> None:
        """Left-drag on the plot creates a region (Shift+drag keeps the plot's pan)."""
        original = vb.mouseDragEvent

        def drag(ev, axis=None):
            shift = ev.modifiers() & Qt.KeyboardModifier.ShiftModifier
            if self.doc is None or ev.button() != Qt.MouseButton.LeftButton or shift:
                return original(ev, axis=axis)
            ev.accept()
            self._drag_create(vb, ev)

        vb.mouseDragEvent = drag

    def _drag_create(self, vb, ev) -> None:
        end = self.plots.duration or 0.0
        x0 = min(max(vb.mapSceneToView(ev.buttonDownScenePos()).x(), 0.0), end)
        x1 = min(max(vb.mapSceneToView(ev.scenePos()).x(), 0.0), end)
        lo, hi = min(x0, x1), max(x0, x1)
        if ev.isStart():
            self._clear_preview()
            self._drag_sidecar = self.sidecar  # the labels the drag was started on
            for plot in (self.plots.wave, self.plots.spec):
                item = pg.LinearRegionItem((lo, hi), movable=False, brush=pg.mkBrush(80, 80, 80, 50))
                plot.addItem(item, ignoreBounds=True)
                self._preview.append((plot, item))
        for _, item in self._preview:
            item.setRegion((lo, hi))
        if ev.isFinish():
            self._clear_preview()
            started_on, self._drag_sidecar = getattr(self, "_drag_sidecar", None), None
            if started_on is not self.sidecar:  # another recording opened mid-drag: nothing made
                return
            if hi - lo >= MIN_REGION_S:
                self.add(round(lo, 4), round(hi, 4))

    def _clear_preview(self) -> None:
        for plot, item in self._preview:
            plot.removeItem(item)
        self._preview = []

    # --- keys ----------------------------------------------------------------------------
    def install_shortcuts(self, widget: QWidget) -> list[QShortcut]:
        """The annotation keys, active while ``widget`` or a child of it has focus."""
        keys: list[tuple[str, Callable[[], None]]] = [
            ("Delete", self.delete_selected), ("Backspace", self.delete_selected),
            # Left/Right and Shift+Left/Right are the view's (they seek when no region is
            # selected): see arrow().
            ("Ctrl+Left", lambda: self.nudge("start", -STEP_S)),
            ("Ctrl+Right", lambda: self.nudge("start", STEP_S)),
            ("Ctrl+Z", self.undo), ("Ctrl+Shift+Z", self.redo), ("Ctrl+Y", self.redo),
            ("A", lambda: self.selected != -1 and self.accept(self.selected)),
            ("Ctrl+0", lambda: self.set_record_label(None))]
        keys += [(str(i), lambda t=t: self.set_type(t)) for i, t in enumerate(EVENT_TYPES, start=1)]
        keys += [(f"Ctrl+{i}", lambda lab=lab: self.set_record_label(lab))
                 for i, lab in enumerate(RECORD_LABELS, start=1)]
        shortcuts = []
        for key, slot in keys:
            sc = QShortcut(QKeySequence(key), widget)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)
            shortcuts.append(sc)
        return shortcuts
