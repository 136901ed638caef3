#!/usr/bin/env bash
# guildd's TPE against Optuna's (default TPESampler) and against random search, on Branin
# (2-D) and Hartmann-6 (and five more functions, see guildd/benches/tpe.rs): the median best
# objective after 50 trials over seeds 0..19, and the optimizer's own time per proposal with
# 200 finished trials. Targets (issue 16): a median
# at least as good as Optuna's, at most 5 ms a proposal.
#   bench/tpe_vs_optuna.sh
# Optuna goes into a throwaway venv (python3 -m venv; pip install optuna).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/guild-tpe-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "== optuna: venv in $work"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet optuna
"$work/venv/bin/python" "$root/bench/tpe_optuna.py" "$work/optuna.tsv"

echo "== guildd: cargo bench -p guildd --bench tpe"
(cd "$root" && TPE_BENCH_TSV="$work/guild.tsv" cargo bench --quiet -p guildd --bench tpe)

echo
echo "== side by side: median best after 50 trials, seeds 0..19 [p25, p75]; ms per proposal at 200 trials"
cat "$work/guild.tsv" "$work/optuna.tsv" | awk -F'\t' '
  { cell[$1, $2] = ($4 == "" ? sprintf("%.3f ms", $3) : sprintf("%.4f [%.4f, %.4f]", $3, $4, $5)) }
  END {
    n = split("branin hartmann6 hartmann3 styblinski4 rosenbrock3 camel ackley5", order, " ")
    split("0.397887 -3.32237 -3.86278 -156.665 0 -1.03163 0", minima, " ")
    printf "%-12s %-9s  %-34s %-34s %-34s %-10s %-10s\n", "function", "minimum", "guild tpe", "optuna tpe", "guild random", "guild ms", "optuna ms"
    for (i = 1; i <= n; i++) {
      f = order[i]
      printf "%-12s %-9s  %-34s %-34s %-34s %-10s %-10s\n", f, minima[i], cell[f, "guild-tpe"], cell[f, "optuna-tpe"], cell[f, "guild-random"], cell[f, "guild-ms-per-proposal"], cell[f, "optuna-ms-per-proposal"]
    }
  }'
