-- index.db: every run of every project, so listing and comparing never open run.db files.
CREATE TABLE run (
    seq          INTEGER PRIMARY KEY,            -- creation order
    id           TEXT NOT NULL UNIQUE,
    project_dir  TEXT NOT NULL,
    project_name TEXT NOT NULL,
    model        TEXT NOT NULL,
    op           TEXT NOT NULL,
    status       TEXT NOT NULL,                  -- pending running completed error terminated failed
    created_ms   INTEGER NOT NULL,
    started_ms   INTEGER,
    stopped_ms   INTEGER,
    exit_status  INTEGER,
    run_dir      TEXT NOT NULL,
    label        TEXT NOT NULL DEFAULT '',
    pid          INTEGER,
    pid_start    INTEGER,                        -- process start time (clock ticks) for identity
    reason       TEXT NOT NULL DEFAULT '',
    source_run   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX run_by_status ON run (status);
CREATE INDEX run_by_project ON run (project_dir, seq);

CREATE TABLE run_flag (
    run_id TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;

-- Per-key summary of each run's series, kept current as samples commit.
CREATE TABLE run_series (
    run_id    TEXT NOT NULL,
    key       TEXT NOT NULL,
    last      REAL,
    min       REAL,
    max       REAL,
    count     INTEGER NOT NULL,
    last_step INTEGER,
    last_time INTEGER,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
