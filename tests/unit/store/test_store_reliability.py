"""The store under real processes: two writers at once, and a writer killed mid-transaction."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from lungapp.store import Store

ROOT = Path(__file__).resolve().parents[3]
RECORDINGS_PER_VISIT = 5

# A writer: N patients, each one transaction holding the patient, a visit, its recordings,
# a result and a label each. With PAUSE it announces "mid" halfway through a transaction
# and sleeps there, to be killed.
WRITER = r"""
import sys, time
from lungapp.store import ModelId, Store
db, tag, n, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
pred = {"probabilities": {"Normal": 0.5}, "abnormal_probability": 0.5, "decision": "normal",
        "label": "Normal", "quality": None, "windows": []}
with Store(db) as s:
    for i in range(n):
        with s.transaction():
            v = s.add_visit(s.add_patient(f"{tag}-{i}"))
            for k in range(RECORDINGS):
                uid = s.add_recording(v, f"/nowhere/{tag}-{i}-{k}.wav", site="Trachea")
                s.add_result(uid, pred, ModelId("m", "1", "h"))
                if pause and i == n - 1 and k == 2:
                    print("mid", flush=True)
                    time.sleep(60)
                s.confirm_label(uid, "Normal", tag)
        print("done", i, flush=True)
""".replace("RECORDINGS", str(RECORDINGS_PER_VISIT))


def start_writer(db: Path, tag: str, n: int, pause: bool = False) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(db), tag, str(n), "1" if pause else "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def assert_whole(store: Store) -> None:
    """No half-written patient: every patient has one visit with all its recordings, each
    with one result and one label; no orphan rows."""
    assert store.integrity() == "ok"
    assert store.query("PRAGMA foreign_key_check") == []
    per_visit = store.query("SELECT v.id, COUNT(r.id) FROM visits v LEFT JOIN recordings r ON r.visit_id = v.id "
                            "GROUP BY v.id")
    assert all(n == RECORDINGS_PER_VISIT for _, n in per_visit)
    n_patients = len(store.find_patients())
    assert len(per_visit) == n_patients
    for table in ("recordings", "results", "labels"):
        assert store.query(f"SELECT COUNT(*) FROM {table}")[0][0] == n_patients * RECORDINGS_PER_VISIT


def test_two_processes_writing_at_once_lose_nothing_and_corrupt_nothing(tmp_path):
    db = tmp_path / "store.sqlite3"
    Store(db).close()
    writers = [start_writer(db, tag, 60) for tag in ("A", "B")]
    for w in writers:
        out, err = w.communicate(timeout=240)
        assert w.returncode == 0, err
        assert out.splitlines()[-1] == "done 59"
    with Store(db) as s:
        assert_whole(s)
        ids = [p["identifier"] for p in s.find_patients()]
        assert len(ids) == 120 and {i.split("-")[0] for i in ids} == {"A", "B"}


def test_a_writer_killed_in_the_middle_of_a_transaction_leaves_the_store_consistent(tmp_path):
    db = tmp_path / "store.sqlite3"
    writer = start_writer(db, "K", 4, pause=True)
    try:
        lines = []
        while (line := writer.stdout.readline()) and line.strip() != "mid":
            lines.append(line.strip())
        assert line.strip() == "mid", writer.stderr.read()
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    assert lines == ["done 0", "done 1", "done 2"]
    with Store(db) as s:  # the killed transaction (patient K-3) is gone entirely
        assert_whole(s)
        assert [p["identifier"] for p in s.find_patients()] == ["K-0", "K-1", "K-2"]
        s.add_patient("after")  # and the store takes writes again
