-- The queue (issue 16): what a queued or GPU-holding run asked for and was given, and
-- sweeps with their trials. A row of run_queue lives from the run's start request to its
-- end, so a restarted daemon knows which runs wait (and how to start them) and which GPUs
-- its adopted runs hold.
CREATE TABLE run_queue (
    run_id   TEXT PRIMARY KEY NOT NULL,
    gpus     INTEGER,                 -- GPUs asked for; NULL: none asked (the environment's own)
    priority INTEGER NOT NULL DEFAULT 0,
    assigned TEXT,                    -- the GPUs given ("0,1"); NULL while queued
    launch   TEXT                     -- JSON: argv, env, cwd, stats_interval; NULL once started
) WITHOUT ROWID;

-- Sweeps: a run of op `sweep` whose trials are runs. `spec` is the JSON the sweep was
-- started with (flags, optimizer, objective, seed, limits, the client's environment), so
-- a restarted daemon picks a running sweep up again from its trials.
CREATE TABLE sweep (
    id   TEXT PRIMARY KEY NOT NULL,
    spec TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE sweep_trial (
    run_id   TEXT PRIMARY KEY NOT NULL,
    sweep_id TEXT NOT NULL,
    trial    INTEGER NOT NULL        -- 1, 2, ... in the order the optimizer proposed them
) WITHOUT ROWID;
CREATE INDEX sweep_trial_by_sweep ON sweep_trial (sweep_id, trial);
