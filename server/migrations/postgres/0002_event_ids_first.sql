-- As SQLite's migration 4: event ids keyed (id, operation_num), so the
-- runner's time-ordered ids of a group's many operations land in a few
-- index pages at one end instead of one page in each operation's part.
DROP INDEX events_by_id;
CREATE UNIQUE INDEX events_by_id ON events (id, operation_num);
