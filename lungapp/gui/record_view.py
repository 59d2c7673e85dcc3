"""The Record tab: pick the stethoscope and the chest site, press Record, watch the live
spectrogram; after Stop the recording is already on disk and gets analysed.

Thin on purpose: devices, capture, the crash-safe writer and recovery are in
:mod:`lungapp.audio` (no Qt); the live picture's data in :mod:`lungapp.audio.live`.
Opening the device, listing devices and recovering files run in workers; a QTimer
(~33 fps) pulls the new samples from the ring buffer and redraws.

Devices plugged in after the app started appear when the device list is re-scanned
(Refresh, opening the picker, showing the tab): PortAudio only sees new devices when it
is re-initialised, which :func:`lungapp.audio.devices.rescan` does while no stream is
open. The chosen device is remembered by name and host API, not by index.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (QComboBox, QFormLayout, QFrame, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QSizePolicy, QSpinBox, QSplitter,
                               QVBoxLayout, QWidget)

from lungapp.audio.recorder import SITES, describe_interrupted, find_interrupted, recover
from lungapp.gui.level_meter import LevelMeter
from lungapp.gui.live_spectrogram import LiveSpectrogram
from lungapp.gui.result_panel import ResultPanel
from lungapp.gui.workers import run_task

DURATIONS = (("15 s", 15.0), ("30 s", 30.0), ("60 s", 60.0), ("Until stopped", None))
FRAME_MS = 30  # ~33 redraws per second
IDLE, STARTING, RECORDING, STOPPING = "idle", "starting", "recording", "stopping"


def _list_devices(task, rescan: bool):
    """(input devices, whether PortAudio was re-initialised to find new ones)."""
    from lungapp.audio import devices

    rescanned = devices.rescan() if rescan else False
    return devices.list_input_devices(), rescanned


def _start(task, device, channel, seconds, site, patient_id, rate=None):
    from lungapp.audio.live import LiveMonitor
    from lungapp.audio.recorder import start_recording

    cap, rec = start_recording(device, rate=rate, channel=channel, seconds=seconds, site=site,
                               patient_id=patient_id)
    return cap, rec, LiveMonitor(cap.ring, cap.rate)


def _expected_rate(device, preferred: int | None = None) -> int:
    """The rate a recording from ``device`` will most likely use (for the empty view's
    axes; the real choice, :func:`~lungapp.audio.devices.choose_rate`, probes the device)."""
    from lungapp.audio.devices import MIN_RATE, STANDARD_RATES

    if preferred:
        return int(preferred)
    rate = int(round(device.default_samplerate)) if device is not None else 48000
    return rate if rate in STANDARD_RATES and rate >= MIN_RATE else 48000


class DevicePicker(QComboBox):
    """The input-device combo box; says when its list is about to be shown, so the
    view can re-scan for devices plugged in meanwhile."""

    aboutToShowPopup = Signal()

    def showPopup(self) -> None:
        self.aboutToShowPopup.emit()
        super().showPopup()


def _recover_all(task, paths_):
    done, failed = [], []
    for p in paths_:
        try:
            done.append(str(recover(p)))
        except Exception as exc:  # noqa: BLE001 - report each file, keep going
            failed.append(str(exc))
    return done, failed


def _fmt_time(s: float) -> str:
    return f"{int(s // 60):02d}:{s % 60:04.1f}"


class RecordView(QWidget):
    stateChanged = Signal(str)
    # Opening the device picker re-scans at most this often (a re-scan is ~50 ms of
    # PortAudio work in a worker; a double click must not do it twice).
    PICKER_RESCAN_INTERVAL_S = 1.0

    def __init__(self, context, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctx = context
        self.settings = context.settings
        self.state = IDLE
        self.devices = []
        self.capture_rate: int | None = None  # None: the device's own rate (choose_rate)
        self._listing = False
        self._rescan_wanted = False
        self._last_listing = 0.0
        self.capture = None
        self.recording = None
        self.monitor = None
        self.last_result = None      # RecordingResult of the last recording
        self.last_path: str | None = None
        self._clipped_seen = 0
        self._interrupted: list[Path] = []

        root = QVBoxLayout(self)

        # Interrupted recordings found at start.
        self.banner = QFrame()
        self.banner.setStyleSheet("QFrame { background: #fff4d6; border: 1px solid #e0b84d; }")
        bl = QHBoxLayout(self.banner)
        self.banner_text = QLabel()
        self.banner_text.setWordWrap(True)
        self.recover_button = QPushButton("Recover")
        self.banner_later = QPushButton("Later")
        bl.addWidget(self.banner_text, 1)
        bl.addWidget(self.recover_button)
        bl.addWidget(self.banner_later)
        self.banner.hide()
        root.addWidget(self.banner)

        # Setup: device, channel, site, patient, duration.
        form = QFormLayout()
        dev_row = QHBoxLayout()
        self.device_combo = DevicePicker()
        self.device_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Look for input devices again (a stethoscope plugged in "
                                       "after the app started appears here)")
        dev_row.addWidget(self.device_combo, 1)
        dev_row.addWidget(self.refresh_button)
        form.addRow("Input device", dev_row)
        self.channel_spin = QSpinBox()
        self.channel_spin.setRange(1, 1)
        self.channel_spin.setToolTip("Which input channel of a multi-channel device to record")
        form.addRow("Channel", self.channel_spin)
        self.site_combo = QComboBox()
        self.site_combo.addItems(SITES)
        form.addRow("Chest site", self.site_combo)
        self.patient_edit = QLineEdit()
        self.patient_edit.setPlaceholderText("optional, e.g. hospital number")
        form.addRow("Patient ID", self.patient_edit)
        self.duration_combo = QComboBox()
        self.duration_combo.addItems([d[0] for d in DURATIONS])
        form.addRow("Duration", self.duration_combo)

        top = QHBoxLayout()
        top.addLayout(form, 1)
        ctl = QVBoxLayout()
        self.record_button = QPushButton("● Record")
        self.record_button.setMinimumSize(180, 64)
        self.record_button.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.record_button.setStyleSheet("font-size: 16pt; font-weight: bold;")
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
        ctl.addWidget(self.record_button)
        ctl.addWidget(self.elapsed_label)
        ctl.addWidget(self.overflow_label)
        top.addLayout(ctl)
        root.addLayout(top)

        self.meter = LevelMeter()
        root.addWidget(self.meter)
        self.status = QLabel("Looking for input devices…")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        root.addWidget(self.status)

        split = QSplitter(Qt.Orientation.Horizontal)
        self.live = LiveSpectrogram()
        self.result_panel = ResultPanel()
        self.result_panel.show_message("Record to see a result.")
        split.addWidget(self.live)
        split.addWidget(self.result_panel)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        root.addWidget(split, 1)

        # Remembered choices (the patient id is deliberately not remembered).
        self.site_combo.setCurrentText(str(self.settings.value("record/site", SITES[0])))
        dur = str(self.settings.value("record/duration", "30 s"))
        if dur in [d[0] for d in DURATIONS]:
            self.duration_combo.setCurrentText(dur)

        self.timer = QTimer(self)
        self.timer.setInterval(FRAME_MS)
        self.timer.timeout.connect(self._tick)

        self.record_button.clicked.connect(self.toggle)
        self.refresh_button.clicked.connect(lambda: self.refresh_devices())
        self.device_combo.aboutToShowPopup.connect(
            lambda: self.refresh_devices(min_interval=self.PICKER_RESCAN_INTERVAL_S))
        self.device_combo.currentIndexChanged.connect(self._device_changed)
        self.site_combo.currentTextChanged.connect(lambda t: self.settings.setValue("record/site", t))
        self.duration_combo.currentTextChanged.connect(
            lambda t: self.settings.setValue("record/duration", t))
        self.channel_spin.valueChanged.connect(lambda v: self.settings.setValue("record/channel", v))
        self.recover_button.clicked.connect(self.recover_interrupted)
        self.banner_later.clicked.connect(self.banner.hide)
        self.ctx.analysisFinished.connect(self._analysis_finished)
        self.ctx.analysisFailed.connect(self._analysis_failed)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

        self.record_button.setEnabled(False)
        self.refresh_devices(rescan=False)  # PortAudio has just enumerated the devices
        QTimer.singleShot(0, self.check_interrupted)

    # --- devices ----------------------------------------------------------------------
    def refresh_devices(self, rescan: bool = True, min_interval: float = 0.0) -> bool:
        """List the input devices again in a worker; with ``rescan``, re-initialise
        PortAudio first (only while idle: never under an open stream) so devices
        plugged in since appear. Returns False when skipped (a listing is running, a
        recording is on, or the last listing is younger than ``min_interval`` s)."""
        if self._listing or self.state != IDLE:
            return False
        if min_interval and time.monotonic() - self._last_listing < min_interval:
            return False
        self._listing = True
        self._rescan_wanted = bool(rescan)
        self.refresh_button.setEnabled(False)
        self.record_button.setEnabled(False)  # not with a device list about to change
        run_task(_list_devices, bool(rescan), name="list input devices",
                 on_finished=self._devices_listed, on_failed=self._devices_failed)
        return True

    def _remembered(self) -> tuple[str | None, str | None]:
        name = self.settings.value("record/device", None)
        hostapi = self.settings.value("record/hostapi", None)
        return (str(name) if name else None), (str(hostapi) if hostapi else None)

    def _devices_listed(self, outcome) -> None:
        from lungapp.audio.devices import same_device

        devices, rescanned = outcome
        self._listing = False
        self._last_listing = time.monotonic()
        self.refresh_button.setEnabled(self.state == IDLE)
        before = self.selected_device()
        old_keys = [(d.name, d.hostapi) for d in self.devices]
        new = [d for d in devices if (d.name, d.hostapi) not in old_keys]
        changed = list(devices) != self.devices
        self.devices = list(devices)
        # Keep the remembered device (by name and host API), else the one shown before,
        # else the system default.
        name, hostapi = self._remembered()
        idx = None
        if name:
            idx = next((i for i, d in enumerate(self.devices) if same_device(d, name, hostapi)), None)
        if idx is None and before is not None:
            idx = next((i for i, d in enumerate(self.devices)
                        if same_device(d, before.name, before.hostapi)), None)
        if idx is None:
            idx = next((i for i, d in enumerate(self.devices) if d.is_default), 0)
        self.device_combo.blockSignals(True)
        if changed:  # an open picker is not disturbed when nothing changed
            self.device_combo.clear()
            for d in self.devices:
                self.device_combo.addItem(d.label)
        if self.devices:
            self.device_combo.setCurrentIndex(idx)
        self.device_combo.blockSignals(False)
        if not self.devices:
            self._no_device("No audio input device found. Connect a digital stethoscope "
                            "(or microphone) and press Refresh.")
            return
        self._device_changed(self.device_combo.currentIndex(), remember=False)
        if self.state == IDLE:
            self.record_button.setEnabled(True)
            msg = f"Ready: {len(self.devices)} input device(s) found."
            if new and old_keys:
                msg += " New: " + ", ".join(d.name for d in new) + "."
            if not rescanned and self._rescan_wanted:
                msg += (" (Audio is playing, so the list was not re-scanned for newly plugged "
                        "devices; stop playback and press Refresh.)")
            self.status.setText(msg)
        self._rescan_wanted = False

    def _devices_failed(self, message: str, exc) -> None:
        self._listing = False
        self._last_listing = time.monotonic()
        self.refresh_button.setEnabled(self.state == IDLE)
        self.devices = []
        self.device_combo.clear()
        self._no_device(f"Recording unavailable: {message}")

    def showEvent(self, ev) -> None:
        super().showEvent(ev)
        # Coming to the Record tab is when a just-plugged stethoscope is expected.
        if self._last_listing:
            self.refresh_devices(min_interval=2.0)

    def _no_device(self, text: str) -> None:
        self.record_button.setEnabled(self.state != IDLE)
        self.status.setText(text)

    def _device_changed(self, index: int, remember: bool = True) -> None:
        if not 0 <= index < len(self.devices):
            return
        d = self.devices[index]
        if remember:
            self.settings.setValue("record/device", d.name)
            self.settings.setValue("record/hostapi", d.hostapi)
        if self.state == IDLE:
            self.live.set_geometry(_expected_rate(d, self.capture_rate))
        self.channel_spin.setRange(1, max(1, d.max_input_channels))
        self.channel_spin.setEnabled(d.max_input_channels > 1)
        ch = int(self.settings.value("record/channel", 1) or 1)
        self.channel_spin.setValue(min(max(1, ch), d.max_input_channels))

    def selected_device(self):
        i = self.device_combo.currentIndex()
        return self.devices[i] if 0 <= i < len(self.devices) else None

    # --- interrupted recordings ---------------------------------------------------------
    def check_interrupted(self) -> list[Path]:
        """Offer recordings a killed run left behind (the banner)."""
        if self.state != IDLE:
            return self._interrupted
        try:
            self._interrupted = find_interrupted()
        except OSError as exc:
            self.status.setText(f"Cannot look for interrupted recordings: {exc}")
            self._interrupted = []
        if not self._interrupted:
            self.banner.hide()
            return []
        lines = []
        for p in self._interrupted[:5]:
            info = describe_interrupted(p)
            secs = info.get("approx_seconds")
            extra = ", ".join(str(x) for x in (info.get("start_time"), info.get("site"),
                                               info.get("patient_id")) if x)
            lines.append(f"• {p.name[:-len('.partial')]}"
                         + (f" (~{secs:g} s" + (f", {extra})" if extra else ")") if secs is not None else ""))
        more = len(self._interrupted) - 5
        self.banner_text.setText(
            f"{len(self._interrupted)} recording(s) were interrupted (the app was closed or "
            "crashed while recording). Recover them?\n" + "\n".join(lines)
            + (f"\n…and {more} more" if more > 0 else ""))
        self.banner.show()
        return self._interrupted

    def recover_interrupted(self) -> None:
        todo = list(self._interrupted)
        if not todo:
            return
        self.recover_button.setEnabled(False)
        run_task(_recover_all, todo, name="recover recordings",
                 on_finished=self._recovered,
                 on_failed=lambda m, e: self._recovered(([], [m])))

    def _recovered(self, outcome) -> None:
        done, failed = outcome
        self.recover_button.setEnabled(True)
        self._interrupted = []
        self.banner.hide()
        msg = f"Recovered {len(done)} recording(s)" + (": " + ", ".join(map(os.path.basename, done)) if done else "")
        if failed:
            msg += ". Could not recover: " + "; ".join(failed)
        self.status.setText(msg)
        for p in done:
            self.ctx.recordingFinished.emit(os.path.abspath(p))

    # --- record / stop ------------------------------------------------------------------
    def toggle(self) -> None:
        if self.state == IDLE:
            self.start()
        elif self.state == RECORDING:
            self.stop()

    def _set_state(self, state: str) -> None:
        self.state = state
        rec = state == RECORDING
        self.record_button.setText({IDLE: "● Record", STARTING: "Starting…",
                                    RECORDING: "■ Stop", STOPPING: "Saving…"}[state])
        self.record_button.setEnabled(state in (RECORDING,) or (state == IDLE and bool(self.devices)
                                                                and not self._listing))
        self.record_button.setStyleSheet("font-size: 16pt; font-weight: bold;"
                                         + (" background: #D55E00; color: white;" if rec else ""))
        for w in (self.device_combo, self.refresh_button, self.channel_spin, self.site_combo,
                  self.patient_edit, self.duration_combo):
            w.setEnabled(state == IDLE)
        self.refresh_button.setEnabled(state == IDLE and not self._listing)
        if state == IDLE and self.devices:
            d = self.selected_device()
            self.channel_spin.setEnabled(d is not None and d.max_input_channels > 1)
        self.stateChanged.emit(state)

    def duration_s(self) -> float | None:
        return DURATIONS[self.duration_combo.currentIndex()][1]

    def start(self) -> None:
        d = self.selected_device()
        if d is None or self.state != IDLE:
            return
        self._set_state(STARTING)
        self.status.setText(f"Opening {d.name}…")
        self.result_panel.show_message("Recording…")
        run_task(_start, d, self.channel_spin.value() - 1, self.duration_s(),
                 self.site_combo.currentText(), self.patient_edit.text().strip(),
                 self.capture_rate, name="start recording", on_finished=self._started,
                 on_failed=self._start_failed)

    def _started(self, parts) -> None:
        self.capture, self.recording, self.monitor = parts
        self._clipped_seen = 0
        self.meter.reset()
        self.live.attach(self.monitor)
        self._set_state(RECORDING)
        dur = self.duration_s()
        self.status.setText(f"Recording from {self.capture.device.name} at "
                            f"{self.capture.rate} Hz to {self.recording.final_path.name}"
                            + (f" ({dur:g} s)" if dur else " (until stopped)"))
        self.timer.start()

    def _start_failed(self, message: str, exc) -> None:
        self._set_state(IDLE)
        self.status.setText(f"Could not start recording: {message}")
        self.result_panel.show_message("Record to see a result.")

    def stop(self) -> None:
        if self.state != RECORDING or self.recording is None:
            return
        self._set_state(STOPPING)
        self.recording.request_stop()  # the writer drains, closes and publishes

    def _tick(self) -> None:
        rec, mon = self.recording, self.monitor
        if rec is None or mon is None:
            self.timer.stop()
            return
        mon.update()
        # Every tick: the picture scrolls evenly between the bursts audio arrives in.
        self.live.refresh(time.monotonic())
        new_clips = mon.clipped - self._clipped_seen
        self._clipped_seen = mon.clipped
        self.meter.set_level(mon.peak, mon.rms, new_clips > 0)
        dur = self.duration_s()
        self.elapsed_label.setText(_fmt_time(rec.elapsed_s)
                                   + (f" / {_fmt_time(dur)}" if dur else ""))
        over = rec.overflows
        self.overflow_label.setText(f"Overflows: {over}" + (f", lost {rec.lost_frames} frames"
                                                          if rec.lost_frames else ""))
        style = "color: #a03000; font-weight: bold;" if over or rec.lost_frames else ""
        if self.overflow_label.styleSheet() != style:  # re-styling is not free: only on change
            self.overflow_label.setStyleSheet(style)
        if rec.finished:
            self.timer.stop()
            self._finished(rec.result)

    def _finished(self, result) -> None:
        if self.monitor is not None:
            self.monitor.update()
            self.live.show_all()  # the last columns too (the live view runs a little behind)
        self.last_result = result
        self.recording = self.capture = None
        self._set_state(IDLE)
        path = os.path.abspath(result.path)
        self.last_path = path
        if result.error:
            self.status.setText(f"Recording stopped: {result.error}. Kept {result.duration_s:.1f} s "
                                f"in {path}")
        else:
            self.status.setText(f"Saved {result.duration_s:.1f} s to {path}"
                                + (f" — {result.overflows} input overflow(s)" if result.overflows else ""))
        if result.frames == 0:
            self.result_panel.show_message("Nothing was recorded.")
            return
        self.result_panel.show_message("Analysing…", busy=True)
        self.ctx.recordingFinished.emit(path)
        # Review queues the analysis when it is present; otherwise ask ourselves.
        if not self.ctx.is_queued(path):
            self.ctx.request_analysis(path)

    # --- analysis results ---------------------------------------------------------------
    def _analysis_finished(self, path: str, prediction) -> None:
        if self.last_path and os.path.abspath(path) == self.last_path:
            self.result_panel.show_prediction(prediction)

    def _analysis_failed(self, path: str, message: str) -> None:
        if self.last_path and os.path.abspath(path) == self.last_path:
            self.result_panel.show_error(message)

    # --- leaving ------------------------------------------------------------------------
    @property
    def is_recording(self) -> bool:
        return self.state in (STARTING, RECORDING, STOPPING)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop and publish a recording in progress (the app is quitting)."""
        self.timer.stop()
        rec = self.recording
        if rec is not None and not rec.finished:
            try:
                rec.stop(timeout)
            except Exception:  # noqa: BLE001 - it stays .partial and is recovered next time
                pass
