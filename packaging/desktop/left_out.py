"""What the desktop bundle leaves out on purpose, and the one-line reason a user sees.

``neurohsi.spec`` excludes these packages; inside the bundle, :class:`LeftOutFinder`
turns an import of one of them into :class:`LeftOutError` with that reason (the
retraining dialog's backend check and the CLI show it as one line) instead of a bare
"No module named ...". Everything here stays available in a full install (pip, docs/install.md).
"""
from __future__ import annotations

import importlib.abc

_SERVICE = ("the scoring service is not part of the desktop bundle: it runs in its container "
            "(packaging/scoring) or from a full install (docs/install.md)")
_AZUREML = ("Azure ML training is not part of the desktop bundle: use the local backend here, "
            "or submit Azure ML jobs from a full install (docs/install.md)")

# top-level or dotted module name -> why it is not in the bundle
LEFT_OUT: dict[str, str] = {
    "azure.ai": _AZUREML,  # azure-ai-ml and everything only it needs (marshmallow, pydash, strictyaml, msrest)
    "azureml_inference_server_http": _SERVICE,
    "inference_schema": _SERVICE,
    "remote.scoring_entry": _SERVICE,
    "flask": _SERVICE,
    "flask_cors": _SERVICE,
    "gunicorn": _SERVICE,
    "azure.monitor": _SERVICE,  # the service's telemetry exporter
}

# CLI commands that need a left-out package, refused before they start anything.
LEFT_OUT_COMMANDS: dict[str, str] = {"serve": _SERVICE}


class LeftOutError(ModuleNotFoundError):
    """An import of a package the bundle leaves out; the message says why and where to get it."""


def left_out_reason(fullname: str) -> str | None:
    for name, why in LEFT_OUT.items():
        if fullname == name or fullname.startswith(name + "."):
            return why
    return None


class LeftOutFinder(importlib.abc.MetaPathFinder):
    """Last on ``sys.meta_path``: reached only when no bundled module matched."""

    def find_spec(self, fullname, path, target=None):
        why = left_out_reason(fullname)
        if why is not None:
            raise LeftOutError(f"{why} (no module {fullname})", name=fullname)
        return None
