"""``EvidenceStore`` on Azure Table Storage (or Azurite), through azure-data-tables.

The table layout is described in ``shared.store``. SDK imports stay inside the methods (cold start): this
module loads azure-core / azure-data-tables only when a store is built and used.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

from shared.adapters.table_ingest import IngestTables
from shared.adapters.table_rows import (
    event_entity,
    event_from,
    get_json,
    incident_entity,
    incident_from,
    put_json,
    q,
    range_filter,
)
from shared.errors import ConcurrencyError, ConfigurationError, ConflictError
from shared.evidence import GENESIS_HASH, EventDraft, EvidenceEvent, chain
from shared.models import Incident
from shared.store import (
    TABLES,
    ChainHead,
    EvidenceStore,
    IncidentIndexRow,
)

HEAD_ROW = "~head"


class TableEvidenceStore(IngestTables, EvidenceStore):
    """``EvidenceStore`` on Azure Table Storage (or Azurite); the alert and entity index rows are in
    ``shared.adapters.table_ingest``."""

    # Tables already ensured per account, shared by every store of the process (one create call each).
    _ensured: ClassVar[set[tuple[str, str]]] = set()
    _ensure_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, service):  # azure.data.tables.TableServiceClient
        self._service = service
        self._clients: dict[str, Any] = {}
        self._ensure_tables()

    @classmethod
    def from_settings(cls, settings) -> TableEvidenceStore:
        from shared.adapters.clients import table_service

        if not (settings.evidence_connection_string or settings.evidence_table_service_uri):
            raise ConfigurationError("set EvidenceStorage (connection string) or EvidenceStorage__tableServiceUri")
        return cls(table_service(settings))

    # -- plumbing -------------------------------------------------------------
    def _ensure_tables(self) -> None:
        account = getattr(self._service, "url", "") or str(id(self._service))
        with self._ensure_lock:
            for name in TABLES:
                if (account, name) in self._ensured:
                    continue
                self._service.create_table_if_not_exists(name)
                self._ensured.add((account, name))

    def _t(self, name: str):
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = self._service.get_table_client(name)
        return client

    @staticmethod
    def _errors():
        from azure.core import exceptions as e

        return e

    # -- incidents ------------------------------------------------------------------

    def get_incident(self, incident_id: str) -> tuple[Incident, str] | None:
        e = self._errors()
        try:
            entity = self._t("Incidents").get_entity(incident_id, "incident")
        except e.ResourceNotFoundError:
            return None
        return incident_from(entity), entity.metadata["etag"]

    def create_incident(self, incident: Incident) -> str:
        e = self._errors()
        try:
            meta = self._t("Incidents").create_entity(incident_entity(incident))
        except e.ResourceExistsError:
            raise ConflictError(f"incident {incident.id} exists") from None
        return meta["etag"]

    def replace_incident(self, incident: Incident, etag: str) -> str:
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        e = self._errors()
        try:
            meta = self._t("Incidents").update_entity(
                incident_entity(incident),
                mode=UpdateMode.REPLACE,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (e.ResourceModifiedError, e.ResourceNotFoundError):
            raise ConcurrencyError(f"incident {incident.id} changed since read") from None
        return meta["etag"]

    def iter_incidents(self, filter_expr: str | None = None) -> Iterator[Incident]:
        flt = "RowKey eq 'incident'" + (f" and ({filter_expr})" if filter_expr else "")
        for entity in self._t("Incidents").query_entities(flt):
            yield incident_from(entity)

    # -- timeline -------------------------------------------------------------------

    def append_events(
        self, incident_id: str, drafts: list[EventDraft], new_chain: bool = False, head: ChainHead | None = None
    ) -> list[EvidenceEvent]:
        from azure.core import MatchConditions
        from azure.data.tables import TableTransactionError, UpdateMode

        e = self._errors()
        if not drafts:
            return []
        if len(drafts) > 99:
            out: list[EvidenceEvent] = []
            for i in range(0, len(drafts), 99):
                out += self.append_events(
                    incident_id, drafts[i : i + 99], new_chain and i == 0, head if i == 0 else None
                )
            return out
        table = self._t("IncidentTimeline")
        for attempt in range(40):
            if new_chain and attempt == 0:
                last_seq, last_hash, etag = 0, GENESIS_HASH, None
            elif head is not None and attempt == 0:  # read with the events: the ETag guard keeps it honest
                last_seq, last_hash, etag = head.seq, head.hash, head.etag
            else:
                try:
                    row = table.get_entity(incident_id, HEAD_ROW)
                    last_seq, last_hash, etag = int(row["lastSeq"]), row["lastHash"], row.metadata["etag"]
                except e.ResourceNotFoundError:
                    last_seq, last_hash, etag = 0, GENESIS_HASH, None
            events = chain(incident_id, drafts, last_seq, last_hash)
            head_entity = {
                "PartitionKey": incident_id,
                "RowKey": HEAD_ROW,
                "lastSeq": events[-1].seq,
                "lastHash": events[-1].hash,
            }
            ops: list[tuple] = [("create", event_entity(ev)) for ev in events]
            if etag is None:
                ops.append(("create", head_entity))
            else:
                ops.append(
                    (
                        "update",
                        head_entity,
                        {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified},
                    )
                )
            try:
                table.submit_transaction(ops)
                return events
            except TableTransactionError as exc:
                if exc.status_code not in (409, 412):
                    raise
            except (e.ResourceExistsError, e.ResourceModifiedError):
                pass
            # Another writer appended first: re-read the head and try again.
            time.sleep(min(0.2, 0.005 * (attempt + 1)) * random.random())
        raise ConcurrencyError(f"could not append to the timeline of {incident_id}: too much contention")

    def list_events(self, incident_id: str) -> list[EvidenceEvent]:
        flt = f"PartitionKey eq '{q(incident_id)}' and RowKey lt '{HEAD_ROW}'"
        return sorted((event_from(r) for r in self._t("IncidentTimeline").query_entities(flt)), key=lambda ev: ev.seq)

    def read_timeline(self, incident_id: str) -> tuple[list[EvidenceEvent], ChainHead | None]:
        # The head row sorts after every event row of the partition: one query returns both.
        events, head = [], None
        for r in self._t("IncidentTimeline").query_entities(f"PartitionKey eq '{q(incident_id)}'"):
            if r["RowKey"] == HEAD_ROW:
                head = ChainHead(int(r["lastSeq"]), r["lastHash"], r.metadata["etag"])
            else:
                events.append(event_from(r))
        return sorted(events, key=lambda ev: ev.seq), head

    def iter_events(self, occurred_from: str | None, occurred_to: str | None) -> Iterator[EvidenceEvent]:
        parts = [f"RowKey lt '{HEAD_ROW}'"]
        if occurred_from:
            parts.append(f"occurredAt ge '{q(occurred_from)}'")
        if occurred_to:
            parts.append(f"occurredAt le '{q(occurred_to)}'")
        for entity in self._t("IncidentTimeline").query_entities(" and ".join(parts), results_per_page=1000):
            yield event_from(entity)

    def scan_events(
        self,
        occurred_from: str | None = None,
        occurred_before: str | None = None,
        after: tuple[str, int] | None = None,
        incident_id: str | None = None,
    ) -> Iterator[EvidenceEvent]:
        # Table Storage returns rows in (PartitionKey, RowKey) order, i.e. (incident id, seq): the
        # cursor is a key range, so a page resumes without re-reading what came before. The range is
        # split in two queries (rest of the cursor's partition, then later partitions) because an
        # "or" across keys would make the service scan from the start of the table.
        time_parts = range_filter("occurredAt", occurred_from, occurred_before)
        below_head = f"RowKey lt '{HEAD_ROW}'"
        queries: list[list[str]] = []
        if incident_id is not None:
            if after is None or after[0] < incident_id:
                queries.append([f"PartitionKey eq '{q(incident_id)}'", below_head])
            elif after[0] == incident_id:
                queries.append([f"PartitionKey eq '{q(incident_id)}'", f"RowKey gt '{after[1]:010d}'", below_head])
        elif after is not None:
            queries.append([f"PartitionKey eq '{q(after[0])}'", f"RowKey gt '{after[1]:010d}'", below_head])
            queries.append([f"PartitionKey gt '{q(after[0])}'", below_head])
        else:
            queries.append([below_head])
        for parts in queries:
            for entity in self._plain_rows("IncidentTimeline", " and ".join(parts + time_parts)):
                yield event_from(entity)

    def _plain_rows(self, table: str, flt: str, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        """Rows of a filtered query as plain dicts, one page in memory at a time.

        Sent through the SDK client's own pipeline (authentication, retries, transport), but each page
        is parsed with ``json.loads`` and no per-property type metadata (``odata=nometadata``): the
        SDK's generic model deserialisation costs more than everything else an export does per row.
        Only for tables whose rows hold strings and 32-bit integers (the timeline).
        """
        from urllib.parse import quote

        from azure.core.rest import HttpRequest

        client = self._t(table)
        url = f"{client.url.rstrip('/')}/{quote(table)}()"
        params = {"$filter": flt, "$top": str(page_size)}
        while True:
            request = HttpRequest(
                "GET",
                url,
                params=params,
                headers={
                    "Accept": "application/json;odata=nometadata",
                    "DataServiceVersion": "3.0",
                    "MaxDataServiceVersion": "3.0;NetFx",
                    "x-ms-version": "2019-02-02",
                },
            )
            response = client._client.send_request(request)
            response.raise_for_status()
            yield from response.json().get("value", [])
            next_pk = response.headers.get("x-ms-continuation-NextPartitionKey")
            if not next_pk:
                return
            params = {
                "$filter": flt,
                "$top": str(page_size),
                "NextPartitionKey": next_pk,
                "NextRowKey": response.headers.get("x-ms-continuation-NextRowKey") or "",
            }

    @staticmethod
    def _incident_filter(
        partner_id: str | None,
        priorities: Iterable[str] | None,
        incident_id: str | None = None,
        from_incident: str | None = None,
    ) -> list[str]:
        parts = ["RowKey eq 'incident'"]
        if incident_id is not None:
            parts.append(f"PartitionKey eq '{q(incident_id)}'")
        if from_incident is not None:
            parts.append(f"PartitionKey ge '{q(from_incident)}'")
        if partner_id is not None:
            parts.append(f"partnerId eq '{q(partner_id)}'")
        wanted = sorted(set(priorities or ()))
        if wanted:
            parts.append("(" + " or ".join(f"priority eq '{q(p)}'" for p in wanted) + ")")
        return parts

    def iter_incident_index(
        self,
        partner_id: str | None = None,
        priorities: Iterable[str] | None = None,
        incident_id: str | None = None,
        from_incident: str | None = None,
        touched_since: str | None = None,
    ) -> Iterator[IncidentIndexRow]:
        parts = self._incident_filter(partner_id, priorities, incident_id, from_incident)
        if touched_since:
            parts.append(f"(createdAt ge '{q(touched_since)}' or updatedAt ge '{q(touched_since)}')")
        rows = self._t("Incidents").query_entities(
            " and ".join(parts),
            results_per_page=1000,
            select=[
                "PartitionKey",
                "partnerId",
                "priority",
                "status",
                "createdAt",
                "updatedAt",
                "containmentAttention",
                "title",
            ],
        )
        for r in rows:
            yield IncidentIndexRow(
                r["PartitionKey"],
                r.get("partnerId") or None,
                r.get("priority", ""),
                r.get("status", ""),
                r.get("createdAt", ""),
                r.get("updatedAt", ""),
                r.get("containmentAttention") or None,  # issue 16
                r.get("title"),
            )

    def find_incidents(
        self,
        partner_id: str | None = None,
        priorities: Iterable[str] | None = None,
        created_from: str | None = None,
        created_before: str | None = None,
    ) -> Iterator[Incident]:
        parts = self._incident_filter(partner_id, priorities) + range_filter("createdAt", created_from, created_before)
        for entity in self._t("Incidents").query_entities(" and ".join(parts), results_per_page=1000):
            yield incident_from(entity)

    def get_chain_head(self, incident_id: str) -> tuple[int, str] | None:
        e = self._errors()
        try:
            head = self._t("IncidentTimeline").get_entity(incident_id, HEAD_ROW)
        except e.ResourceNotFoundError:
            return None
        return int(head["lastSeq"]), head["lastHash"]

    def iter_chain_heads(self, changed_since: datetime | None = None) -> Iterator[tuple[str, int, str]]:
        # Every chain's head row (or those written since), whether or not its incident row still exists
        # (issue 12: anchors). The Timestamp filter keeps the hourly anchor's answer to what changed.
        flt = f"RowKey eq '{HEAD_ROW}'"
        if changed_since is not None:
            flt += f" and Timestamp ge datetime'{changed_since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}'"
        rows = self._t("IncidentTimeline").query_entities(
            flt, select=["PartitionKey", "lastSeq", "lastHash"], results_per_page=1000
        )
        for r in rows:
            yield r["PartitionKey"], int(r["lastSeq"]), r["lastHash"]

    def get_event_hash(self, incident_id: str, seq: int) -> str | None:
        e = self._errors()
        try:
            return self._t("IncidentTimeline").get_entity(incident_id, f"{seq:010d}", select=["hash"])["hash"]
        except e.ResourceNotFoundError:
            return None

    _EVIDENCE_TABLES = ("Incidents", "IncidentTimeline", "ContainmentActions", "Notifications")

    def newest_write(self, incident_id: str) -> datetime | None:
        newest: datetime | None = None
        for name in self._EVIDENCE_TABLES:
            for r in self._t(name).query_entities(
                f"PartitionKey eq '{q(incident_id)}'", select=["RowKey", "Timestamp"]
            ):
                stamp = r.metadata.get("timestamp")
                if stamp is not None and (newest is None or stamp > newest):
                    newest = stamp
        return newest

    def delete_incident_evidence(self, incident_id: str, *, written_before: datetime) -> int:
        newest = self.newest_write(incident_id)
        if newest is not None and newest >= written_before:
            raise ConflictError(
                f"evidence of {incident_id} was written at {newest.isoformat()}, "
                f"after {written_before.isoformat()}: refusing to delete"
            )
        deleted = 0
        # The incident row goes last, so an interrupted purge can be run again and finish.
        for name in ("IncidentTimeline", "ContainmentActions", "Notifications", "Incidents"):
            table = self._t(name)
            keys = [r["RowKey"] for r in table.query_entities(f"PartitionKey eq '{q(incident_id)}'", select=["RowKey"])]
            for i in range(0, len(keys), 100):
                table.submit_transaction(
                    [("delete", {"PartitionKey": incident_id, "RowKey": k}) for k in keys[i : i + 100]]
                )
            deleted += len(keys)
        return deleted

    # -- containment actions, notifications -----------------------------------------------
    def put_record(
        self,
        table: str,
        incident_id: str,
        record_id: str,
        data: dict[str, Any],
        etag: str | None = None,
        create_only: bool = False,
    ) -> str:
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        e = self._errors()
        entity = {"PartitionKey": incident_id, "RowKey": record_id}
        for k in ("kind", "status", "target", "createdAt", "updatedAt", "channel", "recipient"):
            if isinstance(data.get(k), (str, int, float)):
                entity[k] = data[k]
        put_json(entity, "doc", data)
        client = self._t(table)
        try:
            if create_only:
                return client.create_entity(entity)["etag"]
            if etag:
                return client.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )["etag"]
            return client.upsert_entity(entity, mode=UpdateMode.REPLACE)["etag"]
        except e.ResourceExistsError:
            raise ConflictError(f"{table} {record_id} exists") from None
        except (e.ResourceModifiedError, e.ResourceNotFoundError):
            raise ConcurrencyError(f"{table} {record_id} changed since read") from None

    def get_record(self, table: str, incident_id: str, record_id: str) -> tuple[dict[str, Any], str] | None:
        e = self._errors()
        try:
            entity = self._t(table).get_entity(incident_id, record_id)
        except e.ResourceNotFoundError:
            return None
        return get_json(entity, "doc"), entity.metadata["etag"]

    def list_records(self, table: str, incident_id: str) -> list[dict[str, Any]]:
        rows = self._t(table).query_entities(f"PartitionKey eq '{q(incident_id)}'")
        return [get_json(r, "doc") for r in sorted(rows, key=lambda r: r["RowKey"])]

    def delete_record(self, table: str, incident_id: str, record_id: str) -> None:
        # issue 14: work-queue rows only (queued emails, storm items); deleting an absent row is no error
        self._t(table).delete_entity(incident_id, record_id)

    # -- state -----------------------------------------------------------------------
    def get_state(self, name: str) -> tuple[dict[str, Any], str] | None:
        return self.get_record("IngestState", "state", name)

    def set_state(self, name: str, value: dict[str, Any], etag: str | None) -> str:
        return self.put_record("IngestState", "state", name, value, etag=etag)
