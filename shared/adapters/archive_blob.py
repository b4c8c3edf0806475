"""The write-once evidence archive container (azure-storage-blob): evidence anchors (shared/anchor.py).

In Azure the container has a time-based immutability policy (infra/core/evidence-storage.bicep):
the app identity may create blobs, and nobody may overwrite or delete one during the retention
period. ``write_new`` never overwrites even where no policy applies (Azurite): an existing name
is an error, not a replacement.
"""

from __future__ import annotations

from typing import Any

from shared.errors import ConfigurationError, ConflictError


class BlobAnchorArchive:
    """Satisfies ``shared.anchor.AnchorArchive``."""

    def __init__(self, container: Any):
        self._container = container
        self._created = False

    @classmethod
    def from_settings(cls, settings) -> BlobAnchorArchive | None:
        """From the ``EvidenceStorage`` connection string (its BlobEndpoint) or
        ``EvidenceStorage__blobServiceUri`` with the managed identity; None when neither is set."""
        from azure.storage.blob import BlobServiceClient

        conn, uri = settings.evidence_connection_string, settings.evidence_blob_service_uri
        if conn and ("BlobEndpoint=" in conn or "UseDevelopmentStorage=true" in conn or "AccountKey=" in conn):
            service = BlobServiceClient.from_connection_string(conn)
        elif uri:
            from shared.adapters.clients import credential

            service = BlobServiceClient(account_url=uri, credential=credential())
        else:
            return None
        if not settings.evidence_archive_container:
            raise ConfigurationError("EVIDENCE_ARCHIVE_CONTAINER must name the archive container")
        return cls(service.get_container_client(settings.evidence_archive_container))

    def _ensure(self) -> None:
        # Locally (Azurite) the container may not exist yet; in Azure Bicep creates it and the
        # app's role cannot create containers, so "exists" is the expected answer there.
        if self._created:
            return
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

        try:
            self._container.create_container()
        except ResourceExistsError:
            pass
        except HttpResponseError as exc:
            if exc.status_code != 403:
                raise
        self._created = True

    def write_new(self, name: str, body: bytes) -> None:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import ContentSettings

        self._ensure()
        try:
            self._container.upload_blob(
                name, body, overwrite=False, content_settings=ContentSettings(content_type="application/json")
            )
        except ResourceExistsError:
            raise ConflictError(f"anchor {name} already exists") from None

    def latest(self, prefix: str) -> tuple[str, bytes] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            names = [b.name for b in self._container.list_blobs(name_starts_with=prefix)]
        except ResourceNotFoundError:
            return None
        if not names:
            return None
        name = max(names)
        return name, self._container.download_blob(name).readall()

    def read(self, name: str) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._container.download_blob(name).readall()
        except ResourceNotFoundError:
            return None
