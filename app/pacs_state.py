"""Qt-free state of the DICOM export dialog and of Settings ▸ PACS, and their worker jobs.

The dialogs bind their widgets to these dataclasses (STYLE.md 2); tests set the
state and run the jobs without showing a dialog. Patient data live only in
:class:`DicomExportState` while the dialog is open: they are typed, never guessed,
never saved in settings.
"""
from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, fields
from pathlib import Path

from core.output.dicom import StudyInfo

PACS_FIELDS = ("ae_title", "host", "port", "tls", "calling_ae", "ca_file")


@dataclass
class DicomExportState:
    """What the user typed: patient and study, where to write, whether to send and to force."""

    patient_id: str = ""
    patient_name: str = ""
    accession_number: str = ""
    study_instance_uid: str = ""
    study_id: str = ""
    study_description: str = ""
    out_dir: str = ""
    send: bool = False
    force: bool = False

    def study(self) -> StudyInfo:
        """The validated :class:`core.output.dicom.StudyInfo`; ``ValueError`` naming the bad field."""
        return StudyInfo(self.patient_id, self.patient_name, self.accession_number, self.study_instance_uid,
                         self.study_id, self.study_description).validated()

    def validate(self) -> None:
        self.study()
        if not self.out_dir.strip() or not Path(self.out_dir).is_dir():
            raise ValueError(f"{self.out_dir or '(none)'}: choose an existing folder for the DICOM files")


@dataclass
class PacsSettingsState:
    """Settings ▸ PACS and the operator named in the audit log."""

    ae_title: str = ""
    host: str = ""
    port: str = ""
    tls: bool = False
    calling_ae: str = "NEUROHSI"
    ca_file: str = ""
    operator_name: str = ""

    @classmethod
    def from_settings(cls, settings) -> "PacsSettingsState":
        values = settings.pacs_values()
        return cls(**{k: values[k] for k in PACS_FIELDS}, operator_name=settings.get("operator_name"))

    def configured(self) -> bool:
        return bool(self.ae_title.strip() or self.host.strip() or self.port.strip())

    def node(self):
        """The :class:`remote.pacs.node.PacsNode` (env ``NEUROHSI_PACS_*`` winning); ``ValueError`` if incomplete."""
        from remote.pacs.node import PacsNode

        return PacsNode.from_values({k: getattr(self, k) for k in PACS_FIELDS})

    def validate(self) -> None:
        if self.configured():
            self.node()

    def save(self, settings) -> None:
        """Write to the settings (each change audited by ``AppSettings.set``) and name the operator."""
        from core.audit.events import set_operator

        self.validate()
        for f in fields(self):
            settings.set(f"pacs_{f.name}" if f.name in PACS_FIELDS else f.name, getattr(self, f.name))
        settings.sync()
        set_operator(self.operator_name)


def echo_job(node) -> Generator[None, None, str]:
    """Worker job: C-ECHO the node (Settings ▸ PACS "Test"); the answer line."""
    from remote.pacs.node import echo

    yield None  # a cancel point before the network call
    return echo(node)


def export_job(result, state: DicomExportState, *, capture_id: str, node=None, palette: str = "thesis",
               opacity: float = 0.45, software_version: str = "unknown") -> Generator[str, None, dict]:
    """Worker job: SC + SEG written to ``state.out_dir``, audited, then queued and sent when ``state.send``.

    Returns ``{"files": [sc, seg], "sent": n, "waiting": n, "problem": str | None}``.
    """
    from core.audit.events import record
    from core.output.dicom import build_dicom

    yield "building DICOM objects"
    study = state.study()
    export = build_dicom(result, study, capture_id=capture_id, force=state.force, palette=palette, opacity=opacity,
                         software_version=software_version)
    files = export.write(state.out_dir, stem=capture_id)
    record("exported", format="dicom", capture=capture_id, files=[str(p) for p in files],
           patient_id=study.patient_id, accession=study.accession_number, study_uid=export.study_instance_uid,
           forced=export.forced, model_sha256=result.model.sha256)
    outcome = {"files": [str(p) for p in files], "sent": 0, "waiting": 0, "problem": None}
    if state.send and node is not None:
        from remote.pacs.outbox import Outbox

        yield f"sending to {node.label}"
        outbox = Outbox()
        for path, kind in zip(files, ("SC", "SEG")):
            outbox.add(path, capture=capture_id, kind=kind)
        report = outbox.flush(node, force=True)
        outcome.update(sent=len(report.sent), waiting=report.waiting,
                       problem=report.line(node.label) if report.busy else next(iter(report.failed.values()), None))
    return outcome


def flush_job(node, *, force: bool = False) -> Generator[None, None, object]:
    """Worker job: send what is due in the outbox (everything with ``force``); the FlushReport."""
    from remote.pacs.outbox import Outbox

    yield None
    return Outbox().flush(node, force=force)
