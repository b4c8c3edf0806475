"""Key Vault secrets (issue 16): the Teams Workflows webhook URLs the partner registry names.

``azure-keyvault-secrets`` (``SecretClient``) with the app's managed identity (``clients.credential()``,
role Key Vault Secrets User on the vault, infra/core/key-vault.bicep), imported on first use. Values are
cached for ``CACHE_SECONDS`` so a storm of cards costs one vault read per secret, while a rotated URL is
picked up within minutes (``forget`` drops one at once, when its webhook refused a post).

A secret's value never leaves this module except to its caller: never logged, never in an error message
(SDK errors are reduced to their status and type, as their text can carry request details).

Key Vault answers an unauthenticated request with a challenge naming its tenant and the token audience
(``https://vault.azure.net``); the SDK then asks the credential for that audience. It also checks that
the challenge's resource matches the vault's host (``*.vault.azure.net``) so a vault URL pointing at some
other host cannot be handed a vault token — kept on, except for a loopback vault (the local stand-in in
``devtools/fakes``), whose host can never match and which never leaves this machine.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared.errors import AccessDeniedError, AdapterError, RequestRejectedError, TargetNotFoundError, TransientError

if TYPE_CHECKING:  # pragma: no cover - types only
    from azure.keyvault.secrets import SecretClient

    from shared.settings import Settings

CACHE_SECONDS = 300.0
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class KeyVaultSecrets:
    """Reads secret values from ``KEY_VAULT_URL`` (cached briefly)."""

    def __init__(self, settings: Settings, cache_seconds: float = CACHE_SECONDS):
        if not settings.key_vault_url:
            raise RequestRejectedError("KEY_VAULT_URL is not set")
        self.vault_url = settings.key_vault_url
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._client: SecretClient | None = None
        self._cache: dict[str, tuple[str, float]] = {}

    def _secret_client(self) -> SecretClient:
        with self._lock:
            if self._client is None:
                from azure.keyvault.secrets import SecretClient

                from shared.adapters.clients import DEFAULT_CLIENT_KWARGS, credential

                loopback = (urlsplit(self.vault_url).hostname or "") in _LOOPBACK
                # Short: a card waits on this read, and a failed read is retried by the Teams step itself.
                options = {**DEFAULT_CLIENT_KWARGS, "retry_total": 2, "read_timeout": 15}
                self._client = SecretClient(
                    self.vault_url, credential(), verify_challenge_resource=not loopback, **options
                )
            return self._client

    def secret(self, name: str) -> str:
        """The current value of secret ``name``; ``AdapterError`` subclasses when it cannot be read."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(name)
            if cached is not None and now - cached[1] < self.cache_seconds:
                return cached[0]
        value = self._read(name)
        with self._lock:
            self._cache[name] = (value, now)
        return value

    def forget(self, name: str) -> None:
        """Drop a cached value (its webhook refused a post: the URL may have been rotated)."""
        with self._lock:
            self._cache.pop(name, None)

    def _read(self, name: str) -> str:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        try:
            got = self._secret_client().get_secret(name)
        except ResourceNotFoundError:
            raise TargetNotFoundError(
                f"Key Vault secret {name!r} does not exist (or is disabled)", status=404
            ) from None
        except ClientAuthenticationError as exc:
            status = getattr(exc, "status_code", None)
            raise AccessDeniedError(
                f"Key Vault refused to read secret {name!r} (HTTP {status}): the app's identity needs "
                "Key Vault Secrets User on the vault",
                status=status,
            ) from None
        except HttpResponseError as exc:
            raise _http_failure(name, exc.status_code) from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise TransientError(f"Key Vault unreachable reading secret {name!r} ({type(exc).__name__})") from None
        except Exception as exc:  # a credential failure (no managed identity), anything else: reason without details
            raise TransientError(f"reading Key Vault secret {name!r} failed ({type(exc).__name__})") from None
        if not got.value:
            raise TargetNotFoundError(f"Key Vault secret {name!r} is empty", status=200)
        return got.value


def _http_failure(name: str, status: Any) -> AdapterError:
    if status == 403:
        return AccessDeniedError(
            f"Key Vault refused to read secret {name!r} (HTTP 403): the app's identity needs Key Vault Secrets "
            "User on the vault",
            status=403,
        )
    if status in (408, 429) or (isinstance(status, int) and status >= 500):
        return TransientError(f"Key Vault busy reading secret {name!r} (HTTP {status})", status=status)
    return RequestRejectedError(f"Key Vault refused to read secret {name!r} (HTTP {status})", status=status)
