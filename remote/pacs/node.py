"""The PACS node (AE title, host, port, TLS) and the two things said to it: C-ECHO and C-STORE.

One set of names for the CLI and Settings ▸ PACS (``FIELDS``); env ``NEUROHSI_PACS_*``
wins over saved values, as for the cloud settings. TLS uses the system's trust store
(or ``ca_file``) with certificate and host-name verification on.
"""
from __future__ import annotations

import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from core.errors import NeuroHSIError, one_line

DEFAULT_CALLING_AE = "NEUROHSI"
ENV_VARS = {
    "ae_title": "NEUROHSI_PACS_AE_TITLE",
    "host": "NEUROHSI_PACS_HOST",
    "port": "NEUROHSI_PACS_PORT",
    "tls": "NEUROHSI_PACS_TLS",
    "calling_ae": "NEUROHSI_PACS_CALLING_AE",
    "ca_file": "NEUROHSI_PACS_CA_FILE",
}
# DICOM status codes that mean "stored" (0x0000 success; 0xB000, 0xB007, 0xB006: stored with a warning)
_STORED = {0x0000, 0xB000, 0xB006, 0xB007}


class PacsError(NeuroHSIError, OSError):
    """The PACS cannot be reached, refuses the association, or refuses an object."""


class PacsConfigError(NeuroHSIError, ValueError):
    """A PACS setting is missing or malformed."""


@dataclass(frozen=True)
class PacsNode:
    """Where to send: the PACS's AE title, host and port; our calling AE title; TLS with an optional CA file."""

    ae_title: str
    host: str
    port: int
    tls: bool = False
    calling_ae: str = DEFAULT_CALLING_AE
    ca_file: str = ""
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("ae_title", "calling_ae"):
            _check_ae(name, getattr(self, name))
        if not self.host or any(ch.isspace() for ch in self.host):
            raise PacsConfigError(f"PACS host must be a host name or address, got {self.host!r}")
        if not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise PacsConfigError(f"PACS port must be 1..65535, got {self.port!r}")
        if self.ca_file and not Path(self.ca_file).is_file():
            raise PacsConfigError(f"{self.ca_file}: PACS CA file not found")

    @property
    def label(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}{' (TLS)' if self.tls else ''}"

    @classmethod
    def from_values(cls, values: Mapping[str, object], env: Mapping[str, str] | None = None) -> "PacsNode":
        """The node from saved ``values`` (FIELDS names) with env ``NEUROHSI_PACS_*`` winning."""
        import os

        env = os.environ if env is None else env
        merged = {k: v for k, v in values.items() if v not in (None, "")}
        merged.update({name: env[var] for name, var in ENV_VARS.items() if env.get(var)})
        missing = [name for name in ("ae_title", "host", "port") if not str(merged.get(name, "")).strip()]
        if missing:
            raise PacsConfigError(
                "no PACS configured: set " + ", ".join(f"{m} (env {ENV_VARS[m]})" for m in missing)
                + " in Settings ▸ PACS or on the command line"
            )
        try:
            port = int(str(merged["port"]).strip())
        except ValueError:
            raise PacsConfigError(f"PACS port must be a number, got {merged['port']!r}") from None
        tls = merged.get("tls", False)
        tls = tls if isinstance(tls, bool) else str(tls).strip().lower() in ("1", "true", "yes", "on")
        return cls(
            ae_title=str(merged["ae_title"]).strip(), host=str(merged["host"]).strip(), port=port, tls=tls,
            calling_ae=str(merged.get("calling_ae") or DEFAULT_CALLING_AE).strip(),
            ca_file=str(merged.get("ca_file") or "").strip(),
        )

    def to_values(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "timeout_s"}


def echo(node: PacsNode) -> str:
    """C-ECHO (Verification): one line saying it answered and how fast; :class:`PacsError` otherwise."""
    from pynetdicom.sop_class import Verification

    start = time.perf_counter()
    assoc = _associate(node, [Verification])
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    code = getattr(status, "Status", None)
    if code != 0x0000:
        raise PacsError(f"PACS {node.label}: C-ECHO answered {_status_text(code)}")
    return f"PACS {node.label} answered C-ECHO in {1000 * (time.perf_counter() - start):.0f} ms"


def store(node: PacsNode, paths: Sequence[str | Path]) -> dict[Path, str | None]:
    """C-STORE each DICOM file over one association; ``{path: None if stored else the reason}``.

    Raises :class:`PacsError` when no association can be made (the PACS is down or refuses us):
    nothing was stored then.
    """
    from pydicom import dcmread

    paths = [Path(p) for p in paths]
    if not paths:
        return {}
    datasets = {}
    for path in paths:
        try:
            datasets[path] = dcmread(path)
        except (OSError, ValueError) as exc:
            raise PacsError(f"{path}: not a readable DICOM file ({one_line(exc)})") from None
    sop_classes = sorted({str(ds.SOPClassUID) for ds in datasets.values()})
    assoc = _associate(node, sop_classes)
    results: dict[Path, str | None] = {}
    try:
        for path, ds in datasets.items():
            if not assoc.is_established:
                results[path] = "association lost"
                continue
            status = assoc.send_c_store(ds)
            code = getattr(status, "Status", None)
            results[path] = None if code in _STORED else f"C-STORE answered {_status_text(code)}"
    finally:
        if assoc.is_established:
            assoc.release()
    return results


def _associate(node: PacsNode, contexts):
    from pynetdicom import AE
    from pynetdicom.presentation import build_context

    ae = AE(ae_title=node.calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = node.timeout_s
    ae.connection_timeout = node.timeout_s
    for context in contexts:
        ae.requested_contexts.append(build_context(context))  # default transfer syntaxes incl. explicit LE
    tls_args = None
    if node.tls:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=node.ca_file or None)
        tls_args = (context, node.host)  # verification and host-name check stay on
    assoc = ae.associate(node.host, node.port, ae_title=node.ae_title, tls_args=tls_args)
    if not assoc.is_established:
        reason = "rejected the association" if assoc.is_rejected else "aborted" if assoc.is_aborted else "cannot be reached"
        raise PacsError(f"PACS {node.label} {reason}")
    return assoc


def _check_ae(name: str, value: str) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > 16 or "\\" in value or any(
        ord(ch) < 32 for ch in value
    ):
        raise PacsConfigError(f"{name.replace('_', ' ')} must be 1-16 characters without backslash, got {value!r}")


def _status_text(code) -> str:
    return "no status" if code is None else f"status 0x{int(code):04X}"
