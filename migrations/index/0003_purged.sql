-- Ids of purged runs, kept for good: a purged run's id is never given to another run
-- (a new run's id skips them, and so does `guild import --rename`).
CREATE TABLE purged_run (
    id        TEXT PRIMARY KEY NOT NULL,
    purged_ms INTEGER NOT NULL
) WITHOUT ROWID;
