"""The project's Dagster instance plugin, and the only module that reaches into Dagster's private `dagster._` API:
the Postgres event log, with a pool's slot claimed by one step only (deploy/postgres/dagster.yaml uses it).

dagster-postgres 0.29.27 claims a pool slot with `SELECT ... FOR UPDATE SKIP LOCKED` and then an `UPDATE ... WHERE
id = <that slot>`, each its own autocommit statement: the row lock ends with the SELECT, so two runs reaching their
face step in the same instant can both pick the one free slot and both write it, and two face steps run at once
(each with ~2 GB of models; tests/orchestration/test_celery.py caught it). Here the UPDATE only takes a slot that
is still free: Postgres re-checks that condition after waiting for the other writer's row lock, so one run gets the
slot and the other finds none and waits for it, as pools mean to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as db
from dagster._core.storage.event_log.schema import ConcurrencySlotsTable
from dagster._utils.concurrency import ConcurrencySlotStatus
from dagster_postgres import PostgresEventLogStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config


class PoolSafePostgresEventLogStorage(PostgresEventLogStorage):
    @classmethod
    def from_config_value(cls, inst_data, config_value: Mapping[str, Any]) -> PoolSafePostgresEventLogStorage:
        # The parent's builds its own class whatever `cls` is: this one builds ours from the same settings.
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )

    def _claim_concurrency_slot(self, concurrency_key: str, run_id: str, step_key: str) -> ConcurrencySlotStatus:
        free = db.and_(
            ConcurrencySlotsTable.c.concurrency_key == concurrency_key,
            ConcurrencySlotsTable.c.step_key.is_(None),
            ConcurrencySlotsTable.c.deleted.is_(False),
        )
        with self.index_connection() as conn:
            slot = conn.execute(
                db.select(ConcurrencySlotsTable.c.id).where(free).with_for_update(skip_locked=True).limit(1)
            ).scalar()
            if slot is None:
                return ConcurrencySlotStatus.BLOCKED
            taken = conn.execute(
                ConcurrencySlotsTable.update()
                .values(run_id=run_id, step_key=step_key)
                .where(db.and_(ConcurrencySlotsTable.c.id == slot, free))
            ).rowcount
        return ConcurrencySlotStatus.CLAIMED if taken else ConcurrencySlotStatus.BLOCKED
