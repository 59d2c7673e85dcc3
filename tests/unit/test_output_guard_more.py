"""The data-loss guard for the commands that write files (lungapp.fsutil.check_output_file,
check_oof_file): `train --oof`, `labels export` and `report` never replace a file the user
already has unless told to (`--overwrite` where the command has it), and refuse in one line
naming the file; `train --oof` never writes into the data folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lungapp import fsutil
from lungapp.errors import LungappError

from train_helpers import binary_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _lungapp(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "lungapp", *map(str, args)], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _fake_oof(path: Path) -> Path:
    """An .npz holding the arrays of a `train --oof` file."""
    arrays = {name.removesuffix(".npy"): np.zeros(2) for name in fsutil.OOF_ARRAYS}
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


# ------------------------------------------------------------------------ train --oof


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return binary_dataset(tmp_path_factory.mktemp("oof") / "data", n_patients=4, per_class=1,
                          seconds=2.0)


# A run that trains for seconds, had the guard let it start.
TINY_RUN = ("--folds", "2", "--epochs", "1", "--steps-per-epoch", "0", "--no-device-shift", "--features",
            json.dumps({"spectrogram": {"rate": 4000, "win_length": 256, "hop_length": 128, "n_fft": 256,
                                        "scale": "mel", "n_mels": 32, "fmin": 50.0, "fmax": 2000.0},
                        "window_s": 2.0, "hop_s": 1.0, "resize": None}))


def _train_refused(data, out, oof, *extra):
    """`lungapp train` with --oof: one `error` event before `start` (before TensorFlow
    loads and any file is read), exit 4. Returns its message."""
    proc = _lungapp("train", data, "--out", out, "--oof", oof, "--progress", "json", *TINY_RUN, *extra,
                    timeout=120)
    assert proc.returncode == 4, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["event"] for e in events] == ["error"] and "Traceback" not in proc.stderr
    assert not Path(out).exists()
    return events[0]["message"]


def test_train_refuses_an_existing_oof_file(data, tmp_path):
    precious = tmp_path / "precious.npz"
    precious.write_bytes(b"months of results")
    message = _train_refused(data, tmp_path / "m", precious)
    assert message == f"{precious}: already exists; not overwritten (use --overwrite to replace it)"
    assert precious.read_bytes() == b"months of results"


@pytest.mark.parametrize("overwrite", [False, True])
def test_train_never_writes_the_oof_file_into_the_data_folder(data, tmp_path, overwrite):
    """Not over a recording (before: the recording became an .npz, exit 0), and not as a new
    file either, even with --overwrite."""
    before = _snapshot(data)
    recording = next(data.glob("*.wav"))
    for oof in (recording, data / "new_oof.npz"):
        message = _train_refused(data, tmp_path / "m", oof, *(["--overwrite"] if overwrite else []))
        assert message.startswith(f"{oof}: lies inside the data folder {data.resolve()}")
    assert _snapshot(data) == before


def test_train_overwrite_replaces_only_an_earlier_oof_file(data, tmp_path):
    precious = tmp_path / "precious.npz"
    np.savez(precious, weights=np.arange(3))  # an .npz, but not an out-of-fold file
    flac = tmp_path / "copy.flac"
    sf.write(flac, np.zeros(4000, np.float32), 4000)
    for victim in (precious, flac):
        before = victim.read_bytes()
        message = _train_refused(data, tmp_path / "m", victim, "--overwrite")
        assert message == (f"{victim}: is not an out-of-fold file of lungapp train (.npz): not "
                           "replaced; choose another file")
        assert victim.read_bytes() == before
    earlier = _fake_oof(tmp_path / "earlier.npz")
    assert fsutil.check_oof_file(earlier, out=tmp_path / "m", data_dirs=[data], overwrite=True) == earlier
    with pytest.raises(LungappError, match="already exists"):
        fsutil.check_oof_file(earlier, out=tmp_path / "m", data_dirs=[data])


def test_check_output_file_refuses_a_folder_a_virtual_place_and_a_symlink_into_the_data(data, tmp_path):
    with pytest.raises(LungappError, match="is a folder: give a file name"):
        fsutil.check_output_file(tmp_path)
    with pytest.raises(LungappError, match="virtual file system"):
        fsutil.check_output_file("/proc/self/x.npz")
    link = tmp_path / "link.npz"
    link.symlink_to(next(data.glob("*.wav")))
    with pytest.raises(LungappError, match="lies inside the data folder"):
        fsutil.check_output_file(link, data_dirs=[data], overwrite=True)
    assert fsutil.check_output_file(tmp_path / "new.npz", data_dirs=[data]) == tmp_path / "new.npz"


def test_train_library_refuses_an_existing_oof_file_before_any_work(data, tmp_path):
    from lungapp.training.recipes import TrainOptions
    from lungapp.training.train import train

    precious = tmp_path / "precious.npz"
    precious.write_bytes(b"months of results")
    events = []
    with pytest.raises(LungappError, match="already exists; not overwritten"):
        train(data, tmp_path / "m", TrainOptions.from_preset("recommended", folds=2), progress=events.append,
              oof_path=precious)
    assert events == [] and precious.read_bytes() == b"months of results"


@pytest.mark.slow
def test_an_oof_file_made_during_the_run_is_not_replaced(tmp_path):
    """A file of the --oof name that appears while the folds train is kept: the predictions
    are not written (a warning says so) and the model is still saved."""
    from lungapp.dsp.spectrogram import SpectrogramConfig
    from lungapp.inference.features import FeatureConfig
    from lungapp.training.progress import FoldEnd
    from lungapp.training.recipes import TrainOptions
    from lungapp.training.train import train

    tiny = FeatureConfig(SpectrogramConfig(rate=4000, win_length=256, hop_length=128, n_fft=256,
                                           scale="mel", n_mels=32, fmin=50.0, fmax=2000.0),
                         window_s=2.0, hop_s=1.0)
    opts = TrainOptions.from_preset("recommended", folds=2, epochs=1, batch_size=8, features=tiny,
                                    steps_per_epoch=0, val_fraction=0, device_shift=False)
    opts.augment = None
    data = binary_dataset(tmp_path / "d", n_patients=4, per_class=1, seconds=2.0)
    oof = tmp_path / "oof.npz"

    def progress(event):
        if isinstance(event, FoldEnd) and not oof.exists():
            oof.write_bytes(b"saved by another program meanwhile")

    train(data, tmp_path / "m", opts, progress=progress, oof_path=oof)
    assert oof.read_bytes() == b"saved by another program meanwhile"
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    assert any("out-of-fold predictions not written" in w and "appeared during the run" in w
               for w in card["training"]["warnings"])


# ---------------------------------------------------------------------- labels export


@pytest.fixture
def labelled(tmp_path):
    d = tmp_path / "rec"
    d.mkdir()
    for i, label in enumerate(("CAS", "Normal")):
        stem = f"10{i}_6.0_0_p1_01"
        sf.write(d / f"{stem}.wav", np.random.default_rng(i).standard_normal(8000).astype(np.float32) * 0.1,
                 4000, subtype="PCM_16")
        (d / f"{stem}.json").write_text(json.dumps({"record_annotation": label, "event_annotation": [
            {"start": 100, "end": 800, "type": "Wheeze"}]}))
    return d


def test_sprsound_export_refuses_a_folder_holding_another_annotators_sidecar(labelled, tmp_path):
    from lungapp.annotation.formats import export_labels

    out = tmp_path / "alice"
    out.mkdir()
    (out / "100_6.0_0_p1_01.json").write_text('{"alice": "her labels"}')
    with pytest.raises(LungappError) as err:
        export_labels(labelled, "sprsound", out)
    assert str(err.value).startswith(f"{out}: 1 of the 2 files the export would write already "
                                     "exists there (first: 100_6.0_0_p1_01.json); nothing written")
    assert _snapshot(out) == {"100_6.0_0_p1_01.json": b'{"alice": "her labels"}'}


def test_csv_export_refuses_an_edited_events_csv_and_the_clips_of_an_earlier_run(labelled, tmp_path):
    from lungapp.annotation.formats import export_labels

    out = tmp_path / "c"
    export_labels(labelled, "csv", out, clips=True)
    (out / "events.csv").write_text("hand-edited")
    before = _snapshot(out)
    with pytest.raises(LungappError, match=r"3 of the 3 files .* \(first: events\.csv\)"):
        export_labels(labelled, "csv", out, clips=True)
    with pytest.raises(LungappError, match=r"c: events\.csv already exists there; nothing written"):
        export_labels(labelled, "csv", out)
    (out / "events.csv").unlink()
    for clip in (out / "clips").iterdir():  # other clips of an earlier run: would mix
        clip.rename(clip.with_name("old_" + clip.name))
    with pytest.raises(LungappError, match="clips: holds the clips of an earlier export"):
        export_labels(labelled, "csv", out, clips=True)
    assert not (out / "events.csv").exists()
    assert _snapshot(out) == {k.replace("clips/", "clips/old_"): v for k, v in before.items()
                              if k != "events.csv"}
    export_labels(labelled, "csv", out)  # the CSV alone: no clip written, nothing to mix
    assert (out / "events.csv").read_text().startswith("recording,")


def test_a_second_export_to_the_default_folder_is_refused_naming_it(labelled):
    from lungapp.annotation.formats import export_labels

    first = export_labels(labelled, "audacity")
    out = Path(first["folder"])
    (out / "100_6.0_0_p1_01.labels.txt").write_text("edited in Audacity")
    (labelled / "102_6.0_0_p1_01.wav").write_bytes((labelled / "100_6.0_0_p1_01.wav").read_bytes())
    (labelled / "102_6.0_0_p1_01.json").write_text('{"record_annotation": "Normal"}')
    with pytest.raises(LungappError) as err:  # a new recording: its file alone would be new
        export_labels(labelled, "audacity")
    assert str(err.value).startswith(f"{out}: already holds an earlier export; nothing written")
    assert not (out / "102_6.0_0_p1_01.labels.txt").exists()
    assert (out / "100_6.0_0_p1_01.labels.txt").read_text() == "edited in Audacity"
    (out / "100_6.0_0_p1_01.labels.txt").unlink()
    (out / "101_6.0_0_p1_01.labels.txt").unlink()  # an empty default folder is used
    assert len(export_labels(labelled, "audacity")["written"]) == 3


def test_a_recording_in_two_formats_exports_its_sidecar_once_and_refuses_clashing_clips(labelled, tmp_path):
    """NAME.wav and NAME.flac share NAME.json: one exported sidecar (the export writes only
    new files, so a second write would fail); their clips would replace each other: refused."""
    from lungapp.annotation.formats import export_labels

    wav = labelled / "100_6.0_0_p1_01.wav"
    x, rate = sf.read(wav)
    sf.write(wav.with_suffix(".flac"), x[::-1], rate)
    res = export_labels(labelled, "sprsound", tmp_path / "s")
    assert res["recordings"] == 3 and sorted(Path(p).name for p in res["written"]) == [
        "100_6.0_0_p1_01.json", "101_6.0_0_p1_01.json"]
    with pytest.raises(LungappError, match="would give the same clip clips/100_6.0_0_p1_01_01_Wheeze.wav"):
        export_labels(labelled, "csv", tmp_path / "c", clips=True)
    assert not (tmp_path / "c").exists()


def test_labels_export_cli_refuses_in_one_line(labelled, tmp_path):
    track = labelled / "100_6.0_0_p1_01.labels.txt"
    track.write_text("0.1\t0.5\tWheeze | my own track\n")
    proc = _lungapp("labels", "export", labelled, "--format", "audacity", "--out", labelled)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "1 of the 2 files the export would write already exists there (first: " \
           "100_6.0_0_p1_01.labels.txt)" in proc.stderr
    assert track.read_text() == "0.1\t0.5\tWheeze | my own track\n"
    assert not (labelled / "101_6.0_0_p1_01.labels.txt").exists()
    afile = tmp_path / "afile"
    afile.write_text("x")
    proc = _lungapp("labels", "export", labelled, "--format", "csv", "--out", afile)
    assert proc.returncode == 2 and proc.stderr == f"lungapp: {afile}: exists and is not a folder; " \
                                                   "choose a folder with --out\n"


# ----------------------------------------------------------------------------- report


@pytest.fixture
def patient(tmp_path):
    from lungapp.store import Store

    with Store() as s:
        s.add_visit(s.add_patient("RPT-1"), "2025-04-01")
    return "RPT-1"


def test_report_refuses_an_existing_file_unless_overwrite(patient, tmp_path):
    important = tmp_path / "important.pdf"
    important.write_bytes(b"%PDF- the signed report")
    proc = _lungapp("report", patient, "--out", important)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"lungapp: {important}: already exists; not overwritten (use --overwrite " \
                          "to replace it)\n"
    assert important.read_bytes() == b"%PDF- the signed report"
    proc = _lungapp("report", patient, "--out", important, "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert important.read_bytes().startswith(b"%PDF") and important.stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["important.pdf"]


def test_report_to_a_folder_says_so_and_leaves_nothing(patient, tmp_path):
    folder = tmp_path / "d.pdf"
    folder.mkdir()
    for extra in ([], ["--overwrite"]):
        proc = _lungapp("report", patient, "--out", folder, *extra)
        assert proc.returncode == 2 and proc.stderr == f"lungapp: {folder}: is a folder: give a file name\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.pdf"] and not any(folder.iterdir())


def test_write_report_replaces_as_the_gui_asks_and_never_clobbers_a_file_made_meanwhile(
        patient, tmp_path, monkeypatch):
    """The GUI's Save dialog has confirmed a replacement (write_report's default); without
    overwrite a file that appears while the PDF is drawn is kept, and no partial file stays."""
    from lungapp.report import pdf
    from lungapp.report.content import gather
    from lungapp.store import Store

    pdf.ensure_app()
    with Store() as s:
        data = gather(s, patient, None, None)
    out = tmp_path / "r.pdf"
    out.write_bytes(b"old")
    assert pdf.write_report(data, out) == out and out.read_bytes().startswith(b"%PDF")
    with pytest.raises(LungappError, match="already exists"):
        pdf.write_report(data, out, overwrite=False)
    new = tmp_path / "new.pdf"
    render = pdf.render

    def draw_then_someone_saves(*args):
        drawn = render(*args)
        new.write_bytes(b"saved meanwhile")
        return drawn

    monkeypatch.setattr(pdf, "render", draw_then_someone_saves)
    with pytest.raises(LungappError, match="already exists; not overwritten"):
        pdf.write_report(data, new, overwrite=False)
    assert new.read_bytes() == b"saved meanwhile"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.pdf", "r.pdf"]
