-- Operations belong to an owner (a viewer sees only its owner's) and are
-- either simulated by the server's runner or fed by a publisher (the runner
-- must never resume those). Operations that existed before owners are the
-- demo owner's.
ALTER TABLE operations ADD COLUMN owner TEXT NOT NULL DEFAULT 'demo';
ALTER TABLE operations ADD COLUMN fed INTEGER NOT NULL DEFAULT 0; -- 1: publisher-fed
CREATE INDEX operations_by_owner ON operations (owner, num);
-- Retention removes finished operations by age.
CREATE INDEX operations_finished_by_age ON operations (updated_at)
    WHERE status IN ('Succeeded', 'Failed', 'Canceled');

-- The status a terminal event ends its operation with (NULL otherwise), so
-- clients need no per-kind list of terminal types.
ALTER TABLE events ADD COLUMN status TEXT;
-- Publishers' appends are idempotent by event id.
CREATE UNIQUE INDEX events_by_id ON events (operation_num, id);
