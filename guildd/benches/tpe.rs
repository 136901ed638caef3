//! TPE against random search on Branin (2-D) and Hartmann-6, the two functions, and
//! five more (Hartmann-3, Styblinski-Tang 4-D, Rosenbrock 3-D, six-hump camel, Ackley 5-D)
//! so one lucky function cannot carry the comparison: the median best objective after 50
//! trials over seeds 0..19, and the optimizer's own time per proposal with 200 finished
//! trials. `bench/tpe_vs_optuna.sh` puts Optuna's TPE beside these figures.
//!   cargo bench -p guildd --bench tpe
//! With `TPE_BENCH_TSV=FILE`, the medians are also written to FILE as
//! `function<TAB>optimizer<TAB>median<TAB>p25<TAB>p75` lines.

use std::f64::consts::PI;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use guildd::sweep::{Optimizer, OptimizerKind, Params, Space};

const SEEDS: u64 = 20;
const TRIALS: usize = 50;
const TIMED_HISTORY: usize = 200;
const TIMED_PROPOSALS: usize = 200;

struct Problem {
    name: &'static str,
    minimum: f64,
    bounds: Vec<(f64, f64)>,
    f: fn(&[f64]) -> f64,
}

fn branin(x: &[f64]) -> f64 {
    let (x1, x2) = (x[0], x[1]);
    let b = 5.1 / (4.0 * PI * PI);
    let c = 5.0 / PI;
    let t = 1.0 / (8.0 * PI);
    (x2 - b * x1 * x1 + c * x1 - 6.0).powi(2) + 10.0 * (1.0 - t) * x1.cos() + 10.0
}

fn hartmann6(x: &[f64]) -> f64 {
    const ALPHA: [f64; 4] = [1.0, 1.2, 3.0, 3.2];
    const A: [[f64; 6]; 4] = [
        [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
        [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
        [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
        [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
    ];
    const P: [[f64; 6]; 4] = [
        [1312.0, 1696.0, 5569.0, 124.0, 8283.0, 5886.0],
        [2329.0, 4135.0, 8307.0, 3736.0, 1004.0, 9991.0],
        [2348.0, 1451.0, 3522.0, 2883.0, 3047.0, 6650.0],
        [4047.0, 8828.0, 8732.0, 5743.0, 1091.0, 381.0],
    ];
    -(0..4)
        .map(|i| {
            let inner: f64 = (0..6).map(|j| A[i][j] * (x[j] - P[i][j] * 1e-4).powi(2)).sum();
            ALPHA[i] * (-inner).exp()
        })
        .sum::<f64>()
}

fn hartmann3(x: &[f64]) -> f64 {
    const ALPHA: [f64; 4] = [1.0, 1.2, 3.0, 3.2];
    const A: [[f64; 3]; 4] = [
        [3.0, 10.0, 30.0],
        [0.1, 10.0, 35.0],
        [3.0, 10.0, 30.0],
        [0.1, 10.0, 35.0],
    ];
    const P: [[f64; 3]; 4] = [
        [3689.0, 1170.0, 2673.0],
        [4699.0, 4387.0, 7470.0],
        [1091.0, 8732.0, 5547.0],
        [381.0, 5743.0, 8828.0],
    ];
    -(0..4)
        .map(|i| {
            let inner: f64 = (0..3).map(|j| A[i][j] * (x[j] - P[i][j] * 1e-4).powi(2)).sum();
            ALPHA[i] * (-inner).exp()
        })
        .sum::<f64>()
}

fn styblinski_tang(x: &[f64]) -> f64 {
    x.iter().map(|v| 0.5 * (v.powi(4) - 16.0 * v * v + 5.0 * v)).sum()
}

fn rosenbrock(x: &[f64]) -> f64 {
    x.windows(2)
        .map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2))
        .sum()
}

fn six_hump_camel(x: &[f64]) -> f64 {
    let (a, b) = (x[0], x[1]);
    (4.0 - 2.1 * a * a + a.powi(4) / 3.0) * a * a + a * b + (-4.0 + 4.0 * b * b) * b * b
}

fn ackley(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let squares = x.iter().map(|v| v * v).sum::<f64>() / n;
    let cosines = x.iter().map(|v| (2.0 * PI * v).cos()).sum::<f64>() / n;
    -20.0 * (-0.2 * squares.sqrt()).exp() - cosines.exp() + 20.0 + std::f64::consts::E
}

impl Problem {
    fn space(&self) -> Space {
        let flags: Vec<(String, String)> = self
            .bounds
            .iter()
            .enumerate()
            .map(|(i, (low, high))| (format!("x{}", i + 1), format!("uniform[{low:?}:{high:?}]")))
            .collect();
        Space::parse(&flags).expect("a valid space")
    }

    /// The objective at a trial's flags, read back from their text as a training script would.
    fn evaluate(&self, optimizer: &Optimizer, params: &Params) -> f64 {
        let x: Vec<f64> = optimizer
            .space()
            .flags(params)
            .iter()
            .map(|(_, value)| value.parse().expect("a float flag"))
            .collect();
        (self.f)(&x)
    }

    fn run(&self, kind: OptimizerKind, seed: u64, trials: usize) -> Vec<(Params, Option<f64>)> {
        let optimizer = Optimizer::new(kind, self.space(), seed).expect("an optimizer");
        let mut finished = Vec::with_capacity(trials);
        for _ in 0..trials {
            let params = optimizer.propose(&finished, &[]).expect("a proposal");
            let value = self.evaluate(&optimizer, &params);
            finished.push((params, Some(value)));
        }
        finished
    }
}

/// numpy's default (linear) quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let (below, above) = (position.floor() as usize, position.ceil() as usize);
    sorted[below] + (sorted[above] - sorted[below]) * (position - below as f64)
}

fn main() {
    let problems = [
        Problem {
            name: "branin",
            minimum: 0.397887,
            bounds: vec![(-5.0, 10.0), (0.0, 15.0)],
            f: branin,
        },
        Problem {
            name: "hartmann6",
            minimum: -3.32237,
            bounds: vec![(0.0, 1.0); 6],
            f: hartmann6,
        },
        Problem {
            name: "hartmann3",
            minimum: -3.86278,
            bounds: vec![(0.0, 1.0); 3],
            f: hartmann3,
        },
        Problem {
            name: "styblinski4",
            minimum: -156.665,
            bounds: vec![(-5.0, 5.0); 4],
            f: styblinski_tang,
        },
        Problem {
            name: "rosenbrock3",
            minimum: 0.0,
            bounds: vec![(-2.0, 2.0); 3],
            f: rosenbrock,
        },
        Problem {
            name: "camel",
            minimum: -1.03163,
            bounds: vec![(-3.0, 3.0), (-2.0, 2.0)],
            f: six_hump_camel,
        },
        Problem {
            name: "ackley5",
            minimum: 0.0,
            bounds: vec![(-32.768, 32.768); 5],
            f: ackley,
        },
    ];
    let mut tsv = String::new();
    println!(
        "Median best objective after {TRIALS} trials over seeds 0..{} [p25, p75]",
        SEEDS - 1
    );
    println!(
        "{:<12} {:>9}   {:<34} {:<34}",
        "function", "minimum", "guild tpe", "guild random"
    );
    for problem in &problems {
        let mut cells = Vec::new();
        for (kind, label) in [
            (OptimizerKind::Tpe, "guild-tpe"),
            (OptimizerKind::Random, "guild-random"),
        ] {
            let mut bests: Vec<f64> = (0..SEEDS)
                .map(|seed| {
                    let trials = problem.run(kind, seed, TRIALS);
                    trials
                        .iter()
                        .filter_map(|(_, value)| *value)
                        .fold(f64::INFINITY, f64::min)
                })
                .collect();
            bests.sort_by(f64::total_cmp);
            let (median, p25, p75) = (quantile(&bests, 0.5), quantile(&bests, 0.25), quantile(&bests, 0.75));
            cells.push(format!("{median:.4} [{p25:.4}, {p75:.4}]"));
            let _ = writeln!(tsv, "{}\t{label}\t{median}\t{p25}\t{p75}", problem.name);
        }
        println!(
            "{:<12} {:>9}   {:<34} {:<34}",
            problem.name, problem.minimum, cells[0], cells[1]
        );
    }

    println!();
    println!("TPE's own time per proposal with {TIMED_HISTORY} finished trials ({TIMED_PROPOSALS} proposals):");
    for problem in &problems[..2] {
        let history = problem.run(OptimizerKind::Tpe, 0, TIMED_HISTORY);
        let optimizer = Optimizer::new(OptimizerKind::Tpe, problem.space(), 0).expect("an optimizer");
        let pending: Vec<Params> = problem
            .run(OptimizerKind::Random, 1, 4)
            .into_iter()
            .map(|(params, _)| params)
            .collect();
        for (label, in_flight) in [("none pending", &[][..]), ("4 pending", &pending[..])] {
            let mut times: Vec<Duration> = (0..TIMED_PROPOSALS)
                .map(|_| {
                    let start = Instant::now();
                    let proposal = optimizer.propose(std::hint::black_box(&history), in_flight);
                    let elapsed = start.elapsed();
                    std::hint::black_box(proposal);
                    elapsed
                })
                .collect();
            times.sort();
            let mean = times.iter().sum::<Duration>() / times.len() as u32;
            println!(
                "  {:<12} {:<13} mean {:.3} ms, p50 {:.3} ms, max {:.3} ms",
                problem.name,
                label,
                mean.as_secs_f64() * 1e3,
                times[times.len() / 2].as_secs_f64() * 1e3,
                times[times.len() - 1].as_secs_f64() * 1e3
            );
            if in_flight.is_empty() {
                let _ = writeln!(
                    tsv,
                    "{}\tguild-ms-per-proposal\t{}\t\t",
                    problem.name,
                    mean.as_secs_f64() * 1e3
                );
            }
        }
    }
    if let Ok(path) = std::env::var("TPE_BENCH_TSV") {
        std::fs::write(&path, tsv).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
    }
}
