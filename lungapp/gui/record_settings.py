"""The Record view's settings panel: input device (with Refresh), channel, chest site,
patient ID, duration and the folder recordings are saved in, turned into a
:class:`~lungapp.audio.recorder.RecordingSettings`.

Site, duration and channel are remembered in QSettings (the patient ID deliberately
not); the device is remembered by the view, by name and host API."""

from __future__ import annotations

import os

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from lungapp import paths
from lungapp import settings as app_settings
from lungapp.audio.recorder import SITES, RecordingSettings
from lungapp.gui.elided_label import ElidedLabel

DURATIONS = (("15 s", 15.0), ("30 s", 30.0), ("60 s", 60.0), ("Until stopped", None))


class DevicePicker(QComboBox):
    """The input-device combo box; says when its list is about to be shown, so the
    view can re-scan for devices plugged in meanwhile."""

    aboutToShowPopup = Signal()

    def showPopup(self) -> None:
        self.aboutToShowPopup.emit()
        super().showPopup()


def choose_device_index(devices, remembered: tuple[str | None, str | None], before) -> int:
    """Which of ``devices`` (DeviceInfo list, not empty) to show: the ``remembered``
    (name, host API), else the device shown ``before`` (a DeviceInfo or None), else the
    system default, else the first."""
    from lungapp.audio.devices import same_device

    name, hostapi = remembered
    idx = None
    if name:
        idx = next((i for i, d in enumerate(devices) if same_device(d, name, hostapi)), None)
    if idx is None and before is not None:
        idx = next((i for i, d in enumerate(devices)
                    if same_device(d, before.name, before.hostapi)), None)
    if idx is None:
        idx = next((i for i, d in enumerate(devices) if d.is_default), 0)
    return idx


class RecordSettingsPanel(QWidget):
    folderProblem = Signal(str)   # the chosen recordings folder cannot be used: why
    def __init__(self, settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings
        self.site_locked = False  # a guided exam chooses the site (see set_editable)
        self.device_combo = DevicePicker()
        self.device_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Look for input devices again (a stethoscope plugged in "
                                       "after the app started appears here)")
        self.channel_spin = QSpinBox()
        self.channel_spin.setRange(1, 1)
        self.channel_spin.setToolTip("Which input channel of a multi-channel device to record")
        self.site_combo = QComboBox()
        self.site_combo.addItems(SITES)
        self.patient_edit = QLineEdit()
        self.patient_edit.setPlaceholderText("optional, e.g. hospital number")
        self.duration_combo = QComboBox()
        self.duration_combo.addItems([d[0] for d in DURATIONS])
        self.folder_label = ElidedLabel("")
        self.folder_button = QPushButton("Change…")
        self.folder_button.setToolTip("Choose the folder new recordings are saved in")
        self.folder_button.clicked.connect(self._choose_folder)
        self.show_folder()
        self._lay_out()
        self._restore()
        self.site_combo.currentTextChanged.connect(lambda t: settings.setValue("record/site", t))
        self.duration_combo.currentTextChanged.connect(
            lambda t: settings.setValue("record/duration", t))
        self.channel_spin.valueChanged.connect(lambda v: settings.setValue("record/channel", v))

    def _lay_out(self) -> None:
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        dev_row = QHBoxLayout()
        dev_row.addWidget(self.device_combo, 1)
        dev_row.addWidget(self.refresh_button)
        form.addRow("Input device", dev_row)
        form.addRow("Channel", self.channel_spin)
        form.addRow("Chest site", self.site_combo)
        form.addRow("Patient ID", self.patient_edit)
        form.addRow("Duration", self.duration_combo)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_label, 1)
        folder_row.addWidget(self.folder_button)
        form.addRow("Save to", folder_row)

    # --- the recordings folder ----------------------------------------------------------
    def show_folder(self) -> None:
        folder = str(paths.recordings_dir())
        self.folder_label.set_full_text(folder)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save recordings in", str(paths.recordings_dir()))
        if folder:
            problem = self.set_folder(folder)
            if problem:
                self.folderProblem.emit(problem)

    def set_folder(self, folder: str) -> str:
        """Save new recordings in ``folder`` (remembered for the app and the CLI);
        returns "" or why it cannot be used."""
        folder = os.path.abspath(os.path.expanduser(folder))
        try:
            paths.ensure(paths.Path(folder))
        except OSError as exc:
            return f"{folder}: cannot create it ({exc.strerror or exc})"
        if not os.access(folder, os.W_OK):
            return f"{folder}: not writable; choose another folder"
        app_settings.set("recordings_folder", folder)
        self.show_folder()
        return ""

    def _restore(self) -> None:
        """Remembered choices (the patient id is deliberately not remembered)."""
        self.site_combo.setCurrentText(str(self.settings.value("record/site", SITES[0])))
        dur = str(self.settings.value("record/duration", "30 s"))
        if dur in [d[0] for d in DURATIONS]:
            self.duration_combo.setCurrentText(dur)

    # --- values -------------------------------------------------------------------------
    def duration_s(self) -> float | None:
        """The chosen duration in seconds (None: until stopped)."""
        return DURATIONS[self.duration_combo.currentIndex()][1]

    def recording_settings(self, rate: int | None = None) -> RecordingSettings:
        """What is chosen, for :func:`~lungapp.audio.recorder.start_recording`; ``rate``:
        the capture rate to ask for (None: the device's own)."""
        return RecordingSettings(rate=rate, channel=self.channel_spin.value() - 1,
                                 seconds=self.duration_s(), site=self.site_combo.currentText(),
                                 patient_id=self.patient_edit.text().strip())

    # --- devices ------------------------------------------------------------------------
    def show_devices(self, devices, index: int, changed: bool) -> None:
        """List ``devices`` (only when ``changed``: an open picker is not disturbed when
        nothing changed) and show ``index``, without signalling a user's choice."""
        self.device_combo.blockSignals(True)
        if changed:
            self.device_combo.clear()
            for d in devices:
                self.device_combo.addItem(d.label)
        if devices:
            self.device_combo.setCurrentIndex(index)
        self.device_combo.blockSignals(False)

    def show_channels(self, device) -> None:
        """The channel choice for ``device``: its channels, the remembered one if it has
        it; only editable for a multi-channel device."""
        n = device.max_input_channels
        self.channel_spin.setRange(1, max(1, n))
        self.channel_spin.setEnabled(n > 1)
        ch = int(self.settings.value("record/channel", 1) or 1)
        self.channel_spin.setValue(min(max(1, ch), n))

    def set_editable(self, idle: bool, listing: bool) -> None:
        """Everything editable only while ``idle``; Refresh not while ``listing``; the chest
        site not while ``site_locked`` (a guided exam chooses it)."""
        for w in (self.device_combo, self.refresh_button, self.channel_spin, self.site_combo,
                  self.patient_edit, self.duration_combo, self.folder_button):
            w.setEnabled(idle)
        self.refresh_button.setEnabled(idle and not listing)
        self.site_combo.setEnabled(idle and not self.site_locked)
