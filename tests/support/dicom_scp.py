"""A real Storage SCP on 127.0.0.1 for the PACS tests: pynetdicom's own server, started and stopped here.

``StorageSCP`` accepts Secondary Capture, Segmentation and Verification, writes every
object it receives to ``folder`` as a DICOM file (as a PACS would), and can be stopped
and started again on the same port to play an outage.
"""
from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

from pynetdicom import AE, evt
from pynetdicom.sop_class import SecondaryCaptureImageStorage, SegmentationStorage, Verification

AE_TITLE = "TESTPACS"


class StorageSCP:
    def __init__(self, folder: Path, *, port: int = 0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.ssl_context = ssl_context
        self.received: list[str] = []  # SOP Instance UIDs, in arrival order
        self.calling_aes: list[str] = []
        self._server = None

    def start(self) -> "StorageSCP":
        ae = AE(ae_title=AE_TITLE)
        for context in (SecondaryCaptureImageStorage, SegmentationStorage, Verification):
            ae.add_supported_context(context)
        handlers = [(evt.EVT_C_STORE, self._on_store)]
        self._server = ae.start_server(("127.0.0.1", self.port), block=False, evt_handlers=handlers,
                                       ssl_context=self.ssl_context)
        self.port = self._server.server_address[1]  # port 0: the one the OS gave, kept for restarts
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def files(self) -> list[Path]:
        return sorted(self.folder.glob("*.dcm"))

    def _on_store(self, event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        ds.save_as(self.folder / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
        self.received.append(str(ds.SOPInstanceUID))
        self.calling_aes.append(event.assoc.requestor.ae_title)
        return 0x0000


def self_signed_tls(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1, and the cert's path (the CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "pacs-cert.pem", folder / "pacs-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path


if __name__ == "__main__":  # a PACS in its own process (the benchmark): prints its port, serves until killed
    import sys
    import time

    server = StorageSCP(Path(sys.argv[1])).start()
    print(server.port, flush=True)
    while True:
        time.sleep(3600)
