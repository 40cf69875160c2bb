-- Event ids stay unique per operation (publishers' appends are idempotent
-- by id), now keyed (id, operation_num) instead of (operation_num, id).
-- Keyed by operation, a group commit that appends one event to each of 100
-- operations put a random id into each operation's part of the index: 100
-- leaf pages written to the WAL (and split) per group, as many as the
-- events themselves took. The runner's ids begin with the time they were
-- made (see runner.rs), so keyed by id first they all land at one place:
-- a few pages per group. Lookups name both columns, as before.
DROP INDEX events_by_id;
CREATE UNIQUE INDEX events_by_id ON events (id, operation_num);
