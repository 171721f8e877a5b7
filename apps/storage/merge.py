"""The survivorship merge: a unit of a batch's GDP candidates (one chunk of the pipeline) becomes Golden Data Points.

A batch is merged in one transaction, one unit after another in position order, all with the same
`now` (`BatchMerge`). A unit is a list of candidate records, `(raw_id, quality_flags, entity_key,
dimensions, dimensions_key, observed_at, [(measure, value, unit, key_hash), …])`
(compute.records.make_candidates), and its merge is at most three statements whatever its size:

1. shadowed  – within the unit only the last record of a GDP key can win (found in Python);
2. one probe looks up the current version of every other key that may have one (an index probe per
   key, by contract, time and key hash, in that order). A key observed after the latest observed_at of its
   contract's current versions before the batch (a new period, or a first load) can only have one this batch
   wrote, and a filter of the records the batch merged says when it has none (or the caller says no two
   records of the batch share a key: `distinct_keys`): such keys are not probed. Then, in Python:
   unchanged – a value equal to the current version changes no belief (no new version),
   lost      – the current version wins: a steward override, or (priority mode) a source of higher
               priority,
   wins      – anything else: the current version is superseded;
3. one UPDATE gives the superseded current versions `recorded_to = now` (kept, bitemporal);
4. one write (COPY on PostgreSQL) adds the winners as current versions, and the shadowed and lost values
   as versions that were never current (recorded_from = recorded_to = now), so lineage shows they
   arrived and lost, and a removed override can fall back to the best of them. On PostgreSQL the COPY stays
   open from one unit to the next until a statement needs the connection (a probe, an UPDATE, the batch's
   completion: `BatchMerge.flush`), so that the server parses a unit's versions while the next unit is made.

A current version an earlier unit of the same batch wrote is always replaced (a later record of the
batch wins, whatever its value): it ends with recorded_from = recorded_to = now and
superseded_by_batch = its own batch, exactly as a value shadowed within one unit, and is counted so.
Merging a batch in units or whole gives the same current values.
"""

from __future__ import annotations

import logging
from dataclasses import astuple, dataclass
from datetime import datetime
from decimal import Decimal
from itertools import groupby
from operator import itemgetter
from typing import Any

from django.db import DatabaseError, connection, transaction

from apps.host.choices import SurvivorshipChoices
from apps.kernel.bloom import BloomFilter
from apps.storage import bulk
from apps.storage.models import GoldenDataPoint

logger = logging.getLogger(__name__)

GDP = "storage_goldendatapoint"
# Advisory lock namespace of a contract's merges, keyed by the contract's id. A merge holds it to its commit
# (compute.ingest.merger); KPI runs wait on it for their as-of, steward overrides for a moment (services).
MERGE_LOCK = 4242
GDP_BY_BATCH_RAW = "storage_gdp_by_batch_raw"
SQLITE_SLICE = 500  # keys or ids per statement on SQLite (bound parameters)
HELD_BACK_RECORDS = 5000  # records held back before the COPY is ended for them: bounds their memory


@dataclass(frozen=True)
class MergeResult:
    created: int  # new current versions
    superseded: int  # earlier current versions this batch replaced
    unchanged: int  # values equal to the current version
    lost: int  # values the current version (override or higher priority) beat
    shadowed: int  # values a later record of the same batch replaced

    def __add__(self, other: MergeResult) -> MergeResult:
        return MergeResult(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


NOTHING = MergeResult(0, 0, 0, 0, 0)


class BatchMerge:
    """One batch's merge, in the caller's transaction, which holds the contract's merge lock from before this
    object is made: `add` merges a unit, units in position order; `result` sums them once `flush` has ended the
    open COPY (which any other statement on the connection needs first); `abort` abandons it when the merge
    fails. `expected_keys` (records × measures) sizes the filter of the records the batch merged, which it keeps
    only without `distinct_keys`: the caller's word that no two records of the batch share a key (in any unit), so
    that no record has a version of the batch to replace."""

    def __init__(
        self,
        *,
        batch_id: int,
        tenant_id: int,
        contract_id: int,
        contract_version_id: int,
        source_id: int,
        source_priority: int,
        survivorship: str,
        now: datetime,
        expected_keys: int,
        distinct_keys: bool = False,
        recorded_at_start: bool = False,
    ) -> None:
        self.batch_id, self.tenant_id, self.contract_id, self.now = batch_id, tenant_id, contract_id, now
        self.source_priority, self.survivorship = source_priority, survivorship
        # recorded_at_start: `now` is the transaction's start, the default of recorded_from (PostgreSQL), which
        # the COPY then leaves out.
        recorded = () if recorded_at_start else (now,)
        self.common = (tenant_id, contract_id, contract_version_id, source_id, source_priority, batch_id, *recorded,
                       False, "", None)  # fmt: skip
        self._columns = bulk.GDP_COLUMNS_RECORDED_AT_START if recorded_at_start else bulk.GDP_COLUMNS
        self.result = NOTHING
        # The records the batch has merged, by `_identity` (a record's first key hash, whose str hash Python kept).
        self._seen = None if distinct_keys else BloomFilter(expected_keys)
        self._before: datetime | None = None  # the latest observed_at of the contract's current versions
        self._before_read = False
        # The open COPY the units' versions go to while no statement needs the connection (see `flush`).
        self._stream: bulk.CopyStream | None = None
        self._held: list[Any] = []  # records that wait for the COPY's end (`_hold_back`)

    def add(self, records: list[Any]) -> None:
        """Merge one unit: `records` in position order (see the module)."""
        if not self._before_read:
            self._before, self._before_read = _latest_observed(self.contract_id), True
        if self._stream is not None and not self._observed_before(records):
            # No key of the unit may have a current version from an earlier batch, and those the batch may have
            # merged are held back: what is left needs no probe.
            if self._seen is None:
                self._merge_new(records)
                return
            records, identities = self._hold_back(records)
            if len(set(identities)) == len(identities):
                self._merge_new(records, identities)
            else:
                self._merge(records, probe_seen=False, streaming=True)
            if len(self._held) >= HELD_BACK_RECORDS:
                self.flush()
        else:
            self._merge(records, probe_seen=True, streaming=True)

    def _observed_before(self, records: list[Any]) -> bool:
        before = self._before
        return before is not None and any(record[5] <= before for record in records)

    def _merge_new(self, records: list[Any], identities: list[str | None] | None = None) -> None:
        """Merge records that need no probe and share no key (a first load, a new period): each value is a new
        current version, so they are written as they came, without looking at a key (`_merge` would). Their
        `identities` go into the filter, where there is one."""
        if records:
            bulk.write_gdp_versions(self.common, records, self._stream, columns=self._columns)
            if self._seen is not None and identities is not None:
                self._seen.update(identities)
            self.result += MergeResult(created=sum([len(record[6]) for record in records]), superseded=0, unchanged=0,
                                       lost=0, shadowed=0)  # fmt: skip

    def _hold_back(self, records: list[Any]) -> tuple[list[Any], list[str | None]]:
        """While the COPY is open, the records with a key the batch may have merged in an earlier unit (so says the
        filter, mostly wrongly) wait for the next `flush`, which probes them, and with them every later record
        that shares a key with one: the rest of the unit, which needs no probe, is merged now, without ending
        the COPY. A held-back record's keys go into the filter, so a later unit's record with one waits too: no
        record is merged before an earlier one that has a key in common, and a held-back record replaces the
        version of an earlier one merged before it, as within a unit. Returns the rest, with their `_identity`."""
        identities = list(map(_identity, records))
        held = set(self._seen.members(identities))
        if not held:
            return records, identities
        now, now_identities = [], []
        for record, identity in zip(records, identities, strict=True):
            if identity in held:
                self._held.append(record)
            else:
                now.append(record)
                now_identities.append(identity)
        self._seen.update(held)
        return now, now_identities

    def _merge(self, records: list[Any], *, probe_seen: bool, streaming: bool) -> None:
        # key hash → the value tuple of its last record in the unit: the only one that can win
        last: dict[str, Any] = {}
        probe: list[tuple[datetime, str]] = []  # (observed_at, key hash) of the keys that may have a current version
        total = 0
        before, seen = self._before, self._seen
        for record in records:
            values = record[6]
            total += len(values)
            if before is not None and record[5] <= before:
                moment = record[5]
                probe.extend([(moment, value[3]) for value in values])
            for value in values:
                last[value[3]] = value
        if probe_seen and seen is not None:
            maybe = set(seen.members(map(_identity, records)))
            if maybe:  # the classification probes each key once
                probe += [(record[5], value[3]) for record in records if _identity(record) in maybe
                          for value in record[6]]  # fmt: skip
        unchanged, lost, superseded, replaced = self._classify(last, probe)
        if superseded or replaced:
            self.flush()
            _supersede([*superseded, *replaced], self.batch_id, self.now)
        if streaming and self._stream is None and records:
            self._stream = bulk.gdp_stream(self._columns)
        versions = _versions(records, last, unchanged, lost, self.now, self.batch_id)
        bulk.write_gdp_versions(self.common, versions, self._stream if streaming else None, columns=self._columns)
        if seen is not None:
            seen.update(map(_identity, records))
        # A replaced version of an earlier unit was counted created there: it ends shadowed, as within one unit.
        current_written = len(last) - len(unchanged) - len(lost)
        self.result += MergeResult(created=current_written - len(replaced), superseded=len(superseded),
                                   unchanged=len(unchanged), lost=len(lost),
                                   shadowed=total - len(last) + len(replaced))  # fmt: skip

    def flush(self) -> None:
        """End the open COPY of versions, so that the connection can run a statement (before a probe, an UPDATE,
        and before the batch's completion, which must see every version: the units' COPY errors surface here),
        then merge the records held back (`_hold_back`). Until then the server parses one unit's versions while
        the next unit is classified and formatted."""
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.close()
        if self._held:
            held, self._held = self._held, []
            self._merge(held, probe_seen=True, streaming=False)

    def abort(self, error: BaseException) -> None:
        """Abandon the open COPY, if any, because the merge fails with `error`: its transaction can then roll back."""
        self._held = []
        if self._stream is not None:
            stream, self._stream = self._stream, None
            try:
                stream.close(error)
            except Exception:  # the connection is gone: `error` is what the caller reports
                logger.debug("Could not abandon the COPY of batch %s's versions", self.batch_id, exc_info=True)

    def _classify(
        self, last: dict[str, Any], probe: list[tuple[datetime, str]]
    ) -> tuple[set[str], set[str], list[int], list[int]]:
        """Of the unit's winning values with a current version: (unchanged keys, lost keys, ids of the current
        versions superseded, ids of those replaced: an earlier unit of this batch wrote them)."""
        unchanged: set[str] = set()
        lost: set[str] = set()
        superseded: list[int] = []
        replaced: list[int] = []
        priority_mode = self.survivorship == SurvivorshipChoices.SOURCE_PRIORITY
        if probe:
            self.flush()
        currents = _current_versions(sorted(set(probe)), self.tenant_id, self.contract_id)
        for key, (id_, batch_id, value, unit, is_override, priority) in currents.items():
            _, new_value, new_unit, _ = last[key]
            if batch_id == self.batch_id and not is_override:
                replaced.append(id_)
            elif not is_override and unit == new_unit and _same(value, new_value):
                unchanged.add(key)
            elif is_override or (priority_mode and priority > self.source_priority):
                lost.add(key)
            else:
                superseded.append(id_)
        return unchanged, lost, superseded, replaced


def _identity(record: Any) -> str | None:
    """What a record's keys share: they differ only in the measure, and every record of a batch has the same
    measures, so two records have a key in common exactly when they have their first key in common. The
    merge tracks records by it (a third of the work of tracking every key)."""
    values = record[6]
    return values[0][3] if values else None


def _versions(
    records: list[Any], last: dict[str, Any], unchanged: set[str], lost: set[str], now: datetime, batch_id: int
) -> Any:
    """The records with the versions to write (bulk.write_gdp_versions): a winner as its candidate value, a
    version that is never current with its recorded_to and superseded_by_batch_id added; a record whose
    values are all unchanged is left out. A unit of winners only (a first load, a new period) is written as
    it came."""
    if not unchanged and not lost and sum(len(record[6]) for record in records) == len(last):
        yield from records
        return
    for *shared, values in records:
        versions = []
        for value in values:
            key = value[3]
            if last[key] is not value:  # shadowed by a later record of the unit
                versions.append((*value, now, batch_id))
            elif key in unchanged:
                continue
            elif key in lost:
                versions.append((*value, now, None))
            else:
                versions.append(value)
        if versions:
            yield (*shared, versions)


def _same(current: Decimal | None, new: Any) -> bool:
    """Equal values as the database compares numerics (NULL = NULL here, and NaN = NaN)."""
    if current is None or new is None:
        return current is None and new is None
    return current == new or (current.is_nan() and Decimal(new).is_nan())


def _current_versions(
    probes: list[tuple[datetime, str]], tenant_id: int, contract_id: int
) -> dict[str, tuple[Any, ...]]:
    """The current version of each key that has one, by (observed_at, key hash), the order of the index
    storage_gdp_one_current_version within a contract: key hash → (id, batch_id, value, unit, is_override,
    source_priority). `probes` sorted, so that they walk the index in order."""
    if not probes:
        return {}
    columns = "g.id, g.batch_id, g.value, g.unit, g.is_override, g.source_priority"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL jit = off")  # an index probe per key: compiling would cost more than it saves
            # LATERAL … LIMIT 1 is an index probe per key whatever the planner's estimates; the tenant is in the
            # hash: a guard, never a filter. The probes travel as two texts (a list of 15,000 strings
            # takes psycopg longer to send than the probes take); a batch has few distinct times.
            texts = {moment: moment.isoformat() for moment in {moment for moment, _ in probes}}
            times = ",".join([texts[moment] for moment, _ in probes])
            cursor.execute(f"""
                SELECT u.i, {columns}
                FROM unnest(string_to_array(%s, ',')::timestamptz[], string_to_array(%s, ',')::uuid[])
                     WITH ORDINALITY AS u(observed_at, key_hash, i)
                CROSS JOIN LATERAL (
                    SELECT * FROM {GDP} g WHERE g.observed_at = u.observed_at AND g.key_hash = u.key_hash
                      AND g.recorded_to IS NULL AND g.tenant_id = %s AND g.contract_id = %s LIMIT 1
                ) g""", [times, ",".join([key for _, key in probes]), tenant_id, contract_id])  # fmt: skip
            return {probes[i - 1][1]: current for i, *current in cursor.fetchall()}
        found = {}
        for moment, group in groupby(probes, key=itemgetter(0)):
            keys = [key for _, key in group]
            for start in range(0, len(keys), SQLITE_SLICE):
                part = keys[start : start + SQLITE_SLICE]
                cursor.execute(
                    f"SELECT g.key_hash, {columns} FROM {GDP} g WHERE g.observed_at = %s "
                    f"AND g.key_hash IN ({', '.join(['%s'] * len(part))}) "
                    "AND g.recorded_to IS NULL AND g.tenant_id = %s AND g.contract_id = %s",
                    [connection.ops.adapt_datetimefield_value(moment), *part, tenant_id, contract_id],
                )
                for key, id_, batch, value, unit, is_override, priority in cursor.fetchall():
                    # SQLite keeps numerics as integers or floats: their shortest text is the decimal that was stored.
                    number = None if value is None else Decimal(str(value))
                    found[key] = (id_, batch, number, unit, bool(is_override), priority)
    return found


def summarize_new_versions() -> None:
    """Index the versions written since the last call by batch and raw record. On PostgreSQL that index
    (storage_gdp_by_batch_raw) is a BRIN index (migration 0015), which knows a range of the table's pages
    only once the range is summarized: until then every lineage read scans it. So the pipeline calls this once
    a batch's versions are in (VACUUM, and autovacuum with the index's autosummarize, summarize too). It waits
    at most a second for the table's SHARE UPDATE EXCLUSIVE lock, which a running VACUUM holds: that VACUUM then
    summarizes instead. The last range, still being filled, is left (it is small, and read whole)."""
    if connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '1s'")
            cursor.execute("SELECT brin_summarize_new_values(%s::regclass)", [GDP_BY_BATCH_RAW])
    except DatabaseError:  # the lock not had in time, mostly: nothing is lost, lineage reads are slower until then
        logger.info("The GDP table's new block ranges are left to VACUUM to summarize.", exc_info=True)


def _latest_observed(contract_id: int) -> datetime | None:
    """The latest observed_at of the contract's current versions, read before the batch writes one: only a key
    observed at or before it can have a current version from an earlier batch; a later one can only have one of
    this batch (in `_seen`). One probe of storage_gdp_one_current_version, backwards."""
    found = (
        GoldenDataPoint.objects.filter(contract_id=contract_id, recorded_to__isnull=True)
        .order_by("-observed_at")
        .values_list("observed_at", flat=True)[:1]
    )
    return next(iter(found), None)


def _supersede(ids: list[int], batch_id: int, now: datetime) -> None:
    if not ids:
        return
    update = f"UPDATE {GDP} SET recorded_to = %s, superseded_by_batch_id = %s WHERE id "
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(update + "= ANY(%s)", [now, batch_id, ids])
            return
        moment = connection.ops.adapt_datetimefield_value(now)
        for start in range(0, len(ids), SQLITE_SLICE):
            part = ids[start : start + SQLITE_SLICE]
            cursor.execute(update + f"IN ({', '.join(['%s'] * len(part))})", [moment, batch_id, *part])
