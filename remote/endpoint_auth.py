"""Microsoft Entra ID tokens for an Azure ML online endpoint with ``auth_mode: aad_token``.

The endpoint's front end accepts ``Authorization: Bearer <token>`` where the token is issued
for the Azure Machine Learning resource (scope ``https://ml.azure.com/.default``) to a
caller holding the ``.../onlineEndpoints/score/action`` permission ("AzureML Data Scientist",
or a custom role with only that action: docs/deploy.md, "Identities and roles").

:class:`EntraTokenAuth` asks an azure-identity credential (interactive browser sign-in with
NeuroHSI's own app registration on a workstation, a managed identity in the cloud) for a
token, keeps it, and asks again ``refresh_margin_s`` before it expires, so a token never
runs out in the middle of a request. When the credential cannot give one (signed out,
network down, consent revoked) :meth:`header` raises :class:`remote.scoring_client.RemoteError`:
``classify_remote_or_local`` then classifies locally and the usual fallback banner says why.
Tokens are secrets: each is remembered for redaction and never logged.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from core.redaction import remember_secret

SCORING_SCOPE = "https://ml.azure.com/.default"
DEFAULT_REFRESH_MARGIN_S = 300.0  # Entra tokens live about an hour; refresh five minutes early


class TokenError(Exception):
    """The credential gave no usable token (the client turns it into a RemoteError)."""


class EntraTokenAuth:
    """``Authorization`` header values from an azure-identity ``TokenCredential`` (``get_token(scope)``)."""

    def __init__(self, credential, *, scope: str = SCORING_SCOPE,
                 refresh_margin_s: float = DEFAULT_REFRESH_MARGIN_S, clock: Callable[[], float] = time.time) -> None:
        if not callable(getattr(credential, "get_token", None)):
            raise ValueError("Entra ID endpoint auth needs an azure-identity credential (with get_token)")
        if not refresh_margin_s >= 0:
            raise ValueError(f"refresh_margin_s must be >= 0 seconds, got {refresh_margin_s!r}")
        self.credential, self.scope = credential, scope
        self.refresh_margin_s, self._clock = float(refresh_margin_s), clock
        self._token: str | None = None
        self._expires_on = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the token
        return f"EntraTokenAuth(scope={self.scope!r})"

    def header(self) -> str:
        """``"Bearer <token>"``, refreshed when it expires within the margin; TokenError when none can be had."""
        with self._lock:
            if self._token is None or self._clock() >= self._expires_on - self.refresh_margin_s:
                self._refresh()
            return f"Bearer {self._token}"

    def _refresh(self) -> None:
        try:
            access = self.credential.get_token(self.scope)
        except Exception as exc:  # azure-identity raises many kinds (ClientAuthenticationError, ...): one line
            self._token = None
            text = " ".join(str(exc).split())[:200] or exc.__class__.__name__
            raise TokenError(f"Entra ID sign-in for the endpoint failed: {text}") from None
        token, expires_on = getattr(access, "token", None), getattr(access, "expires_on", None)
        if not isinstance(token, str) or not token or not isinstance(expires_on, (int, float)):
            self._token = None
            raise TokenError("Entra ID sign-in for the endpoint gave no usable token")
        remember_secret(token)
        self._token, self._expires_on = token, float(expires_on)
