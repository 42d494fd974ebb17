"""Emulated RDS renames: what a `ModifyDBInstance(NewDBInstanceIdentifier=...)` really does, on the simulated clock.

moto renames an instance instantly, keeps it `available`, and lets a rename overwrite an instance
that already holds the new name. An in-place swap tested on that proves nothing about the waits
and collisions that make a real swap hard, so here a rename, as RDS documents it and as users
report it (boto3#609, boto3#2613):

- refuses a name that is taken, or reserved by another rename in flight (`DBInstanceAlreadyExists`),
  and an instance that is not `available` (`InvalidDBInstanceState`);
- without `ApplyImmediately` waits for the maintenance window, which in a rehearsal never comes:
  the name simply does not change, as a forgotten flag looks on the day;
- takes `rename_minutes` of simulated time, in three phases:
  1. `renaming` under the OLD identifier (first half): looked up by either name the instance is
     "not found"; only `describe_db_instances` by the `dbi-resource-id` filter (or a full listing)
     shows it. The old DNS name is gone at once: nothing answers on the old endpoint.
  2. `available` under the NEW identifier for a short moment: the read that fools a single-check
     waiter, since the reboot has not happened yet and the new DNS name does not resolve.
  3. `rebooting` under the new identifier until the end.
- every instance gets its own `DbiResourceId` (moto gives all of them the same one);
- when done, the endpoint (`<new>.aaaaaaaaaa...`) answers again, and the local database behind the
  old endpoint is now behind the new one: the data moves with the instance, the name with the DNS.

Installed by the rehearsal harness after `EmulatedRds` (whose endpoint map, `instance_db`, this
module moves); it advances on every describe, as emulated restores do.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

from restorectl.simclock import SimulatedClock

# How long the misleading `available` between the identifier change and the reboot lasts. Shorter
# than two polls of the rename wait, so only a wait that wants several consecutive reads survives it.
FALSE_AVAILABLE_SECONDS = 30.0
RENAMING, REBOOTING, AVAILABLE = "renaming", "rebooting", "available"


@dataclass
class PendingRename:
    resource_id: str
    old: str
    new: str
    started: datetime
    ends: datetime
    dbname: str | None  # the local database that answers on the endpoint once the rename is done
    identifier_changed: bool = False

    @property
    def switch_at(self) -> datetime:
        """When the identifier changes (end of phase 1)."""
        return self.started + (self.ends - self.started) / 2

    @property
    def reboot_at(self) -> datetime:
        return min(self.ends, self.switch_at + timedelta(seconds=FALSE_AVAILABLE_SECONDS))


class EmulatedRenames:
    def __init__(self, rds: Any, clock: SimulatedClock, *, rename_minutes: float = 10.0) -> None:
        self.rds = rds  # EmulatedRds: its instance_db is the endpoint -> local database map
        self.clock = clock
        self.duration = timedelta(minutes=rename_minutes)
        self.pending: dict[str, PendingRename] = {}
        self.completed: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ the model

    def _hidden_names(self) -> set[str]:
        """Names that are "not found" when looked up: both names of a rename still in phase 1."""
        return {name for p in self.pending.values() if not p.identifier_changed for name in (p.old, p.new)}

    def _reserved_names(self) -> set[str]:
        return {p.new for p in self.pending.values()}

    def advance(self, backend: Any) -> None:
        now = self.clock.now()
        for resource_id, rename in list(self.pending.items()):
            instance = self._by_resource_id(backend, resource_id)
            # Deleted mid-rename: gone, or still listed `deleting` (EmulatedRds' delete_minutes); it never comes back renamed.
            if instance is None or instance.status == "deleting":
                del self.pending[resource_id]
                # Taken off the instance when the rename began, so the instance's delete could not drop it.
                if rename.dbname is not None:
                    self.rds.pg.drop_database(rename.dbname)
                continue
            if not rename.identifier_changed and now >= rename.switch_at:
                del backend.databases[rename.old]
                instance.db_instance_identifier = rename.new
                backend.databases[rename.new] = instance
                rename.identifier_changed = True
            if rename.identifier_changed:
                instance.status = AVAILABLE if now < rename.reboot_at else REBOOTING
            if now >= rename.ends:
                instance.status = AVAILABLE
                if rename.dbname is not None:
                    self.rds.instance_db[rename.new] = rename.dbname
                del self.pending[resource_id]
                self.completed.append({"from": rename.old, "to": rename.new, "finished_at": now.isoformat()})

    @staticmethod
    def _by_resource_id(backend: Any, resource_id: str) -> Any:
        return next((db for db in backend.databases.values() if db.dbi_resource_id == resource_id), None)

    def begin(self, backend: Any, instance: Any, new: str) -> None:
        old = instance.db_instance_identifier
        now = self.clock.now()
        instance.status = RENAMING
        # The old DNS name is deleted at once: from now on no endpoint reaches this database until the rename is done.
        dbname = self.rds.instance_db.pop(old, None)
        self.pending[instance.dbi_resource_id] = PendingRename(
            resource_id=instance.dbi_resource_id, old=old, new=new, started=now, ends=now + self.duration, dbname=dbname
        )

    # ------------------------------------------------------------------ installing it into moto

    @contextlib.contextmanager
    def installed(self) -> Iterator[EmulatedRenames]:
        from moto.rds import models as rds_models
        from moto.rds.exceptions import DBInstanceAlreadyExists, DBInstanceNotFoundError, InvalidDBInstanceStateFault

        world = self
        backend_class = rds_models.RDSBackend
        # Whatever is installed already (EmulatedRds' restore timing) stays underneath.
        original_describe = backend_class.describe_db_instances
        original_modify = backend_class.modify_db_instance
        original_create = backend_class.create_db_instance

        def describe(backend: Any, db_instance_identifier: str | None = None, filters: Any = None) -> Any:
            world.advance(backend)
            if db_instance_identifier and db_instance_identifier.lower() in world._hidden_names():
                raise DBInstanceNotFoundError(db_instance_identifier)
            return original_describe(backend, db_instance_identifier, filters)

        def modify(backend: Any, db_instance_identifier: str, db_kwargs: Any) -> Any:
            world.advance(backend)
            instance = describe(backend, db_instance_identifier)[0]
            rename = world.pending.get(instance.dbi_resource_id)
            if rename is not None:
                raise InvalidDBInstanceStateFault(
                    f"DB instance {db_instance_identifier} is {instance.status} (rename to {rename.new} in progress); "
                    "it cannot be modified until it is available"
                )
            new = db_kwargs.get("new_db_instance_identifier")
            if not new or new.lower() == db_instance_identifier.lower():
                return original_modify(backend, db_instance_identifier, db_kwargs)
            new = new.lower()
            if new in backend.databases or new in world._reserved_names():
                raise DBInstanceAlreadyExists()
            if instance.status != AVAILABLE:
                raise InvalidDBInstanceStateFault(f"DB instance {db_instance_identifier} is {instance.status}, not available")
            backend._validate_db_identifier(new)
            del db_kwargs["new_db_instance_identifier"]
            instance = original_modify(backend, db_instance_identifier, db_kwargs)
            if db_kwargs.get("apply_immediately"):
                world.begin(backend, instance, new)
            return instance

        def create(backend: Any, db_kwargs: Any) -> Any:
            world.advance(backend)
            if str(db_kwargs.get("db_instance_identifier", "")).lower() in world._reserved_names():
                raise DBInstanceAlreadyExists()
            instance = original_create(backend, db_kwargs)
            # moto gives every instance the same DbiResourceId; following a rename by it needs one per instance.
            instance.dbi_resource_id = "db-" + uuid.uuid4().hex[:26].upper()
            return instance

        with contextlib.ExitStack() as stack:
            stack.enter_context(mock.patch.object(backend_class, "describe_db_instances", describe))
            stack.enter_context(mock.patch.object(backend_class, "modify_db_instance", modify))
            stack.enter_context(mock.patch.object(backend_class, "create_db_instance", create))
            yield self

    def report(self) -> dict[str, Any]:
        pending = [
            {"from": p.old, "to": p.new, "ends": p.ends.isoformat(), "identifier_changed": p.identifier_changed}
            for p in self.pending.values()
        ]
        return {"renames": {"completed": list(self.completed), "pending": pending}}
