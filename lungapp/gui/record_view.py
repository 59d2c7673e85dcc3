"""The Record tab: pick the stethoscope and the chest site, press Record, watch the live
spectrogram; after Stop the recording is already on disk and gets analysed.

Thin on purpose: devices, capture, the crash-safe writer and recovery are in
:mod:`lungapp.audio` (no Qt); the live picture's data in :mod:`lungapp.audio.live`. The
view wires small widgets: the settings panel (:mod:`~lungapp.gui.record_settings`: device,
channel, site, patient, duration), the controls and the interrupted-recordings banner
(:mod:`~lungapp.gui.record_controls`), the level meter, the live display
(:mod:`~lungapp.gui.live_spectrogram`) and the result panel.
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
import traceback
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSplitter, QStackedWidget, QVBoxLayout, QWidget

from lungapp.audio.recorder import find_interrupted
from lungapp.gui.level_meter import LevelMeter
from lungapp.gui.levels import auto_levels
from lungapp.gui.live_spectrogram import LiveSpectrogram
from lungapp.gui.plots import RecordingPlots
from lungapp.gui.record_controls import InterruptedBanner, RecordControls
from lungapp.gui.record_settings import RecordSettingsPanel, choose_device_index
from lungapp.gui.result_panel import ResultPanel
from lungapp.gui.review_tasks import load_display
from lungapp.gui.scrolling import scrolling
from lungapp.gui.workers import run_task

FRAME_MS = 30  # ~33 redraws per second
IDLE, STARTING, RECORDING, STOPPING = "idle", "starting", "recording", "stopping"
BUTTON_TEXT = {IDLE: "● Record", STARTING: "Starting…", RECORDING: "■ Stop", STOPPING: "Saving…"}


# --- worker functions (no widgets here) ---------------------------------------------------

def _list_devices(task, rescan: bool):
    """(input devices, whether PortAudio was re-initialised to find new ones)."""
    from lungapp.audio import devices

    rescanned = devices.rescan() if rescan else False
    return devices.list_input_devices(), rescanned


def _start(task, device, settings):
    """Open ``device`` and start recording as ``settings`` (RecordingSettings) say;
    returns (capture, recording, live monitor), also kept as ``task.outcome`` for a
    window closing meanwhile (:meth:`RecordView.shutdown` stops and files it)."""
    from lungapp.audio.live import LiveMonitor
    from lungapp.audio.recorder import start_recording

    cap, rec = start_recording(device, settings)
    task.outcome = (cap, rec, LiveMonitor(cap.ring, cap.rate))
    return task.outcome


def _recover_all(task, paths_):
    """Recover each interrupted recording: (recovered paths as str, one-line errors)."""
    from lungapp.audio.recorder import recover_all

    done, failed = recover_all(paths_)
    return [str(p) for p in done], failed


def _expected_rate(device, preferred: int | None = None) -> int:
    """The rate a recording from ``device`` will most likely use (for the empty view's
    axes; the real choice, :func:`~lungapp.audio.devices.choose_rate`, probes the device)."""
    from lungapp.audio.devices import MIN_RATE, STANDARD_RATES

    if preferred:
        return int(preferred)
    rate = int(round(device.default_samplerate)) if device is not None else 48000
    return rate if rate in STANDARD_RATES and rate >= MIN_RATE else 48000


# --- the view ------------------------------------------------------------------------------

class RecordView(QWidget):
    stateChanged = Signal(str)
    interruptedFound = Signal(str)   # the banner's text, when interrupted recordings are found
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
        self._start_task = None      # the worker opening the device (state STARTING)
        self.last_path: str | None = None
        self._last_prediction = None   # the last recording's Prediction, once analysed
        self._clipped_seen = 0
        self._interrupted: list[Path] = []
        self._build()
        self._expose_children()
        self.timer = QTimer(self)
        self.timer.setInterval(FRAME_MS)
        self.timer.timeout.connect(self._tick)
        self._connect()
        self.record_button.setEnabled(False)
        self.refresh_devices(rescan=False)  # PortAudio has just enumerated the devices
        QTimer.singleShot(0, self.check_interrupted)

    # --- construction -------------------------------------------------------------------
    def _build(self) -> None:
        root = QVBoxLayout(self)
        self.banner = InterruptedBanner()   # interrupted recordings found at start
        root.addWidget(self.banner)
        self.setup_panel = RecordSettingsPanel(self.settings)
        self.controls = RecordControls()
        top = QHBoxLayout()
        top.addWidget(self.setup_panel, 1)
        top.addWidget(self.controls)
        root.addLayout(top)
        self.meter = LevelMeter()
        root.addWidget(self.meter)
        self.status = QLabel("Looking for input devices…")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        root.addWidget(self.status)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.live = LiveSpectrogram()
        # After Stop: the whole recording (not the live view's last seconds) and, once
        # analysed, its timeline.
        self.recorded = RecordingPlots()
        self.recorded.savePngRequested.connect(self.save_view_png)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.live)
        self.stack.addWidget(self.recorded)
        self.result_panel = ResultPanel()
        self.result_panel.show_message("Record to see a result.")
        split.addWidget(self.stack)
        # scrolls instead of squeezing its bars and text when the Record tab is short
        result_area = scrolling(self.result_panel)
        # as wide as the panel needs: only its height scrolls
        result_area.setMinimumWidth(self.result_panel.sizeHint().width()
                                    + result_area.verticalScrollBar().sizeHint().width())
        split.addWidget(result_area)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        root.addWidget(split, 1)

    def _expose_children(self) -> None:
        """The children's controls as the view's own attributes: tests and the record
        benchmark drive the view through them."""
        sp, c = self.setup_panel, self.controls
        self.device_combo, self.refresh_button = sp.device_combo, sp.refresh_button
        self.channel_spin, self.site_combo = sp.channel_spin, sp.site_combo
        self.patient_edit, self.duration_combo = sp.patient_edit, sp.duration_combo
        self.record_button = c.record_button
        self.elapsed_label, self.overflow_label = c.elapsed_label, c.overflow_label
        self.banner_text = self.banner.text
        self.recover_button, self.banner_later = self.banner.recover_button, self.banner.later_button

    def _connect(self) -> None:
        self.record_button.clicked.connect(self.toggle)
        # Space starts and stops a recording (not while typing the patient ID: a line
        # edit keeps its keys).
        self.record_key = QShortcut(QKeySequence(Qt.Key.Key_Space), self)
        self.record_key.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.record_key.activated.connect(lambda: self.toggle())
        self.record_button.setToolTip("Start / stop recording (Space)")
        self.refresh_button.clicked.connect(lambda: self.refresh_devices())
        self.device_combo.aboutToShowPopup.connect(
            lambda: self.refresh_devices(min_interval=self.PICKER_RESCAN_INTERVAL_S))
        self.device_combo.currentIndexChanged.connect(self._device_changed)
        self.recover_button.clicked.connect(self.recover_interrupted)
        self.setup_panel.folderProblem.connect(self.status.setText)
        self.ctx.analysisFinished.connect(self._analysis_finished)
        self.ctx.analysisFailed.connect(self._analysis_failed)
        self.ctx.analysisCancelled.connect(self._analysis_cancelled)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

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
        devices, rescanned = outcome
        self._listing = False
        self._last_listing = time.monotonic()
        self.refresh_button.setEnabled(self.state == IDLE)
        before = self.selected_device()
        old_keys = [(d.name, d.hostapi) for d in self.devices]
        new = [d for d in devices if (d.name, d.hostapi) not in old_keys]
        changed = list(devices) != self.devices
        self.devices = list(devices)
        idx = choose_device_index(self.devices, self._remembered(), before) if self.devices else 0
        self.setup_panel.show_devices(self.devices, idx, changed)
        if not self.devices:
            self._no_device("No audio input device found. Connect a digital stethoscope "
                            "(or microphone) and press Refresh.")
            return
        self._device_changed(self.device_combo.currentIndex(), remember=False)
        if self.state == IDLE:
            self.record_button.setEnabled(True)
            self.status.setText(self._ready_text(new if old_keys else [], rescanned))
        self._rescan_wanted = False

    def _ready_text(self, new_devices, rescanned: bool) -> str:
        """The status line after a listing: how many devices, which are new, and why new
        ones may be missing (no re-scan while audio plays)."""
        msg = f"Ready: {len(self.devices)} input device(s) found."
        if new_devices:
            msg += " New: " + ", ".join(d.name for d in new_devices) + "."
        if not rescanned and self._rescan_wanted:
            from lungapp.audio.devices import abandoned

            if abandoned():
                msg += (" (An input device stopped answering, so the list cannot be re-scanned for "
                        "newly plugged devices until lungapp is restarted.)")
            else:
                msg += (" (Audio is playing, so the list was not re-scanned for newly plugged "
                        "devices; stop playback and press Refresh.)")
        return msg

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
        self.setup_panel.show_channels(d)

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
        self.banner.offer(self._interrupted)
        if self._interrupted:
            self.interruptedFound.emit(self.banner.text.text())
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
        idle = state == IDLE
        self.controls.show_button(
            BUTTON_TEXT[state], state == RECORDING or (idle and bool(self.devices) and not self._listing),
            recording=state == RECORDING)
        self.setup_panel.set_editable(idle, self._listing)
        if idle and self.devices:
            d = self.selected_device()
            self.channel_spin.setEnabled(d is not None and d.max_input_channels > 1)
        self.stateChanged.emit(state)

    def duration_s(self) -> float | None:
        return self.setup_panel.duration_s()

    def start(self) -> None:
        d = self.selected_device()
        if d is None or self.state != IDLE or self._listing:  # (Space: the button is off while listing)
            return
        self._set_state(STARTING)
        self.stack.setCurrentWidget(self.live)
        self._last_prediction = None
        self.status.setText(f"Opening {d.name}…")
        self.result_panel.show_message("Recording…")
        self._start_task = run_task(_start, d, self.setup_panel.recording_settings(self.capture_rate),
                                    name="start recording", on_finished=self._started,
                                    on_failed=self._start_failed)

    def _started(self, parts) -> None:
        if self.state != STARTING:
            # The window closed meanwhile: shutdown() stopped and filed it, or, when it
            # gave up waiting, nothing may go on recording unseen (the file stays).
            if not parts[1].finished:
                parts[1].request_stop()
            return
        self._start_task = None
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
        from lungapp.audio.devices import DeviceUnavailable

        if self.state != STARTING:
            return
        self._start_task = None
        self._set_state(IDLE)
        if isinstance(exc, DeviceUnavailable):
            message = message.replace("try again", "press Refresh")
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
        self.controls.show_progress(rec, self.duration_s())
        if rec.finished:
            self.timer.stop()
            self._finished(rec.result)

    def _finished(self, result, quitting: bool = False) -> None:
        """A recording has ended (Stop, its duration, a failure, the window closing): say
        where it is and emit ``recordingFinished``, which files it in the store (and under
        the guided exam's site), then show and analyse it. ``quitting``: filed only.
        A recording the recorder could not publish (it stays ``.partial``) is neither filed
        nor analysed: it is offered for recovery."""
        if self.monitor is not None and not quitting:
            self.monitor.update()
            self.live.show_all()  # the last columns too (the live view runs a little behind)
        self.last_result = result
        self.recording = self.capture = None
        self.meter.reset()  # no input now: no level, no clipping warning held for ever
        self._set_state(IDLE)
        path = os.path.abspath(result.path)
        if not getattr(result, "published", True) or not os.path.isfile(path):
            self.last_path = None
            self._not_saved(result, path)
            return
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
        if quitting:
            self.ctx.recordingFinished.emit(path)
            return
        self.result_panel.show_message("Analysing…", busy=True)
        self._show_recorded(path)
        self.ctx.recordingFinished.emit(path)
        # Review queues the analysis when it is present; otherwise ask ourselves.
        if not self.ctx.is_queued(path):
            self.ctx.request_analysis(path)

    def _not_saved(self, result, path: str) -> None:
        """The recorder kept the audio only in its ``.partial`` (or nowhere): say so and
        offer it for recovery now (the banner), not only at the next start."""
        why = result.error or f"{path} was not written"
        self.status.setText(f"Recording stopped: {why}.")
        self.result_panel.show_message("The recording was not saved as a WAV file.")
        if path in map(str, self.check_interrupted()):
            self.status.setText(f"Recording stopped: {why}. It can also be recovered now: "
                                "Recover, above.")

    def save_view_png(self, target: str | None = None) -> str | None:
        """Save the live or recorded view, as shown, as a PNG (``target``: no dialog)."""
        from lungapp.gui.png_export import save_png, save_view_dialog

        widget = self.stack.currentWidget()
        stem = Path(self.last_path).stem if self.last_path else None
        if target is None:
            return save_view_dialog(self, widget, stem, lambda text, _ms: self.status.setText(text))
        save_png(widget, target)
        return target

    # --- the recording just made -------------------------------------------------------
    def _show_recorded(self, path: str) -> None:
        """Decode the finished recording in a worker and show all of it."""
        p = self.ctx.predictor()
        cfg = p.card.features.spectrogram if p is not None else None
        self.recorded.clear("Loading the recording…")
        run_task(load_display, path, cfg, name="load recording",
                 on_finished=self._recorded_loaded,
                 on_failed=lambda msg, exc: self.recorded.clear(msg))

    def _recorded_loaded(self, data) -> None:
        if data is None or data["path"] != self.last_path or self.state != IDLE:
            return  # a newer recording started meanwhile
        audio = data["audio"]
        levels = auto_levels(data["spec"])
        if levels is not None:
            self.recorded.set_levels(*levels)
        self.recorded.set_recording(audio.samples, audio.rate, data["spec"], data["cfg"],
                                    wave=data["wave"])
        self.stack.setCurrentWidget(self.recorded)
        self._show_recorded_timeline()

    def _show_recorded_timeline(self) -> None:
        pred = self._last_prediction
        if pred is None:
            self.recorded.clear_timeline("Analysing…")
        elif self.recorded.duration:
            self.recorded.set_timeline(pred, pred.threshold)

    # --- analysis results ---------------------------------------------------------------
    def _analysis_finished(self, path: str, prediction) -> None:
        if self.last_path and os.path.abspath(path) == self.last_path:
            self.result_panel.show_prediction(prediction)
            self._last_prediction = prediction
            self._show_recorded_timeline()

    def _analysis_failed(self, path: str, message: str) -> None:
        if self.last_path and os.path.abspath(path) == self.last_path:
            self.result_panel.show_error(message)

    def _analysis_cancelled(self, path: str) -> None:
        """The queued analysis of the recording shown was dropped (the Review list cleared
        while it waited): say so instead of "Analysing…" for ever."""
        if self.last_path and os.path.abspath(path) == self.last_path and self._last_prediction is None:
            text = "Not analysed: the analysis was cancelled. Open the recording in Review to analyse it."
            self.result_panel.show_message(text)
            self.recorded.clear_timeline("Not analysed")

    # --- leaving ------------------------------------------------------------------------
    @property
    def is_recording(self) -> bool:
        return self.state in (STARTING, RECORDING, STOPPING)

    def shutdown(self, timeout: float = 5.0) -> None:
        """The window is closing or the app quitting: a recording in progress is stopped,
        published and filed as Stop files it (``recordingFinished``; the store hook writes
        before this returns), though not analysed; one still being started is waited for
        (up to ``timeout`` s) and stopped at once. Does nothing when idle."""
        self.timer.stop()
        if self.state == STARTING:
            self._take_over_start(timeout)
        rec = self.recording
        if rec is None:
            return
        try:
            result = rec.stop(timeout)
        except Exception:  # noqa: BLE001 - it stays .partial and is offered at the next start
            traceback.print_exc()
            self.recording = self.capture = None
            self._set_state(IDLE)
            return
        self._finished(result, quitting=True)

    def _take_over_start(self, timeout: float) -> None:
        """Wait for the worker opening the device; what it started becomes this view's
        recording (its own callback is then ignored: the state is no longer STARTING)."""
        task, self._start_task = self._start_task, None
        if task is None:
            return
        deadline = time.monotonic() + timeout
        while not task.is_done and time.monotonic() < deadline:
            time.sleep(0.01)
        parts = getattr(task, "outcome", None)
        if parts is not None:
            self.capture, self.recording, self.monitor = parts
        else:
            self._set_state(IDLE)  # it failed (or hangs: its .partial is offered next time)
