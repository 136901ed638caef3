use super::space::Sample;
use super::*;

fn flags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn space(pairs: &[(&str, &str)]) -> Space {
    Space::parse(&flags(pairs)).unwrap()
}

fn error(value: &str) -> String {
    parse_value("lr", value).unwrap_err().to_string()
}

#[test]
fn values_read_as_lists_ranges_or_fixed() {
    assert_eq!(
        parse_value("lr", "[0.001,0.01,0.1]").unwrap(),
        Dimension::Choice(vec![Value::Float(0.001), Value::Float(0.01), Value::Float(0.1)])
    );
    assert_eq!(
        parse_value("layers", "choice[2, 3,4]").unwrap(),
        Dimension::Choice(vec![Value::Int(2), Value::Int(3), Value::Int(4)])
    );
    assert_eq!(
        parse_value("opt", "choice[adam,sgd]").unwrap(),
        Dimension::Choice(vec![Value::Text("adam".into()), Value::Text("sgd".into())])
    );
    assert_eq!(
        parse_value("lr", "loguniform[1e-4:1e-1]").unwrap(),
        Dimension::LogUniform { low: 1e-4, high: 0.1 }
    );
    assert_eq!(
        parse_value("dropout", "uniform[0:0.5]").unwrap(),
        Dimension::Uniform { low: 0.0, high: 0.5 }
    );
    for fixed in ["0.5", "./data", "$RUNDIR", "", "a b[1]", "x=[1]", "résumé"] {
        assert_eq!(
            parse_value("f", fixed).unwrap(),
            Dimension::Fixed(fixed.to_string()),
            "{fixed}"
        );
    }
}

#[test]
fn bad_values_say_which_flag_and_what_is_wrong() {
    assert_eq!(
        error("loguniform[0:1]"),
        "flag lr=loguniform[0:1]: the log-uniform low bound must be > 0 (got 0)"
    );
    assert_eq!(
        error("uniform[1:0]"),
        "flag lr=uniform[1:0]: the low bound 1 must be below the high bound 0"
    );
    assert_eq!(
        error("uniform[1:1]"),
        "flag lr=uniform[1:1]: the low bound 1 must be below the high bound 1"
    );
    assert_eq!(
        error("[0.1,0.2"),
        "flag lr=[0.1,0.2: the '[' is never closed (a sweep value ends with ']')"
    );
    assert_eq!(error("[1,2]x"), "flag lr=[1,2]x: text after the closing ']'");
    assert_eq!(
        error("[[1,2]]"),
        "flag lr=[[1,2]]: a bracket inside the brackets (lists do not nest)"
    );
    assert_eq!(error("[]"), "flag lr=[]: the list is empty");
    assert_eq!(error("choice[ ]"), "flag lr=choice[ ]: the list is empty");
    assert_eq!(error("[1,,2]"), "flag lr=[1,,2]: item 2 of the list is empty");
    assert_eq!(error("[0.1,0.10]"), "flag lr=[0.1,0.10]: the list holds 0.1 twice");
    assert_eq!(
        error("uniform[0,1]"),
        "flag lr=uniform[0,1]: expected uniform[LOW:HIGH], two bounds with one ':' between them"
    );
    assert_eq!(
        error("loguniform[1:2:3]"),
        "flag lr=loguniform[1:2:3]: expected loguniform[LOW:HIGH], two bounds with one ':' between them"
    );
    assert_eq!(
        error("uniform[a:1]"),
        "flag lr=uniform[a:1]: the low bound \"a\" is not a finite number"
    );
    assert_eq!(
        error("uniform[0:inf]"),
        "flag lr=uniform[0:inf]: the high bound \"inf\" is not a finite number"
    );
    assert_eq!(
        error("uniform[-1e308:1e308]"),
        "flag lr=uniform[-1e308:1e308]: the range from -1e308 to 1e308 is wider than a float can hold"
    );
    assert_eq!(
        error("logunifrom[1e-4:1e-1]"),
        "flag lr=logunifrom[1e-4:1e-1]: unknown sweep function \"logunifrom\" \
         (expected [a,b], choice[a,b], uniform[low:high] or loguniform[low:high])"
    );
    // A long list is read in linear time, and the message shows its start.
    let many = format!(
        "[{}]",
        (0..200_000).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
    );
    assert!(matches!(parse_value("lr", &many), Ok(Dimension::Choice(items)) if items.len() == 200_000));
    let long = format!("[{}", "1,".repeat(100));
    assert!(error(&long).starts_with(&format!("flag lr={}...: the '['", &long[..80])));
    assert_eq!(
        Space::parse(&flags(&[("lr", "1"), ("lr", "2")]))
            .unwrap_err()
            .to_string(),
        "flag lr=2: the flag is given twice"
    );
}

#[test]
fn no_panics_on_odd_values() {
    let mut inputs: Vec<String> = [
        "[",
        "]",
        "[]",
        "[[",
        "]]",
        "[:]",
        "uniform[",
        "uniform[]",
        "uniform[:]",
        "uniform[1:]",
        "uniform[:1]",
        "loguniform[-1:1]",
        "loguniform[1e-320:1]",
        "uniform[-1e308:1e308]",
        "choice[,]",
        "[\u{0}]",
        "é[1]",
        "[é,ü]",
        "choice[1]",
        "[9223372036854775808,1]",
        "[-9223372036854775808]",
        "[+,-]",
        "[nan,inf]",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let alphabet: Vec<char> = "[]:,.-+e0123456789 uniformlogchoicé\u{0}".chars().collect();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..5000 {
        let mut s = String::new();
        for _ in 0..(seed >> 60) + 4 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            s.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
        }
        inputs.push(s);
    }
    let mut sweeps = 0;
    for input in &inputs {
        let Ok(space) = Space::parse(&flags(&[("f", input), ("g", "[1,2]")])) else {
            continue;
        };
        sweeps += usize::from(space.is_sweep());
        // Whatever parsed must also propose, format and read back its own points.
        for kind in [OptimizerKind::Grid, OptimizerKind::Random, OptimizerKind::Tpe] {
            let Ok(optimizer) = Optimizer::new(kind, space.clone(), 3) else {
                continue;
            };
            let mut finished = Vec::new();
            for trial in 0..12 {
                let Some(params) = optimizer.propose(&finished, &[]) else {
                    break;
                };
                let trial_flags = space.flags(&params);
                assert_eq!(
                    space.params_from_flags(&trial_flags).as_ref(),
                    Ok(&params),
                    "{input}: {trial_flags:?}"
                );
                finished.push((params, Some(f64::from(trial))));
            }
        }
    }
    assert!(
        sweeps > 100,
        "the corpus should hold many valid sweeps, not only errors ({sweeps})"
    );
}

#[test]
fn grid_goes_through_every_combination_in_order() {
    let space = space(&[
        ("lr", "[0.001,0.01,0.1]"),
        ("data", "./data"),
        ("batch_size", "[50,100]"),
    ]);
    assert_eq!(space.grid_len(), Some(6));
    assert_eq!(OptimizerKind::default_for(&space), OptimizerKind::Grid);
    let optimizer = Optimizer::new(OptimizerKind::Grid, space, 0).unwrap();
    let mut finished = Vec::new();
    let mut seen = Vec::new();
    while let Some(params) = optimizer.propose(&finished, &[]) {
        let trial_flags = optimizer.space().flags(&params);
        seen.push(
            trial_flags
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join(" "),
        );
        finished.push((params, None));
    }
    assert_eq!(
        seen,
        [
            "lr=0.001 data=./data batch_size=50",
            "lr=0.001 data=./data batch_size=100",
            "lr=0.01 data=./data batch_size=50",
            "lr=0.01 data=./data batch_size=100",
            "lr=0.1 data=./data batch_size=50",
            "lr=0.1 data=./data batch_size=100",
        ]
    );
    // Pending trials count as proposed: the next one is the one after them.
    let pending = vec![finished[0].0.clone(), finished[1].0.clone()];
    assert_eq!(optimizer.propose(&finished[..2], &pending), Some(finished[4].0.clone()));
}

#[test]
fn grid_refuses_ranges_and_the_default_is_random_with_one() {
    let space = space(&[("layers", "[1,2]"), ("lr", "loguniform[1e-4:1e-1]")]);
    assert_eq!(space.grid_len(), None);
    assert_eq!(OptimizerKind::default_for(&space), OptimizerKind::Random);
    assert_eq!(
        Optimizer::new(OptimizerKind::Grid, space, 0).unwrap_err().to_string(),
        "grid search cannot enumerate lr=loguniform[0.0001:0.1], a range: give a list, or use --optimizer random or tpe"
    );
    assert_eq!(
        "annealing".parse::<OptimizerKind>().unwrap_err().to_string(),
        "unknown optimizer \"annealing\" (expected grid, random or tpe)"
    );
    for kind in [OptimizerKind::Grid, OptimizerKind::Random, OptimizerKind::Tpe] {
        assert_eq!(kind.to_string().parse::<OptimizerKind>(), Ok(kind));
    }
}

#[test]
fn huge_grids_saturate_instead_of_overflowing() {
    let list = format!("[{}]", (0..1000).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
    let pairs: Vec<(String, String)> = (0..8).map(|i| (format!("f{i}"), list.clone())).collect();
    let space = Space::parse(&pairs).unwrap();
    assert_eq!(space.grid_len(), Some(u64::MAX));
    let last = space.grid_point(999).unwrap();
    assert_eq!(space.flags(&last)[7].1, "999");
    assert_eq!(space.flags(&last)[6].1, "0");
}

fn draws(kind: OptimizerKind, space: &Space, seed: u64, count: usize) -> Vec<Vec<(String, String)>> {
    let optimizer = Optimizer::new(kind, space.clone(), seed).unwrap();
    let mut finished = Vec::new();
    (0..count)
        .map(|trial| {
            let params = optimizer.propose(&finished, &[]).unwrap();
            let trial_flags = space.flags(&params);
            finished.push((params, Some((trial % 7) as f64)));
            trial_flags
        })
        .collect()
}

#[test]
fn seeded_random_draws_repeat_and_seeds_differ() {
    let space = space(&[
        ("lr", "loguniform[1e-4:1e-1]"),
        ("dropout", "uniform[0:0.5]"),
        ("layers", "choice[2,3,4]"),
    ]);
    for kind in [OptimizerKind::Random, OptimizerKind::Tpe] {
        let first = draws(kind, &space, 7, 30);
        assert_eq!(first, draws(kind, &space, 7, 30), "{kind}");
        assert_ne!(first, draws(kind, &space, 8, 30), "{kind}");
        // Ints stay ints, floats are shortest round-trip text.
        for trial_flags in &first {
            assert!(["2", "3", "4"].contains(&trial_flags[2].1.as_str()));
            let lr: f64 = trial_flags[0].1.parse().unwrap();
            assert_eq!(format_float(lr), trial_flags[0].1);
        }
    }
}

/// Every draw of every optimizer stays within its flag's bounds, whatever the results.
#[test]
fn samples_stay_within_bounds() {
    let space = space(&[
        ("lr", "loguniform[1e-4:1e-1]"),
        ("tiny", "loguniform[1e-300:1e-299]"),
        ("dropout", "uniform[0:0.5]"),
        ("shift", "uniform[-3:-2.5]"),
        ("opt", "choice[adam,sgd,rmsprop]"),
        ("batch", "[16,32]"),
        ("data", "./data"),
    ]);
    for kind in [OptimizerKind::Random, OptimizerKind::Tpe] {
        for seed in 0..5 {
            for trial_flags in draws(kind, &space, seed, 120) {
                let number = |index: usize| trial_flags[index].1.parse::<f64>().unwrap();
                assert!((1e-4..=1e-1).contains(&number(0)), "{trial_flags:?}");
                assert!((1e-300..=1e-299).contains(&number(1)), "{trial_flags:?}");
                assert!((0.0..=0.5).contains(&number(2)), "{trial_flags:?}");
                assert!((-3.0..=-2.5).contains(&number(3)), "{trial_flags:?}");
                assert!(["adam", "sgd", "rmsprop"].contains(&trial_flags[4].1.as_str()));
                assert!(["16", "32"].contains(&trial_flags[5].1.as_str()));
                assert_eq!(trial_flags[6].1, "./data");
            }
        }
    }
}

#[test]
fn log_uniform_draws_spread_across_decades() {
    let space = space(&[("lr", "loguniform[1e-4:1e-1]")]);
    let mut decades = [0usize; 3];
    for trial_flags in draws(OptimizerKind::Random, &space, 11, 3000) {
        let lr: f64 = trial_flags[0].1.parse().unwrap();
        decades[((lr.log10() + 4.0).floor() as usize).min(2)] += 1;
    }
    // Uniform in the value would put 99% of draws in the top decade.
    assert!(decades.iter().all(|&count| count > 900), "{decades:?}");
}

fn quadratic(x: f64, y: f64) -> f64 {
    (x - 1.5).powi(2) + (y + 0.5).powi(2)
}

fn best_of(kind: OptimizerKind, seed: u64, trials: usize) -> f64 {
    let space = space(&[("x", "uniform[-5:5]"), ("y", "uniform[-5:5]")]);
    let optimizer = Optimizer::new(kind, space.clone(), seed).unwrap();
    let mut finished: Vec<(Params, Option<f64>)> = Vec::new();
    for _ in 0..trials {
        let params = optimizer.propose(&finished, &[]).unwrap();
        let trial_flags = space.flags(&params);
        let value = quadratic(trial_flags[0].1.parse().unwrap(), trial_flags[1].1.parse().unwrap());
        finished.push((params, Some(value)));
    }
    finished
        .iter()
        .filter_map(|(_, value)| *value)
        .fold(f64::INFINITY, f64::min)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    (values[values.len() / 2 - 1] + values[values.len() / 2]) / 2.0
}

#[test]
fn tpe_beats_random_search_on_a_quadratic() {
    let tpe = median((0..20).map(|seed| best_of(OptimizerKind::Tpe, seed, 40)).collect());
    let random = median((0..20).map(|seed| best_of(OptimizerKind::Random, seed, 40)).collect());
    // The seeds are fixed, so this compares the same numbers on every run.
    assert!(tpe < random / 10.0, "median best: tpe {tpe}, random {random}");
}

fn history(space: &Space, count: usize) -> Vec<(Params, Option<f64>)> {
    let optimizer = Optimizer::new(OptimizerKind::Random, space.clone(), 99).unwrap();
    let mut finished = Vec::new();
    for trial in 0..count {
        let params = optimizer.propose(&finished, &[]).unwrap();
        finished.push((params, Some(trial as f64)));
    }
    finished
}

#[test]
fn pending_trials_are_not_proposed_again() {
    let space = space(&[("x", "uniform[-5:5]"), ("y", "uniform[-5:5]")]);
    let optimizer = Optimizer::new(OptimizerKind::Tpe, space.clone(), 1).unwrap();
    let finished = history(&space, 20);
    let mut pending = Vec::new();
    for _ in 0..8 {
        let params = optimizer.propose(&finished, &pending).unwrap();
        assert!(!pending.contains(&params));
        assert!(finished.iter().all(|(done, _)| *done != params));
        pending.push(params);
    }
    // A list-only space: while untried points remain, TPE proposes one of them.
    let space = space_of_lists();
    let optimizer = Optimizer::new(OptimizerKind::Tpe, space.clone(), 1).unwrap();
    let finished = history(&space, 10);
    let mut pending: Vec<Params> = Vec::new();
    for _ in 0..4 {
        let params = optimizer.propose(&finished, &pending).unwrap();
        assert!(!pending.contains(&params), "{:?}", space.flags(&params));
        pending.push(params);
    }
}

fn space_of_lists() -> Space {
    space(&[("a", "[1,2,3,4,5]"), ("b", "choice[x,y,z,w]")])
}

#[test]
fn pending_trials_push_tpe_away() {
    // In flight counts as bad: a proposal made while the first one runs is another point.
    let space = space(&[("x", "uniform[-5:5]"), ("y", "uniform[-5:5]")]);
    let optimizer = Optimizer::new(OptimizerKind::Tpe, space.clone(), 4).unwrap();
    let mut finished = Vec::new();
    for _ in 0..15 {
        let params = optimizer.propose(&finished, &[]).unwrap();
        let trial_flags = space.flags(&params);
        let value = quadratic(trial_flags[0].1.parse().unwrap(), trial_flags[1].1.parse().unwrap());
        finished.push((params, Some(value)));
    }
    let alone = optimizer.propose(&finished, &[]).unwrap();
    let next = optimizer.propose(&finished, std::slice::from_ref(&alone)).unwrap();
    assert_ne!(alone, next);
}

#[test]
fn failed_and_foreign_trials_are_tolerated() {
    let space = space(&[("lr", "loguniform[1e-4:1e-1]"), ("opt", "choice[adam,sgd]")]);
    let foreign = Params(vec![Sample::Real(5.5)]);
    let optimizer = Optimizer::new(OptimizerKind::Tpe, space.clone(), 2).unwrap();
    // Every trial failed, or gave NaN or infinity, or belongs to another space.
    let mut finished: Vec<(Params, Option<f64>)> = history(&space, 30)
        .into_iter()
        .enumerate()
        .map(|(index, (params, _))| (params, [None, Some(f64::NAN), Some(f64::INFINITY)][index % 3]))
        .collect();
    finished.push((foreign.clone(), Some(0.0)));
    finished.push((Params(vec![Sample::Real(f64::NAN), Sample::Choice(7)]), Some(0.0)));
    let params = optimizer.propose(&finished, &[foreign]).unwrap();
    assert!(space.params_from_flags(&space.flags(&params)).is_ok());
    // With some objectives among the failures, TPE models the ones it has.
    for (index, (_, value)) in finished.iter_mut().enumerate().take(30) {
        if index % 2 == 0 {
            *value = Some(index as f64);
        }
    }
    let params = optimizer.propose(&finished, &[]).unwrap();
    assert!(space.params_from_flags(&space.flags(&params)).is_ok());
}

#[test]
fn trial_flags_read_back_as_points() {
    let space = space(&[
        ("lr", "loguniform[1e-4:1e-1]"),
        ("layers", "choice[2,3]"),
        ("data", "./d"),
    ]);
    let point = space
        .params_from_flags(&flags(&[("layers", "3"), ("lr", "0.001"), ("data", "./d")]))
        .unwrap();
    assert_eq!(
        space.flags(&point),
        flags(&[("lr", "0.001"), ("layers", "3"), ("data", "./d")])
    );
    assert_eq!(
        space
            .params_from_flags(&flags(&[("lr", "0.5"), ("layers", "3")]))
            .unwrap_err()
            .to_string(),
        "flag lr=0.5: not a value of loguniform[0.0001:0.1]"
    );
    assert_eq!(
        space
            .params_from_flags(&flags(&[("lr", "0.01"), ("layers", "4")]))
            .unwrap_err()
            .to_string(),
        "flag layers=4: not a value of choice[2,3]"
    );
    assert_eq!(
        space
            .params_from_flags(&flags(&[("lr", "0.01")]))
            .unwrap_err()
            .to_string(),
        "flag layers=: the trial has no value for this flag"
    );
}
