//! Sweeps: `guild train` with flag values that sweep (grid lists, random ranges, choices)
//! starts a sweep run whose trials are runs; it prints a line per trial and the trials best
//! first; a seeded random sweep draws the same values twice; a failing trial does not stop
//! the sweep; `guild stop SWEEP` stops it.

use std::collections::BTreeSet;

use guild_proto::v1::{self as pb, RunStatus, sweep_service_client::SweepServiceClient};

use crate::helpers::*;
use crate::queue::{lives, probe_env};

pub fn get_sweep(env: &Env, sweep: &str) -> pb::Sweep {
    env.block_on(async {
        SweepServiceClient::new(env.channel().await)
            .get_sweep(pb::GetSweepRequest { sweep: sweep.into() })
            .await
            .unwrap_or_else(|s| panic!("GetSweep {sweep}: {s}"))
            .into_inner()
    })
}

fn flag<'a>(trial: &'a pb::Trial, name: &str) -> &'a str {
    trial
        .flags
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.value.as_str())
        .unwrap_or_else(|| panic!("trial {} has no flag {name}: {trial:?}", trial.number))
}

fn sweep_id(out: &Out) -> String {
    out.started_run().0
}

#[test]
fn a_grid_runs_every_combination_and_prints_the_best_first() {
    let env = probe_env();
    let out = env
        .guild(&["train", "x=[0,0.3,1]", "y=[2,5]", "--minimize", "loss"])
        .ok();
    let id = sweep_id(&out);
    let lines = out.stdout_lines();
    assert_eq!(lines.iter().filter(|l| l.contains(" started")).count(), 6, "{out:?}");
    assert_eq!(
        lines.iter().filter(|l| l.contains(" completed: loss = ")).count(),
        6,
        "{out:?}"
    );
    // The table: a header, then the best trial (x=0.3, y=2: loss 0).
    let header = lines
        .iter()
        .position(|l| l.starts_with("trial ") && l.contains("status"))
        .expect("table");
    let best = lines[header + 1];
    assert!(
        best.contains("(best)") && best.contains(" 0.3 ") && best.trim_end().ends_with('2'),
        "{best}"
    );
    let sweep = get_sweep(&env, &id);
    assert_eq!(sweep.run.as_ref().unwrap().op, "sweep");
    assert_eq!(sweep.run.as_ref().unwrap().status(), RunStatus::Completed);
    assert_eq!(sweep.optimizer, "grid");
    let combos: BTreeSet<(String, String)> = sweep
        .trials
        .iter()
        .map(|t| (flag(t, "x").to_string(), flag(t, "y").to_string()))
        .collect();
    let want: BTreeSet<(String, String)> = ["0", "0.3", "1"]
        .iter()
        .flat_map(|x| ["2", "5"].iter().map(move |y| (x.to_string(), y.to_string())))
        .collect();
    assert_eq!(combos, want);
    let best = sweep.trials.iter().find(|t| t.number == sweep.best_trial).unwrap();
    assert_eq!(
        (flag(best, "x"), flag(best, "y"), best.objective),
        ("0.3", "2", Some(0.0))
    );
    // Each trial is a run linked to its sweep; `guild runs` lists them under it.
    for trial in &sweep.trials {
        let run = trial.run.as_ref().unwrap();
        assert_eq!((run.sweep.as_str(), run.trial), (id.as_str(), trial.number));
    }
    let listing = env.guild(&["runs"]).ok();
    let rows = listing.stdout_lines();
    let sweep_row = rows.iter().position(|l| l.contains(&id)).unwrap();
    assert!(rows[sweep_row].contains("sweep"), "{listing:?}");
    for row in &rows[sweep_row + 1..sweep_row + 7] {
        assert!(row.contains("(trial "), "trials follow their sweep: {listing:?}");
    }
    // `guild compare SWEEP` compares its trials.
    let csv = env.guild(&["compare", &id, "--csv", "--columns", "x,y,loss"]).ok();
    assert_eq!(csv.stdout_lines().len(), 7, "{csv:?}");
}

#[test]
fn a_seeded_random_sweep_draws_the_same_values_twice_within_its_ranges() {
    let env = probe_env();
    let args = [
        "train",
        "x=uniform[0:1]",
        "y=loguniform[1e-3:10]",
        "z=choice[a,b,c]",
        "--max-trials",
        "4",
        "--seed",
        "42",
    ];
    let first = sweep_id(&env.guild(&args).ok());
    let second = sweep_id(&env.guild(&args).ok());
    let draws = |id: &str, seed: u64| -> Vec<(String, String, String)> {
        let sweep = get_sweep(&env, id);
        assert_eq!(sweep.optimizer, "random");
        assert_eq!(sweep.seed, seed);
        sweep
            .trials
            .iter()
            .map(|t| (flag(t, "x").into(), flag(t, "y").into(), flag(t, "z").into()))
            .collect()
    };
    let (a, b) = (draws(&first, 42), draws(&second, 42));
    assert_eq!(a.len(), 4);
    assert_eq!(a, b, "the same seed draws the same values");
    for (x, y, z) in &a {
        let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
        assert!((0.0..=1.0).contains(&x), "{x}");
        assert!((1e-3..=10.0).contains(&y), "{y}");
        assert!(["a", "b", "c"].contains(&z.as_str()), "{z}");
    }
    // Another seed draws other values.
    let mut other = args.to_vec();
    other[7] = "43";
    let third = sweep_id(&env.guild(&other).ok());
    assert_ne!(draws(&third, 43)[0], a[0]);
}

#[test]
fn a_failing_trial_does_not_stop_the_sweep() {
    let env = probe_env();
    let out = env.guild(&["train", "fail=[no,yes,nope]"]).exits(1);
    let id = sweep_id(&out);
    let sweep = get_sweep(&env, &id);
    let statuses: Vec<RunStatus> = sweep.trials.iter().map(|t| t.run.as_ref().unwrap().status()).collect();
    assert_eq!(
        statuses,
        [RunStatus::Completed, RunStatus::Error, RunStatus::Completed],
        "{out:?}"
    );
    let run = sweep.run.unwrap();
    assert_eq!(run.status(), RunStatus::Error);
    assert_eq!(run.reason, "1 of 3 trials did not complete");
    assert!(out.stdout.contains("trial 2 error: loss = "), "{out:?}");
}

#[test]
fn stopping_a_sweep_cancels_what_is_left() {
    let env = probe_env();
    let gate = env.root.join("gate");
    let gate_flag = format!("wait={}", gate.display());
    let out = env
        .guild(&[
            "train",
            "--background",
            "x=[1,2,3,4,5,6]",
            &gate_flag,
            "--parallel",
            "2",
        ])
        .ok();
    let id = out.stdout.trim().to_string();
    // Both trials started: their probes logged their start.
    wait_until("two trials to start", || lives(&env).len() == 2);
    env.guild(&["stop", &id]).ok();
    let run = env.wait_run(&id, &[RunStatus::Terminated, RunStatus::Completed, RunStatus::Error]);
    assert_eq!(run.status(), RunStatus::Terminated, "{run:?}");
    let sweep = get_sweep(&env, &id);
    assert_eq!(sweep.trials.len(), 2, "no trial starts after the stop: {sweep:?}");
    for trial in &sweep.trials {
        assert_eq!(trial.run.as_ref().unwrap().status(), RunStatus::Terminated);
    }
}

#[test]
fn a_bad_sweep_value_is_refused_with_the_flag_named() {
    let env = probe_env();
    let out = env.guild(&["train", "x=uniform[1:0]"]).exits(1);
    assert!(
        out.stderr
            .contains("flag x=uniform[1:0]: the low bound 1 must be below the high bound 0"),
        "{out:?}"
    );
    let out = env.guild(&["train", "x=uniform[0:1]", "--optimizer", "grid"]).exits(1);
    assert!(
        out.stderr.contains("grid search cannot enumerate x=uniform[0.0:1.0]"),
        "{out:?}"
    );
    assert!(env.runs_json().is_empty());
}
