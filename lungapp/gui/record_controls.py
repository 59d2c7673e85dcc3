"""The Record view's controls: the Record/Stop button with the elapsed time and the
overflow count under it, and the banner offering interrupted recordings back."""

from __future__ import annotations

import datetime as _dt

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from lungapp.audio.recorder import PARTIAL_SUFFIX, describe_interrupted

BUTTON_STYLE = "font-size: 16pt; font-weight: bold;"
RECORDING_STYLE = " background: #D55E00; color: white;"
WARNING_STYLE = "color: #a03000; font-weight: bold;"


def fmt_time(s: float) -> str:
    """Seconds as ``mm:ss.s`` (the recording clock)."""
    return f"{int(s // 60):02d}:{s % 60:04.1f}"


class RecordControls(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.record_button = QPushButton("● Record")
        self.record_button.setMinimumSize(180, 64)
        self.record_button.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.record_button.setStyleSheet(BUTTON_STYLE)
        self.elapsed_label = QLabel("00:00.0")
        self.elapsed_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setPointSize(16)
        self.elapsed_label.setFont(mono)  # a font, not a style sheet: its metrics size the label
        self.overflow_label = QLabel("Overflows: 0")
        self.overflow_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # Fixed sizes: labels updated every frame must not re-lay-out the window.
        fm = self.elapsed_label.fontMetrics()
        self.elapsed_label.setFixedSize(fm.horizontalAdvance("00:00.0 / 00:00.0") + 16,
                                        fm.height() + 6)
        fm = self.overflow_label.fontMetrics()
        self.overflow_label.setFixedSize(fm.horizontalAdvance("Overflows: 9999, lost 99999999 frames") + 8,
                                         fm.height() + 4)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.record_button)
        lay.addWidget(self.elapsed_label)
        lay.addWidget(self.overflow_label)

    def show_button(self, text: str, enabled: bool, recording: bool) -> None:
        """The button's ``text``, whether it can be pressed, and its recording colour."""
        self.record_button.setText(text)
        self.record_button.setEnabled(enabled)
        self.record_button.setStyleSheet(BUTTON_STYLE + (RECORDING_STYLE if recording else ""))

    def show_progress(self, recording, duration_s: float | None) -> None:
        """Elapsed time (of ``duration_s``, None: until stopped), overflows and lost frames
        of ``recording`` (a :class:`~lungapp.audio.recorder.Recording`)."""
        self.elapsed_label.setText(fmt_time(recording.elapsed_s)
                                   + (f" / {fmt_time(duration_s)}" if duration_s else ""))
        over, lost = recording.overflows, recording.lost_frames
        self.overflow_label.setText(f"Overflows: {over}" + (f", lost {lost} frames" if lost else ""))
        style = WARNING_STYLE if over or lost else ""
        if self.overflow_label.styleSheet() != style:  # re-styling is not free: only on change
            self.overflow_label.setStyleSheet(style)


def local_time(iso: str | None) -> str:
    """A sidecar's UTC time ("2026-12-05T11:57:15Z") as this computer's local time,
    "2026-12-05 12:57"; the text unchanged when it is not a time."""
    if not iso:
        return ""
    try:
        t = _dt.datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return str(iso)
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.UTC)
    return t.astimezone().strftime("%Y-%m-%d %H:%M")


def interrupted_text(paths: list, shown: int = 5) -> str:
    """The banner's text for interrupted recordings ``paths`` (``.wav.partial`` files):
    how many, and a line for each of the first ``shown`` (name, ~seconds, start time,
    site, patient)."""
    lines = []
    for p in paths[:shown]:
        info = describe_interrupted(p)
        secs = info.get("approx_seconds")
        extra = ", ".join(str(x) for x in (local_time(info.get("start_time")), info.get("site"),
                                           info.get("patient_id")) if x)
        lines.append(f"• {p.name[:-len(PARTIAL_SUFFIX)]}"
                     + (f" (~{secs:g} s" + (f", {extra})" if extra else ")") if secs is not None else ""))
    more = len(paths) - shown
    return (f"{len(paths)} recording(s) were interrupted (the app was closed or "
            "crashed while recording). Recover them?\n" + "\n".join(lines)
            + (f"\n…and {more} more" if more > 0 else ""))


class InterruptedBanner(QFrame):
    """Offers the recordings a killed run left behind: Recover, or Later (hides)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setStyleSheet("QFrame { background: #fff4d6; border: 1px solid #e0b84d; }")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.recover_button = QPushButton("Recover")
        self.later_button = QPushButton("Later")
        self.later_button.clicked.connect(self.hide)
        row = QHBoxLayout(self)
        row.addWidget(self.text, 1)
        row.addWidget(self.recover_button)
        row.addWidget(self.later_button)
        self.hide()

    def offer(self, paths: list) -> None:
        """Show the banner for ``paths``, or hide it when there are none."""
        if not paths:
            self.hide()
            return
        self.text.setText(interrupted_text(paths))
        self.show()
