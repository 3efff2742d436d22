"""One typed registry over QSettings: every persistent preference in one table.

Each entry is ``(name, key, type, default, doc)``. Values are stored as text
(JSON for lists, base64 for window geometry) so INI and native backends read
back the same types. The scoring endpoint KEY is a secret: it goes to the OS
keyring through :mod:`remote.credentials`, never into QSettings.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings

from core import defaults
from core.model.uncertainty import DEFAULT_THRESHOLD, SHOW_BY_DEFAULT
from remote.cloud_config import ENV_VARS as _CLOUD_ENV_VARS

ORGANISATION = "NeuroHSI"
APPLICATION = "NeuroHSI"
WINDOW_STATE_VERSION = 1  # bump when docks/toolbars change so stale layouts are ignored
MAX_RECENT_FILES = 8


@dataclass(frozen=True)
class Setting:
    name: str  # attribute-style name used in code
    key: str  # QSettings key
    type: type  # str, bool, int, list or bytes
    default: object
    doc: str
    limits: tuple[int, int] | None = None  # inclusive range of an int setting; a value outside reads as the default


SETTINGS: tuple[Setting, ...] = (
    Setting("endpoint_url", "scoring/endpoint_url", str, "", "Scoring endpoint URL; empty means classify locally."),
    Setting("use_remote", "scoring/use_remote", bool, True, "Classify on the endpoint when one is configured."),
    Setting("fallback_local", "scoring/fallback_local", bool, True, "Classify locally when the endpoint fails."),
    Setting("remote_deadline_s", "scoring/deadline_s", int, int(defaults.REMOTE_DEADLINE_S), "Seconds to wait for a remote map, retries included.",
            (1, 3600)),
    Setting("deployment", "scoring/deployment", str, "", "Azure ML deployment to route to; empty: the traffic split."),
    Setting("endpoint_auth", "scoring/endpoint_auth", str, "key",
            "'key' (keyring) or 'entra': Entra ID token of the signed-in user (aad_token endpoints)."),
    Setting("use_ensemble", "model/use_ensemble", bool, False,
            "Classify with the model file's ensemble (double-cv outer-fold models): steadier, slower; off: one model."),
    Setting("show_uncertain", "display/show_uncertain", bool, SHOW_BY_DEFAULT,
            "Hatch pixels the model is unsure of (default from the real-data benchmark, docs/benchmarks/uncertainty.md)."),
    Setting("uncertainty_threshold", "display/uncertainty_threshold", int, round(100 * DEFAULT_THRESHOLD),
            "Percent 0-100: pixels whose predictive uncertainty (normalised entropy) exceeds it are flagged."),
    Setting("palette", "display/palette", str, "thesis", "Class colours: 'thesis' or 'colourblind'."),
    Setting("theatre_mode", "display/theatre_mode", bool, False, "Full screen, only the map with a large legend (F11); readable from 2 m."),
    Setting("opacity", "display/opacity", int, 60, "Overlay opacity in percent.", (0, 100)),
    Setting("live_stale_after_s", "live/stale_after_s", int, 10,
            "Live mode: a banner with the map's age when no new capture came for this many seconds.", (1, 3600)),
    Setting("recent_files", "files/recent_files", list, [], "Recently opened raw captures, newest first."),
    Setting("window_geometry", "window/geometry", bytes, b"", "Main window geometry (Qt saveGeometry)."),
    Setting("window_state", "window/state", bytes, b"", "Docks and toolbars (Qt saveState)."),
    Setting("window_state_version", "window/state_version", int, 0, "WINDOW_STATE_VERSION the state was saved with."),
    Setting("retraining_memory", "retraining/memory", str, "", "Retraining dialog: last dataset and form (JSON)."),
    Setting("labeller_name", "labelling/display_name", str, "", "Name recorded as who drew labels; empty: login name."),
    Setting("operator_name", "audit/operator_name", str, "", "Operator named in the audit log (shared theatre logins)."),
    # Settings ▸ PACS: remote.pacs.node's names (the CLI's --pacs-* too); env NEUROHSI_PACS_* wins
    Setting("pacs_ae_title", "pacs/ae_title", str, "", "PACS AE title (called AE)."),
    Setting("pacs_host", "pacs/host", str, "", "PACS host name or address."),
    Setting("pacs_port", "pacs/port", str, "", "PACS port (often 104 or 11112)."),
    Setting("pacs_tls", "pacs/tls", bool, False, "Talk to the PACS over TLS (certificate verified)."),
    Setting("pacs_calling_ae", "pacs/calling_ae", str, "NEUROHSI", "Our AE title, as the PACS knows us."),
    Setting("pacs_ca_file", "pacs/ca_file", str, "", "CA certificates (PEM) for the PACS's TLS; empty: system store."),
    # Settings ▸ Cloud: remote.cloud_config's names (the CLI's too); env NEUROHSI_* wins; no secrets here
    *(Setting(f"cloud_{name}", f"cloud/{name}", str, "", f"Cloud: {name} (env {var} overrides)")
      for name, var in _CLOUD_ENV_VARS.items()),
)
_BY_NAME = {s.name: s for s in SETTINGS}
# Remembered view state, not a choice anyone needs to answer for, kept out of the audit log: the
# opacity changes with every slider step (an entry each would flood the log and block the GUI thread);
# the labeller's name is in every labels_saved entry.
_NOT_AUDITED = {"window_geometry", "window_state", "window_state_version", "recent_files", "opacity", "labeller_name"}


class AppSettings:
    """Typed access to the registry: ``settings.get("palette")``, ``settings.set("palette", "colourblind")``."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.qsettings = qsettings if qsettings is not None else QSettings(ORGANISATION, APPLICATION)
        self._keyring_ok: bool | None = None  # detected once, on first use
        self._session_key: str | None = None  # "use for this session only": memory, never disk

    @classmethod
    def from_file(cls, path: str | Path) -> "AppSettings":
        """Settings kept in an INI file (tests and portable installs)."""
        return cls(QSettings(str(path), QSettings.Format.IniFormat))

    @staticmethod
    def setting(name: str) -> Setting:
        try:
            return _BY_NAME[name]
        except KeyError:
            raise KeyError(f"unknown setting {name!r} (known: {', '.join(_BY_NAME)})") from None

    def get(self, name: str):
        s = self.setting(name)
        raw = self.qsettings.value(s.key, None)
        if raw is None:
            return list(s.default) if s.type is list else s.default
        text = str(raw)
        try:
            if s.type is bool:
                return text.strip().lower() in ("1", "true", "yes", "on")
            if s.type is int:
                value = int(float(text))  # "1e309" -> inf -> OverflowError; "nan" -> ValueError
                if s.limits is not None and not s.limits[0] <= value <= s.limits[1]:
                    return s.default
                return value
            if s.type is list:
                value = json.loads(text)
                return [str(v) for v in value] if isinstance(value, list) else list(s.default)
            if s.type is bytes:
                return base64.b64decode(text.encode("ascii"))
        except (ValueError, TypeError, OverflowError):
            return s.default  # a hand-edited or stale value: fall back rather than refuse to start
        return text

    def set(self, name: str, value) -> None:
        s = self.setting(name)
        before = None if name in _NOT_AUDITED else self.get(name)
        if s.type is bool:
            text = "true" if value else "false"
        elif s.type is int:
            text = str(int(value))
        elif s.type is list:
            text = json.dumps([str(v) for v in value])
        elif s.type is bytes:
            text = base64.b64encode(bytes(value)).decode("ascii")
        else:
            text = str(value)
        self.qsettings.setValue(s.key, text)
        if name not in _NOT_AUDITED and self.get(name) != before:
            from core.audit.events import record

            record("settings_changed", setting=name, old=before, new=self.get(name))

    def sync(self) -> None:
        self.qsettings.sync()

    # -- derived helpers ---------------------------------------------------
    def add_recent_file(self, path: str | Path) -> list[str]:
        path = str(Path(path).resolve())
        files = [path] + [f for f in self.get("recent_files") if f != path]
        files = files[:MAX_RECENT_FILES]
        self.set("recent_files", files)
        return files

    def uncertainty_threshold(self) -> float | None:
        """The flag's threshold in 0..1 (``core.model.uncertainty.with_uncertainty``), None when the flag is off."""
        if not self.get("show_uncertain"):
            return None
        return min(max(self.get("uncertainty_threshold"), 0), 100) / 100.0

    def pacs_values(self) -> dict:
        """Settings ▸ PACS as ``remote.pacs.node.PacsNode.from_values`` takes them."""
        return {name: self.get(f"pacs_{name}") for name in ("ae_title", "host", "port", "tls", "calling_ae", "ca_file")}

    def remote_enabled(self) -> bool:
        return bool(self.get("use_remote") and self.get("endpoint_url").strip())

    # The key is a secret: keyring only (remote.credentials), never QSettings; without a
    # keyring it may live in this process's memory for the session, never on disk.
    def keyring_available(self) -> bool:
        """Whether keys can be stored on this machine (asked once)."""
        if self._keyring_ok is None:
            from remote.credentials import keyring_available

            self._keyring_ok = keyring_available()
        return self._keyring_ok

    def endpoint_key(self) -> str | None:
        if self._session_key:
            return self._session_key
        if not self.keyring_available():
            return None
        from remote.credentials import SCORING_ENDPOINT_KEY, get_secret

        return get_secret(SCORING_ENDPOINT_KEY)

    def key_is_session_only(self) -> bool:
        return bool(self._session_key)

    def set_endpoint_key(self, key: str | None, *, session_only: bool = False) -> None:
        """Store ``key`` in the keyring (None or empty removes it); ``session_only`` keeps it in memory."""
        from remote.credentials import SCORING_ENDPOINT_KEY, CredentialError, delete_secret, remember_secret, set_secret

        if session_only:
            self._session_key = key or None
            if key:
                remember_secret(key)  # redacted from any message, like a stored one
            return
        self._session_key = None
        if not self.keyring_available():
            if key:
                raise CredentialError(
                    "cannot store the endpoint key: this machine has no keyring; "
                    "tick \"use for this session only\" to use it until the app closes")
            return
        if key:
            set_secret(SCORING_ENDPOINT_KEY, key)
        else:
            delete_secret(SCORING_ENDPOINT_KEY)
