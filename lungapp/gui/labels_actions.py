"""The Labels panel's menu: export and import labels, compare two annotators, and add the
confirmed recordings to a training folder — the ``lungapp labels`` commands in the GUI.

The work runs in workers (copying recordings or writing clips can take a while); results and
errors go to the status bar, the agreement report to a dialog. The questions (folders, files,
format) are methods, so tests can answer them.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QInputDialog,
    QMenu,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from lungapp.annotation.formats import FORMATS, default_out
from lungapp.gui.workers import run_task

_USUAL_SKIPS = {"not labelled": "not labelled",
                "has suggestions not yet accepted or rejected": "with suggestions to review"}


def _skipped_words(skipped: list[dict], verb: str = "skipped") -> str:
    """The files a folder action left out, for the status bar: the first named with its
    reason, the rest counted ("" when none)."""
    if not skipped:
        return ""
    more = f" and {len(skipped) - 1} more" if len(skipped) > 1 else ""
    return f"; {verb} {skipped[0]['file']}: {skipped[0]['reason']}{more}"


def _export(task, folder, fmt, out, clips):
    from lungapp.annotation.formats import export_labels

    return export_labels(folder, fmt, out, clips)


def _import(task, files):
    from lungapp.annotation.formats import import_labels

    return import_labels(files)


def _agreement(task, a, b):
    from lungapp.annotation.agreement import agreement

    return agreement(a, b)


def _annotators(task, folder):
    from lungapp.annotation.agreement import annotators_of

    return annotators_of(folder)


def _agreement_between(task, folder, names):
    from lungapp.annotation.agreement import agreement_between

    return agreement_between(folder, names)


def _collect(task, sources, out):
    from lungapp.annotation.collect import collect

    return collect(sources, out)


class LabelsMenu(QMenu):
    """Actions over the Review view ``view`` (its list, its open recording, its window)."""

    def __init__(self, view, parent: QWidget | None = None):
        super().__init__("Labels", parent)
        self.view = view
        self.tasks: list = []
        self.addAction("Export labels…", self.export)
        self.addAction("Import labels (ICBHI, Audacity)…", self.import_files)
        self.addAction("Agreement between two annotators' folders…", self.agreement)
        self.addAction("Agreement between two annotators of one folder…", self.agreement_between)
        self.addAction("Add confirmed recordings to a training folder…", self.collect)

    # --- questions (tests replace these) ---------------------------------------------------
    def ask_folder(self, title: str, start: str) -> str:
        return QFileDialog.getExistingDirectory(self.view, title, start)

    def ask_files(self, title: str, start: str) -> list[str]:
        files, _ = QFileDialog.getOpenFileNames(self.view, title, start,
                                                "Label files (*.txt);;All files (*)")
        return files

    def ask_format(self) -> str:
        fmt, ok = QInputDialog.getItem(self.view, "Export labels", "Format", list(FORMATS), 0, False)
        return fmt if ok else ""

    def ask_names(self, names: list[str]) -> tuple[str, str] | None:
        """Two of the annotators ``names`` (None: cancelled)."""
        first, ok = QInputDialog.getItem(self.view, "Agreement", "First annotator", names, 0, False)
        rest = [n for n in names if n != first]
        second, ok2 = QInputDialog.getItem(self.view, "Agreement", "Second annotator", rest, 0,
                                           False) if ok else ("", False)
        return (first, second) if ok and ok2 else None

    # --- actions -------------------------------------------------------------------------
    def _start(self) -> str:
        path = self.view.current_path
        return os.path.dirname(path) if path else self.view.last_folder()

    def _run(self, fn, *args, done) -> None:
        def failed(message, exc):
            self.view.statusMessage.emit(message, 15000)

        self.tasks.append(run_task(fn, *args, name=fn.__name__, owner=self.view, on_finished=done, on_failed=failed))

    def export(self) -> None:
        folder = self.ask_folder("Export the labels of this folder", self._start())
        fmt = self.ask_format() if folder else ""
        if not fmt:
            return
        beside = default_out(Path(folder).resolve(), fmt)
        out = self.ask_folder(f"Write them into (Cancel: {beside.name} beside the folder)",
                              str(beside.parent))
        self._run(_export, folder, fmt, out or None, False, done=self._exported)

    def _exported(self, res: dict) -> None:
        self.view.statusMessage.emit(f"Exported the labels of {res['recordings']} recordings "
                                     f"({res['format']}) to {res['folder']}"
                                     f"{_skipped_words(res['skipped'])}", 15000 if res["skipped"] else 10000)

    def import_files(self) -> None:
        files = self.ask_files("Import ICBHI cycle files or Audacity label tracks", self._start())
        if files:
            self._run(_import, files, done=self._imported)

    def _imported(self, results) -> None:
        n = sum(r["added"] for r in results)
        self.view.statusMessage.emit(f"Imported {n} regions from {len(results)} file(s)", 10000)
        if self.view.current_path:  # the open recording's sidecar may have changed
            self.view.annotation.layer.open(self.view.current_path)

    def agreement(self) -> None:
        a = self.ask_folder("First annotator's labels (a folder of NAME.json)", self._start())
        b = self.ask_folder("Second annotator's labels", os.path.dirname(a) if a else "") if a else ""
        if a and b:
            self._run(_agreement, a, b, done=self.show_agreement)

    def agreement_between(self) -> None:
        """The agreement of two annotators who labelled the recordings of one folder (each
        sidecar keeps every annotator's labels apart): pick the folder, then two names."""
        folder = self.ask_folder("Folder the annotators labelled", self._start())
        if folder:
            self._run(_annotators, folder, done=lambda names, f=folder: self._names_read(f, names))

    def _names_read(self, folder: str, names: list[str]) -> None:
        if len(names) < 2:
            self.view.statusMessage.emit(f"{folder}: agreement needs two annotators, and the "
                                         f"labels here name {len(names)} "
                                         f"({', '.join(names) or 'none'})", 15000)
            return
        chosen = self.ask_names(names)
        if chosen:
            self._run(_agreement_between, folder, chosen, done=self.show_agreement)

    def show_agreement(self, res: dict) -> QDialog:
        from lungapp.annotation.agreement import format_report

        dlg = QDialog(self.view)
        dlg.setWindowTitle("Agreement between annotators")
        text = QPlainTextEdit(format_report(res))
        text.setReadOnly(True)
        text.setFont(QFont("monospace"))
        QVBoxLayout(dlg).addWidget(text)
        dlg.resize(720, 480)
        dlg.show()
        self.report = dlg
        return dlg

    def collect(self) -> None:
        sources = sorted({os.path.dirname(p) for p in self.view.model.paths()})
        if not sources:
            self.view.statusMessage.emit("Open the labelled recordings first", 5000)
            return
        out = self.ask_folder("Training folder to add the confirmed recordings to", self._start())
        if out:
            self._run(_collect, sources, out, done=lambda res, o=out: self._collected(res, o))

    def _collected(self, res: dict, out: str) -> None:
        skipped = res["skipped"]
        # The usual reasons counted; any other (a sidecar that cannot be read, a different
        # file of the same name already there) named with its file.
        usual = Counter(s["reason"] for s in skipped if s["reason"] in _USUAL_SKIPS)
        words = [f"{n} {_USUAL_SKIPS[r]}" for r, n in usual.items()]
        words = f"; skipped {', '.join(words)}" if words else ""
        self.view.statusMessage.emit(
            f"Added {len(res['added'])} confirmed recordings to {out}{words}"
            f"{_skipped_words([s for s in skipped if s['reason'] not in _USUAL_SKIPS], 'could not add')}",
            15000)
        train = getattr(self.view.window(), "train", None)
        if train is not None and hasattr(train, "folder"):
            train.folder.setText(out)  # the Train tab reads it next
