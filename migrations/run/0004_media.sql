-- Media from event files: images, audio, histograms, text and PR curves, one row per item.
-- `tag` is keyed like series (`tf/<subdir>/<tag>`); `step` and `time` (ms since the epoch)
-- are the event's. `seq` orders the items of all five tables by commit (one sequence: the
-- cursor WatchMedia follows); `idx` numbers the items of one summary value (a batch of
-- images at one step). Plain SQL: `select tag, step from image`.
CREATE TABLE image (
    seq    INTEGER PRIMARY KEY,
    tag    TEXT NOT NULL,
    step   INTEGER NOT NULL,
    time   INTEGER NOT NULL,
    idx    INTEGER NOT NULL,
    width  INTEGER NOT NULL,
    height INTEGER NOT NULL,
    -- image/png, image/jpeg, image/gif, image/webp or image/bmp
    mime   TEXT NOT NULL,
    data   BLOB NOT NULL
);
CREATE INDEX image_by_tag ON image (tag, step);

CREATE TABLE audio (
    seq         INTEGER PRIMARY KEY,
    tag         TEXT NOT NULL,
    step        INTEGER NOT NULL,
    time        INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    sample_rate REAL NOT NULL,
    channels    INTEGER NOT NULL,
    frames      INTEGER NOT NULL,
    mime        TEXT NOT NULL,
    data        BLOB NOT NULL
);
CREATE INDEX audio_by_tag ON audio (tag, step);

-- `buckets` is JSON, `[[left, right, count], ...]` (TensorBoard's form); `count`, `min`
-- and `max` are the writer's (or the buckets'), `sum` the writer's (NULL when unknown).
CREATE TABLE histogram (
    seq     INTEGER PRIMARY KEY,
    tag     TEXT NOT NULL,
    step    INTEGER NOT NULL,
    time    INTEGER NOT NULL,
    idx     INTEGER NOT NULL,
    count   REAL,
    min     REAL,
    max     REAL,
    sum     REAL,
    buckets TEXT NOT NULL
);
CREATE INDEX histogram_by_tag ON histogram (tag, step);

-- Markdown, as the text plugin renders it.
CREATE TABLE text (
    seq   INTEGER PRIMARY KEY,
    tag   TEXT NOT NULL,
    step  INTEGER NOT NULL,
    time  INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX text_by_tag ON text (tag, step);

-- Per threshold (JSON arrays of the same length): the thresholds, precision, recall and
-- the counts of true/false positives/negatives.
CREATE TABLE pr_curve (
    seq        INTEGER PRIMARY KEY,
    tag        TEXT NOT NULL,
    step       INTEGER NOT NULL,
    time       INTEGER NOT NULL,
    idx        INTEGER NOT NULL,
    thresholds TEXT NOT NULL,
    precision  TEXT NOT NULL,
    recall     TEXT NOT NULL,
    tp         TEXT NOT NULL,
    fp         TEXT NOT NULL,
    tn         TEXT NOT NULL,
    fn         TEXT NOT NULL
);
CREATE INDEX pr_curve_by_tag ON pr_curve (tag, step);
