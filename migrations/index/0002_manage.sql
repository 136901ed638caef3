-- Run management: tags, and the trash that `guild runs delete` moves runs to.

-- A run's tags (also kept in its run.db attr `tags`, a JSON array).
CREATE TABLE run_tag (
    run_id TEXT NOT NULL,
    tag    TEXT NOT NULL,
    PRIMARY KEY (run_id, tag)
) WITHOUT ROWID;

-- Deleted runs: their `run` rows, moved here so every query on `run` sees only live
-- runs. Their flags, series summaries and tags stay in place (keyed by id) until purged.
CREATE TABLE run_trash (
    seq          INTEGER NOT NULL,               -- the run's seq, reused on restore when free
    id           TEXT PRIMARY KEY NOT NULL,
    project_dir  TEXT NOT NULL,
    project_name TEXT NOT NULL,
    model        TEXT NOT NULL,
    op           TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    started_ms   INTEGER,
    stopped_ms   INTEGER,
    exit_status  INTEGER,
    run_dir      TEXT NOT NULL,                  -- where the run lived (and returns on restore)
    label        TEXT NOT NULL DEFAULT '',
    pid          INTEGER,
    pid_start    INTEGER,
    reason       TEXT NOT NULL DEFAULT '',
    source_run   TEXT NOT NULL DEFAULT '',
    deleted_ms   INTEGER NOT NULL,
    trash_dir    TEXT NOT NULL                   -- where the folder is now ('' when it was gone)
);
