-- Series storage for fast ingest and bucketed reads.
--
-- `series` keeps one row per sample (plain SQL: `select * from scalar where key = 'loss'`),
-- in commit order; its rowid is the cursor WatchSeries follows. The (key_id, step) index
-- is dropped: maintaining it cost more than all the rest of an insert, and reads by key
-- go through `series_block` below (plain SQL by key still works, as a table scan).
DROP INDEX IF EXISTS series_by_key_step;

-- Each key's samples, packed in commit order, up to a few hundred per block: what
-- GetSeries reads to return samples or compute buckets. Derived from `series` by the run's
-- writer in the same transaction as the rows; a key's samples after its last block
-- (rowid > max(last_seq)) are read from `series` itself. `data` holds per sample:
-- varint rowid delta, zigzag varint step delta (step NULL counts as 0), zigzag varint
-- time delta (ms), then the value as 8 little-endian bytes (f64; NaN for NULL).
CREATE TABLE series_block (
    key_id    INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    min_step  INTEGER NOT NULL,
    max_step  INTEGER NOT NULL,
    min_time  INTEGER NOT NULL,
    max_time  INTEGER NOT NULL,
    data      BLOB NOT NULL,
    PRIMARY KEY (key_id, first_seq)
);
