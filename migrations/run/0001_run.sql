-- run.db: everything Guild records about one run. Plain SQL answers questions:
--   select * from flag;  select * from scalar where key = 'loss';
CREATE TABLE attr (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- Every resolved flag, in resolution order (rowid).
CREATE TABLE flag (
    name  TEXT NOT NULL UNIQUE,
    value TEXT NOT NULL
);

-- Every line the run printed. stream is 'stdout' or 'stderr'; time in ms since the epoch.
CREATE TABLE output (
    seq    INTEGER PRIMARY KEY,
    time   INTEGER NOT NULL,
    stream TEXT NOT NULL,
    line   TEXT NOT NULL
);

CREATE TABLE series_key (
    id  INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE
);

-- One row per sample. value is NULL for NaN (SQLite has no NaN); +/-inf are stored as is.
CREATE TABLE series (
    key_id INTEGER NOT NULL REFERENCES series_key (id),
    step   INTEGER,
    time   INTEGER NOT NULL,
    value  REAL
);
CREATE INDEX series_by_key_step ON series (key_id, step);

CREATE VIEW scalar AS
    SELECT k.key AS key, s.step AS step, s.time AS time, s.value AS value
    FROM series s JOIN series_key k ON k.id = s.key_id;

-- How far guildd has read each captured file, committed with the rows it read, so a
-- restarted daemon resumes without losing or doubling a line.
CREATE TABLE tail_offset (
    file   TEXT PRIMARY KEY NOT NULL,
    offset INTEGER NOT NULL
);
