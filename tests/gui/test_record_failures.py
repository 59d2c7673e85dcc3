"""The Record view when a recording cannot be made or kept (under Xvfb, recording from the
PulseAudio null sink): the recordings folder's disk fills up (a real 400 KB tmpfs), the
recording's file is deleted under it, a recorder result left ``.partial``, and the audio
server gone before Record is pressed. Each says what happened in the user's words, and
nothing is filed in the store or analysed for a file that does not exist."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from mount_helpers import tmpfs

pytestmark = pytest.mark.gui

GONE = "unix:/nonexistent/lungapp-test/pulse-native"


def make_view(qtbot):
    """A Record view with the store hook (no model: analyses stay queued)."""
    from lungapp.gui.context import AppContext
    from lungapp.gui.record_view import RecordView
    from lungapp.gui.store_hook import StoreHook

    ctx = AppContext()
    hook = StoreHook(ctx)
    view = RecordView(ctx)
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.show()
    qtbot.waitExposed(view)
    finished: list[str] = []
    ctx.recordingFinished.connect(finished.append)
    return ctx, hook, view, finished


from capture_helpers import use_the_null_sink  # noqa: E402


@pytest.mark.audio
def test_a_full_disk_is_said_and_what_was_written_is_kept_filed_and_analysed(qtbot, pulse_sink, tmp_path):
    ctx, hook, view, finished = make_view(qtbot)
    use_the_null_sink(qtbot, view, "DF-1")
    with tmpfs(tmp_path / "small", "400k") as disk:
        assert view.setup_panel.set_folder(str(disk)) == ""
        view.start()
        qtbot.waitUntil(lambda: view.state == "recording", timeout=20000)
        qtbot.waitUntil(lambda: view.state == "idle", timeout=30000)   # stops by itself
        status = view.status.text()
        assert status.startswith(f"Recording stopped: cannot write to {disk}: the disk is full. Kept ")
        kept = Path(status.rsplit(" in ", 1)[1])
        assert kept.suffix == ".wav" and kept.is_file() and kept.parent == disk
        assert sf.info(kept).frames == view.last_result.frames > 0
        assert finished == [str(kept)]                          # filed, as Stop files it
        assert [r["path"] for r in hook.store.patient_recordings(hook.store.patient("DF-1")["id"])] \
            == [str(kept)]
        assert ctx.is_queued(str(kept))                         # and its analysis asked for
        assert not list(disk.glob("*.partial"))


@pytest.mark.audio
def test_a_recording_whose_file_was_deleted_is_neither_filed_nor_analysed(qtbot, pulse_sink):
    ctx, hook, view, finished = make_view(qtbot)
    use_the_null_sink(qtbot, view, "GONE-1")
    view.start()
    qtbot.waitUntil(lambda: view.state == "recording", timeout=20000)
    qtbot.waitUntil(lambda: view.recording.frames_written > view.capture.rate // 2, timeout=15000)
    partial = view.recording.partial_path
    partial.unlink()                                   # a cleaner, or the user, removed it
    view.stop()
    qtbot.waitUntil(lambda: view.state == "idle", timeout=20000)
    assert view.status.text().startswith("Recording stopped: ")
    assert f"{partial} is gone" in view.status.text() and "Kept" not in view.status.text()
    assert finished == [] and ctx.pending() == 0 and view.last_path is None
    assert hook.store.patient("GONE-1", missing_ok=True) is None


def test_a_recording_left_partial_is_offered_for_recovery_not_filed(qtbot, monkeypatch):
    from lungapp import paths
    from lungapp.audio import devices
    from lungapp.audio.recorder import make_sidecar

    monkeypatch.setattr(devices, "list_input_devices", lambda: [])
    ctx, hook, view, finished = make_view(qtbot)
    folder = paths.ensure(paths.recordings_dir())
    partial = folder / "20261207-101010_abcdef123456_Tc.wav.partial"
    sf.write(partial, np.zeros(8000 * 3, dtype=np.float32), 8000, format="WAV", subtype="PCM_24")
    (folder / "20261207-101010_abcdef123456_Tc.json").write_text(json.dumps(make_sidecar(
        device="steth", sample_rate=8000, site="Trachea", patient_id="PART-1")))
    error = (f"cannot write to {folder}: the disk is full; the audio is kept in {partial}, "
             "which will be offered for recovery at the next start")
    # what the recorder hands over when it could not publish the file
    view._finished(SimpleNamespace(path=partial, error=error, duration_s=3.0, frames=24000,
                                   overflows=0, reason="disk error", published=False))
    assert finished == [] and ctx.pending() == 0 and view.last_path is None
    assert hook.store.patient("PART-1", missing_ok=True) is None
    assert view.status.text() == f"Recording stopped: {error}. It can also be recovered now: Recover, above."
    assert view.banner.isVisible() and partial.name.removesuffix(".partial") in view.banner_text.text()


@pytest.mark.audio
def test_record_with_the_audio_server_gone_says_the_device_is_unavailable(qtbot, pulse_sink, monkeypatch):
    ctx, hook, view, finished = make_view(qtbot)
    use_the_null_sink(qtbot, view, "")
    index = view.selected_device().index
    monkeypatch.setenv("PULSE_SERVER", GONE)          # as after `pulseaudio --kill`, for this process
    view.start()
    qtbot.waitUntil(lambda: view.state == "idle", timeout=30000)
    assert view.status.text() == (
        f"Could not start recording: input device {index} (pulse) is unavailable (unplugged, its audio "
        "server stopped, or in use by another program): reconnect it and press Refresh")
    assert finished == []
