-- Summaries in event files that are not scalars (images, histograms, audio, text,
-- other plugins): listed with how many of each were seen.
CREATE TABLE event_summary (
    key   TEXT NOT NULL,
    kind  TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (key, kind)
);
