"""Helpers shared by the store and report tests: small recordings and predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from tiny_model import RATE, make_signal


def write_recording(path: Path, kind: str = "Normal", seconds: float = 3.0, seed: int = 0,
                    annotation: str | None = None) -> Path:
    """A WAV of ``kind`` (tiny_model signals); ``annotation``: a SPRSound JSON beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, make_signal(kind, seconds, np.random.default_rng(seed)), RATE)
    if annotation is not None:
        path.with_suffix(".json").write_text(
            json.dumps({"record_annotation": annotation, "event_annotation": []}))
    return path


def prediction(p_abnormal: float, decision: str, label: str, seconds: float = 3.0) -> dict:
    """A prediction dict in the shape of Prediction.to_dict() (as the store receives it)."""
    starts = np.arange(0.0, max(seconds - 2.0, 0.0) + 1e-9, 0.5)
    return {"file": None, "duration_s": seconds, "label": label, "decision": decision,
            "abnormal_probability": p_abnormal, "threshold": 0.5,
            "probabilities": {"Normal": 1 - p_abnormal, "CAS": p_abnormal, "DAS": 0.0, "CAS & DAS": 0.0},
            "quality": {"ok": True, "level": "good", "reason": "good quality", "noisy_ranges": [], "metrics": {}},
            "windows": [{"start_s": float(s), "end_s": float(s) + 2.0, "probabilities": {},
                         "abnormal_probability": p_abnormal} for s in starts],
            "model": {"name": "m", "version": "1"}}
