"""research/unseen_folds.py: a folder judged by the fold model that never saw each patient."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from lungapp.dsp.spectrogram import SpectrogramConfig
from lungapp.errors import LungappError
from lungapp.inference.features import FeatureConfig

from train_helpers import binary_dataset  # noqa: E402

TINY_FC = FeatureConfig(SpectrogramConfig(rate=4000, win_length=256, hop_length=128, n_fft=256,
                                          scale="mel", n_mels=32, fmin=50.0, fmax=2000.0),
                        window_s=2.0, hop_s=1.0)


def _rows(patients_probs):
    return [{"file": f"f{i}", "patient": pat, "truth": truth, "abnormal_probability": p}
            for i, (pat, truth, p) in enumerate(patients_probs)]


def test_each_recording_is_unseen_by_its_patients_fold_model_only(repo_script):
    mod = repo_script("research/unseen_folds.py")
    folds = {"a": 1, "b": 2}
    recs = [("a", "abnormal"), ("a", "normal"), ("b", "abnormal"), ("b", "normal"), ("z", "normal")]
    # fold model 1 never saw patient a; it is right on a and wrong on b; model 2 the reverse
    m1 = _rows([(p, t, {"a": 0.9 if t == "abnormal" else 0.1, "b": 0.1 if t == "abnormal" else 0.9,
                        "z": 0.2}[p]) for p, t in recs])
    m2 = _rows([(p, t, {"b": 0.9 if t == "abnormal" else 0.1, "a": 0.1 if t == "abnormal" else 0.9,
                        "z": 0.2}[p]) for p, t in recs])
    res = mod.split_by_fold([m1, m2], folds, 0.5)
    assert res["unseen"]["n"] == 4 and res["unseen"]["score"] == 1.0
    assert res["seen"]["n"] == 4 and res["seen"]["score"] == 0.0
    assert res["unknown"] == 1


def test_an_oof_file_without_patient_grouping_is_refused(repo_script, tmp_path):
    mod = repo_script("research/unseen_folds.py")
    bad = tmp_path / "oof.npz"
    np.savez(bad, patient=np.array(["p1", "p1"]), fold=np.array([1, 2]))
    with pytest.raises(LungappError, match="not patient-grouped"):
        mod.fold_of_patients(bad)
    np.savez(bad, probs=np.zeros((2, 2)))
    with pytest.raises(LungappError, match="patient ids and folds"):
        mod.fold_of_patients(bad)


@pytest.mark.slow
def test_on_the_training_folder_unseen_is_the_out_of_fold_result(repo_script, tmp_path):
    """Judged by the fold model that never saw its patient, each training recording gets
    its out-of-fold prediction: the figures are the card's out-of-fold ones."""
    mod = repo_script("research/unseen_folds.py")
    from lungapp.training.recipes import TrainOptions
    from lungapp.training.train import train

    data = binary_dataset(tmp_path / "d", n_patients=6, per_class=2, seconds=5.0)
    opts = TrainOptions.from_preset("recommended", folds=2, epochs=3, batch_size=8, lr=3e-3,
                                    features=TINY_FC, early_stopping=0, steps_per_epoch=0,
                                    val_fraction=0.0, artifact="ensemble", device_shift=False)
    train(data, tmp_path / "run", opts, progress=lambda e: None, oof_path=tmp_path / "oof.npz")
    refit = tmp_path / "refit"
    refit.mkdir()
    card = json.loads((tmp_path / "run" / "card.json").read_text())
    (refit / "card.json").write_text(json.dumps({**card, "model_files": ["model.keras"], "onnx": []}))
    shutil.copy(tmp_path / "run" / "fold1.keras", refit / "model.keras")
    with pytest.raises(LungappError, match="fold-model ensemble"):
        mod.fold_predictors(refit)
    res = mod.run_check(tmp_path / "run", tmp_path / "oof.npz", data, "sprsound")
    oof, unseen = res["out of fold (train)"], res["unseen"]
    assert unseen["n"] == oof["n"] == 24 and res["unknown"] == 0 and res["seen"]["n"] == 24
    for k in ("auc", "sensitivity", "specificity"):
        assert unseen[k] == pytest.approx(oof[k], abs=1e-6), k
    assert res["ensemble"]["n"] == 24
    assert "| unseen | 24 |" in mod.table(res)
