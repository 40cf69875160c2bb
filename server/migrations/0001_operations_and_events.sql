-- Operations and their event streams. `head` is the highest committed seq
-- and doubles as the runner's step: it is updated in the same transaction
-- as each event's insert, so a restart resumes exactly after the last event.
CREATE TABLE operations (
    num INTEGER PRIMARY KEY AUTOINCREMENT, -- creation order, the list cursor
    id TEXT NOT NULL UNIQUE,               -- 32 lowercase hex digits
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,           -- ms since the Unix epoch
    updated_at INTEGER NOT NULL,
    epoch INTEGER NOT NULL DEFAULT 1,
    head INTEGER NOT NULL DEFAULT 0,
    percent_complete REAL,
    params TEXT NOT NULL,                  -- JSON, normalized
    seed INTEGER NOT NULL                  -- the run's plan derives from it
);

CREATE INDEX operations_unfinished ON operations (status)
    WHERE status IN ('NotStarted', 'Running');

CREATE TABLE events (
    operation_num INTEGER NOT NULL REFERENCES operations (num),
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    message TEXT NOT NULL,
    happened_at INTEGER NOT NULL,
    details TEXT NOT NULL,                 -- JSON object
    PRIMARY KEY (operation_num, seq)
) WITHOUT ROWID;
