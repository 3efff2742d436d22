"""The training job checks the mounted dataset against its manifest before training."""
from __future__ import annotations

import hashlib
import json

from remote.training_backends.job_state import init_state, read_state
from remote.training_job import main


def write_manifest(root):
    """The manifest as remote.blob_storage writes it (datasets/<name>/manifest.json, mounted at the root)."""
    files = [{"path": f"{p.parent.name}/{p.name}", "size": p.stat().st_size,
              "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in sorted(root.glob("*/*"))]
    (root / "manifest.json").write_text(json.dumps({"name": "uploaded-name", "files": files}))


def test_a_file_changed_after_upload_fails_the_job_before_training(make_dataset, tmp_path):
    root = make_dataset("mounted")
    write_manifest(root)
    labels = sorted(root.glob("*/labels.png"))[0]
    labels.write_bytes(labels.read_bytes() + b"\0")  # the mount no longer holds what was uploaded
    state = tmp_path / "state.json"
    init_state(state)  # as the backend does at submit
    rc = main(["--dataset-dir", str(root), "--output-dir", str(tmp_path / "out"), "--state-file", str(state),
               "--epochs", "1", "--cross-validation", "none"])
    assert rc == 1
    record = read_state(state)
    assert record["status"] == "Failed"
    assert str(labels) in record["message"] and "the manifest says" in record["message"]
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_a_folder_without_manifest_fails_unless_told(make_dataset, tmp_path):
    root = make_dataset("never-uploaded")
    state = tmp_path / "state.json"
    init_state(state)
    rc = main(["--dataset-dir", str(root), "--output-dir", str(tmp_path / "out"), "--state-file", str(state),
               "--epochs", "1", "--cross-validation", "none"])
    assert rc == 1 and "upload did not finish" in read_state(state)["message"]
    state = tmp_path / "state2.json"
    init_state(state)
    rc = main(["--dataset-dir", str(root), "--output-dir", str(tmp_path / "out2"), "--state-file", str(state),
               "--epochs", "1", "--cross-validation", "none", "--skip-manifest-check"])
    assert rc == 0 and read_state(state)["status"] == "Completed"
    assert (tmp_path / "out2" / "model.safetensors").is_file()
