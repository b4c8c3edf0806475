"""The ingest rows of ``TableEvidenceStore``: the alert index (de-duplication) and the entity index (grouping
claims and grouping rows), on Table Storage through azure-data-tables.

Every write here is conditional or atomic, and each answers what a look-up before it would have (issue 14,
fewer round trips per alert): a lost alert claim reads the claim that won; entity claims and grouping rows
share the partner's partition, so they are written in one entity-group transaction that either all
succeeds or writes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.adapters.table_rows import ENTITY_CLAIM_PREFIX, claim_from, claim_row, index_row
from shared.store import AlertClaim, EntityClaim, EntityIndexRow, EntityRows, key_hash

# The service allows 15 comparisons per filter: the partition, then a claim and a grouping row per entity.
_ENTITIES_PER_QUERY = 7
_OPS_PER_TRANSACTION = 100  # an entity-group transaction's limit


class IngestTables:
    """Mixed into ``TableEvidenceStore`` (which provides ``_t``, a table client by name)."""

    def _t(self, name: str) -> Any: ...

    # -- alert index ------------------------------------------------------------
    def get_alert_claims(self, keys: list[str]) -> dict[str, AlertClaim]:
        if not keys:
            return {}
        hashes = {key_hash(k): k for k in keys}
        claims: dict[str, AlertClaim] = {}
        hash_list = list(hashes)
        for i in range(0, len(hash_list), 14):  # the service allows 15 comparisons per filter
            flt = " or ".join(f"PartitionKey eq '{h}'" for h in hash_list[i : i + 14])
            for r in self._t("AlertIndex").query_entities(flt, select=["PartitionKey", "incidentId", "receivedAt"]):
                if r["PartitionKey"] in hashes:
                    claims[hashes[r["PartitionKey"]]] = AlertClaim(r["incidentId"], r.get("receivedAt") or "")
        return claims

    def claim_alert(self, key: str, incident_id: str, received_at: datetime) -> tuple[str, bool]:
        claim, won = self.try_claim_alert(key, incident_id, received_at)
        return claim.incident_id, won

    def try_claim_alert(self, key: str, incident_id: str, received_at: datetime) -> tuple[AlertClaim, bool]:
        from azure.core.exceptions import ResourceExistsError

        entity = {
            "PartitionKey": key_hash(key),
            "RowKey": "",
            "alertKey": key[:1000],
            "incidentId": incident_id,
            "receivedAt": received_at.isoformat(),
        }
        try:
            self._t("AlertIndex").create_entity(entity)
            return AlertClaim(incident_id, entity["receivedAt"]), True
        except ResourceExistsError:
            row = self._t("AlertIndex").get_entity(key_hash(key), "", select=["incidentId", "receivedAt"])
            return AlertClaim(row["incidentId"], row.get("receivedAt") or ""), False

    # -- entity index: grouping rows (RK sha256(key)) and claims (RK ``claim~`` + sha256(key)) -----------
    def upsert_entities(self, partition: str, rows: list[EntityIndexRow]) -> None:
        ops = [("upsert", index_row(partition, r)) for r in rows]
        for i in range(0, len(ops), _OPS_PER_TRANSACTION):
            self._t("EntityIndex").submit_transaction(ops[i : i + _OPS_PER_TRANSACTION])

    def read_entities(self, partition: str, keys: list[str]) -> dict[str, EntityRows]:
        found: dict[str, EntityRows] = {k: EntityRows(k, None, None) for k in keys}
        unique = list(found)
        for i in range(0, len(unique), _ENTITIES_PER_QUERY):
            by_row: dict[str, str] = {}
            for k in unique[i : i + _ENTITIES_PER_QUERY]:
                by_row[key_hash(k)] = by_row[ENTITY_CLAIM_PREFIX + key_hash(k)] = k
            flt = (
                f"PartitionKey eq '{key_hash(partition)}' and (" + " or ".join(f"RowKey eq '{r}'" for r in by_row) + ")"
            )
            for r in self._t("EntityIndex").query_entities(flt):
                key = by_row.get(r["RowKey"])
                if key is None:
                    continue
                if r["RowKey"].startswith(ENTITY_CLAIM_PREFIX):
                    found[key] = EntityRows(key, claim_from(key, r), found[key].index)
                else:
                    found[key] = EntityRows(key, found[key].claim, EntityIndexRow(key, r["incidentId"], r["lastSeen"]))
        return found

    def write_entities(
        self, partition: str, claims: list[EntityClaim], rows: list[EntityIndexRow], *, fresh: bool
    ) -> bool:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import TableTransactionError, UpdateMode

        ops: list[tuple] = []
        for c in claims:
            if c.etag:
                guard = {"mode": UpdateMode.REPLACE, "etag": c.etag, "match_condition": MatchConditions.IfNotModified}
                ops.append(("update", claim_row(partition, c), guard))
            else:
                ops.append(("create", claim_row(partition, c)))
        ops += [("create" if fresh else "upsert", index_row(partition, r)) for r in rows]
        if not ops:
            return True
        if len(ops) > _OPS_PER_TRANSACTION:  # callers cap an alert's entities well below this
            raise ValueError(f"{len(ops)} entity rows do not fit one transaction")
        try:
            self._t("EntityIndex").submit_transaction(ops)
        except TableTransactionError as exc:
            if exc.status_code in (404, 409, 412):
                return False
            raise
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            return False
        return True
