"""The PDF report, made through the CLI as a user would, checked with poppler:
pdftotext for its words, pdftoppm for the body map's colours and the spectrogram."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from lungapp.store import ModelId, Store

from store_helpers import prediction, write_recording

ROOT = Path(__file__).resolve().parents[3]
INTRA_TEST = (ROOT / ".." / "shared" / "data" / "sprsound" / "intra_test").resolve()
needs_poppler = pytest.mark.skipif(not shutil.which("pdftoppm"), reason="poppler-utils not installed")


def lungapp(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DISPLAY", None)  # the report needs no display
    return subprocess.run([sys.executable, "-m", "lungapp", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def pdf_text(pdf: Path) -> str:
    """The PDF's words, ligatures (the font's "fi") spelled out, on one line."""
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                         check=True).stdout
    return " ".join(unicodedata.normalize("NFKC", out).split())


def pdf_pages(pdf: Path, folder: Path) -> list[np.ndarray]:
    from PIL import Image

    subprocess.run(["pdftoppm", "-png", "-r", "40", str(pdf), str(folder / "page")], check=True)
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("page-*.png"))]


def colour_pixels(page: np.ndarray, hex_colour: str) -> int:
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(page.astype(int) - rgb).sum(axis=2) < 30).sum())


@needs_poppler
def test_report_holds_patient_sites_results_labels_notes_model_and_notice(tmp_path):
    abnormal = write_recording(tmp_path / "a.wav", "CAS", seconds=6.0)
    normal = write_recording(tmp_path / "b.wav", "Normal", seconds=6.0, seed=1)
    with Store() as s:
        v = s.add_visit(s.add_patient("RPT-42", name="Ann Lee", birth_year=2015, sex="female"),
                        "2025-04-01", "Dr Who", "night cough for two weeks")
        u1 = s.add_recording(v, abnormal, site="Anterior left")
        u2 = s.add_recording(v, normal, site="Posterior right")
        caution = ("Unlike the recordings the model was trained on: this recording's balance of "
                   "frequencies differs from theirs.")
        s.add_result(u1, {**prediction(0.91, "abnormal", "CAS", 6.0), "notes": [caution]},
                     ModelId("test-model", "7", "abc"))
        s.add_result(u2, prediction(0.05, "normal", "Normal", 6.0), ModelId("test-model", "7", "abc"))
        s.confirm_label(u1, "CAS", "Dr Who")
    proc = lungapp("report", "RPT-42", "--out", str(tmp_path / "r.pdf"))
    assert proc.returncode == 0, proc.stderr
    text = pdf_text(tmp_path / "r.pdf")
    for words in ("Patient RPT-42 (Ann Lee, born 2015, female)", "Visit 1 on 2025-04-01, clinician Dr Who",
                  "Anterior left", "Posterior right", "abnormal, CAS (abnormal probability 0.91)",
                  "normal, Normal (abnormal probability 0.05)", "CAS (confirmed by Dr Who",
                  "night cough for two weeks", "test-model 7 (abc)", "made by another model",
                  "Unlike the recordings the model was trained on",
                  "Decision support, not a diagnostic device"):
        assert words in text, words
    pages = pdf_pages(tmp_path / "r.pdf", tmp_path)
    assert len(pages) == 2
    # body map: one abnormal (orange) and one normal (green) site; five sites still to record
    assert colour_pixels(pages[0], "#d9480f") > 30 and colour_pixels(pages[0], "#2e9e6b") > 30
    # the spectrograms: a band of many distinct colours (not a blank or flat area)
    top = pages[1][: pages[1].shape[0] // 2]
    rows = np.where((top.std(axis=2) > 20).sum(axis=1) > top.shape[1] * 0.5)[0]
    assert len(rows) > 20
    assert len(np.unique(top[rows].reshape(-1, 3), axis=0)) > 50


@needs_poppler
def test_report_hatches_noisy_stretches_and_draws_no_line_for_a_refused_recording(tmp_path):
    """The report's spectrogram and probability line carry the quality check's noisy
    stretches, hatched as in the app; a recording it refused gets no probability line."""
    grey, line = {}, {}
    for name, quality in (("clean", {"ok": True, "level": "good", "reason": "good quality",
                                     "noisy_ranges": []}),
                          ("noisy", {"ok": True, "level": "warn", "noisy_ranges": [[1.0, 4.0]],
                                     "reason": "noisy recording: interpret with care (noise in "
                                               "parts; noisy: 1.0-4.0 s)"})):
        wav = write_recording(tmp_path / f"{name}.wav", "Normal", seconds=6.0)
        with Store() as s:
            v = s.add_visit(s.add_patient(f"P-{name}"), "2025-04-01", "Dr Who", "")
            u = s.add_recording(v, wav, site="Trachea")
            s.add_result(u, {**prediction(0.05, "normal", "Normal", 6.0), "quality": {**quality, "metrics": {}}},
                         ModelId("test-model", "7", "abc"))
        pdf = tmp_path / f"{name}.pdf"
        assert lungapp("report", f"P-{name}", "--out", str(pdf)).returncode == 0
        text = pdf_text(pdf)
        (tmp_path / name).mkdir()
        page = pdf_pages(pdf, tmp_path / name)[1]
        grey[name], line[name] = colour_pixels(page, "#5a5a5a"), colour_pixels(page, "#d9480f")
        assert ("hatched: noisy" in text) == (name == "noisy")
    assert "Quality: noisy recording: interpret with care" in text
    assert grey["noisy"] > grey["clean"] + 100, grey

    wav = write_recording(tmp_path / "silent.wav", "Normal", seconds=6.0)
    with Store() as s:
        v = s.add_visit(s.add_patient("P-silent"), "2025-04-01", "Dr Who", "")
        u = s.add_recording(v, wav, site="Trachea")
        refused = {"ok": False, "level": "refuse", "reason": "no signal (silent, muted or unplugged input)",
                   "noisy_ranges": [], "metrics": {}}
        s.add_result(u, {**prediction(0.66, "poor quality", "Poor quality - please record again", 6.0),
                         "quality": refused}, ModelId("test-model", "7", "abc"))
    pdf = tmp_path / "silent.pdf"
    assert lungapp("report", "P-silent", "--out", str(pdf)).returncode == 0
    text = pdf_text(pdf)
    assert "poor quality, Poor quality - please record again [made by another model" in text
    assert "Quality: refuse, no signal" in text
    assert "0.66" not in text                                   # no meaningless probability
    (tmp_path / "silent").mkdir()
    assert line["clean"] > 20                                   # the probability line ...
    assert colour_pixels(pdf_pages(pdf, tmp_path / "silent")[1], "#d9480f") == 0   # ... not here


@needs_poppler
@pytest.mark.data
@pytest.mark.slow
def test_import_sprsound_list_patients_and_report_from_a_clean_home(tmp_path):
    """The issue's "done when" command line, from a clean LUNGAPP_HOME."""
    if not INTRA_TEST.is_dir():
        pytest.skip(f"SPRSound intra_test not found at {INTRA_TEST}")
    assert lungapp("import", str(INTRA_TEST)).returncode == 0
    proc = lungapp("patients", "--json")
    assert proc.returncode == 0
    patients = json.loads(proc.stdout)
    assert len(patients) == 162 and sum(p["recordings"] for p in patients) == 379
    pid = patients[0]["identifier"]
    proc = lungapp("report", pid, "--out", "r.pdf", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = pdf_text(tmp_path / "r.pdf")
    assert f"Patient {pid}" in text and "not analysed" in text and "SPRSound annotation" in text
    assert "Decision support, not a diagnostic device" in text


def test_report_of_an_unknown_patient_or_visit_is_one_line(tmp_path):
    with Store() as s:
        s.add_visit(s.add_patient("P1"))
    proc = lungapp("report", "nobody", "--out", str(tmp_path / "r.pdf"))
    assert proc.returncode == 2 and proc.stderr.strip().endswith("no patient 'nobody' in the store")
    proc = lungapp("report", "P1", "--visit", "4", "--out", str(tmp_path / "r.pdf"))
    assert proc.returncode == 2 and "no visit 4: the patient has 1 visit(s)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "r.pdf").exists()
