"""Screenshots of the retraining dialog and the Cloud page for docs/cloud.md (real widgets, Azurite, a local job).

Usage: python tests/bench/shoot_retraining_docs.py docs/images   (not a benchmark; kept beside them, not collected)
"""
import os, sys, tempfile, time
from pathlib import Path
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
tmp = Path(tempfile.mkdtemp())
os.environ["NEUROHSI_HOME"] = str(tmp / "home")
import keyring
from keyring.backend import KeyringBackend
class Mem(KeyringBackend):
    priority = 1
    store = {}
    def get_password(self, s, u): return self.store.get((s, u))
    def set_password(self, s, u, p): self.store[(s, u)] = p
    def delete_password(self, s, u): self.store.pop((s, u), None)
keyring.set_keyring(Mem())
from app.application import create_application
from app.retraining.dialog import RetrainingDialog
from app.retraining.runner import Environment
from app.retraining.cloud_page import CloudSettingsDialog
from core.dataset.folders import write_capture_folder
from core.capture.synthetic.captures import generate_capture, small_profile
from tests.support.azurite import AzuriteServer, DEV_KEY
out = Path(sys.argv[1])
app = create_application([])
server = AzuriteServer(tmp / "az", in_memory=True); server.start()
try:
    root = tmp / "ward7"
    prof = small_profile(40, 56)
    for k in range(9):
        cap = generate_capture(seed=k, patient=f"ID{18+k:04d}", profile=prof)
        write_capture_folder(root, cap.capture_id, cap.raw, cap.dark, cap.white, cap.labels, metadata=cap.metadata,
                             meta={"patient": f"ID{18+k:04d}"})
    from remote.blob_storage import BlobStorage
    from remote.training_backends import LocalBackend
    env = Environment(storage=lambda: BlobStorage(server.connection_string, container="neurohsi"),
                      backend=lambda n, s: LocalBackend(s, tmp / "jobs"))
    # an installed model to compare with
    from core.dataset.folders import read_dataset
    from core.training.trainer import TrainingConfig, train
    from core.model.files import save_model
    caps = read_dataset(root)
    r = train(caps[2:4], TrainingConfig(epochs=2, cross_validation="none"))
    current = tmp / "conv2dnet-ward6-20261101-v2.safetensors"
    save_model(current, r.net, name="conv2dnet-ward6-20261101", version="2", class_ids=r.class_ids,
               class_names=r.class_names, profile_id=r.profile_id)
    d = RetrainingDialog(env=env, current_model=current, models_dir=tmp / "models", dataset=root, poll_ms=100)
    d.show()
    def spin(cond, t=120):
        end = time.time() + t
        while not cond() and time.time() < end:
            app.processEvents(); time.sleep(0.02)
    spin(lambda: not d.loading and bool(d.state.checks))
    d.set_role(d.state.rows[0].capture_id, "test")
    d.form.epochs_spin.setValue(20)
    d.form.folds_spin.setValue(2)
    d.form.name_edit.setText("conv2dnet")
    d.start()
    spin(lambda: d.last is not None and d.last.phase == "training" and len(d.last.epochs) >= 4 * 12)
    d.job.tabs.setCurrentIndex(0)
    for _ in range(20): app.processEvents(); time.sleep(0.01)
    d.grab().save(str(out / "retraining-training.png"))
    spin(lambda: not d.state.running, 300)
    d.job.tabs.setCurrentIndex(1)
    for _ in range(20): app.processEvents(); time.sleep(0.01)
    d.grab().save(str(out / "retraining-compared.png"))
    print("phase", d.last.phase, d.last.error, d.last.comparison.verdict if d.last.comparison else None)
    store = {"storage_auth": "account-key", "storage_account_url": server.account_url, "container": "neurohsi"}
    keyring.set_password("neurohsi", "storage-account-key", DEV_KEY)
    c = CloudSettingsDialog(lambda: dict(store), store.update)
    c.show()
    spin(lambda: True, 0.2)
    c.page.test("storage"); c.page.test("azureml")
    spin(lambda: not c.page.busy, 30)
    for _ in range(20): app.processEvents(); time.sleep(0.01)
    c.grab().save(str(out / "cloud-settings.png"))
    pass
finally:
    server.stop()
