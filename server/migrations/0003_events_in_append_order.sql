-- Events stored in the order they are appended (a rowid table), found by
-- operation and seq through an index, instead of a table clustered by
-- (operation_num, seq). A group commit appends one event to each of many
-- operations: clustered, every event landed in the middle of the table, in
-- its operation's last page, whose splits rewrote three leaves and their
-- parents (a WITHOUT ROWID table's interior pages hold whole rows: seven
-- to a 1 KiB page). Now a group's events fill a few new pages at the end,
-- and each operation dirties one small index entry's page instead. Reading
-- an operation's history costs a row lookup per event.
CREATE TABLE events_appended (
    operation_num INTEGER NOT NULL REFERENCES operations (num),
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    message TEXT NOT NULL,
    happened_at INTEGER NOT NULL,
    details TEXT NOT NULL,                 -- JSON object
    status TEXT                            -- the terminal status it ends with
);
-- Existing events keep each operation's together.
INSERT INTO events_appended (operation_num, seq, id, type, message, happened_at, details, status)
    SELECT operation_num, seq, id, type, message, happened_at, details, status
    FROM events ORDER BY operation_num, seq;
DROP TABLE events;
ALTER TABLE events_appended RENAME TO events;
CREATE UNIQUE INDEX events_by_seq ON events (operation_num, seq);
-- Publishers' appends are idempotent by event id.
CREATE UNIQUE INDEX events_by_id ON events (operation_num, id);
