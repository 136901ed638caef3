"""Start a sweep over flags, wait for it, print the best trial.

    python3 sweep.py PROJECT_DIR [MODEL] NAME=VALUE ... [--op train] [--max-trials N]
        [--optimizer grid|random|tpe] [--minimize KEY | --maximize KEY] [--seed N] [--parallel N]

Sweep values: lr=[0.1,0.01] (every item), lr=loguniform[1e-4:1e-1], dropout=uniform[0:0.5],
layers=choice[2,3,4]. Prints `best TRIAL RUN_ID OBJECTIVE NAME=VALUE ...`; exits 0 when
every trial completed.
"""
import argparse
import os
import sys

import guild_api


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    guild_api.add_connection_args(parser)
    parser.add_argument("project_dir")
    parser.add_argument("args", nargs="*", metavar="MODEL|NAME=VALUE")
    parser.add_argument("--op", default="train")
    parser.add_argument("--max-trials", type=int, default=0)
    parser.add_argument("--optimizer", default="")
    parser.add_argument("--minimize", default="")
    parser.add_argument("--maximize", default="")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--parallel", type=int, default=0)
    args = parser.parse_args()
    api = guild_api.connect_from(args)
    pb = api.pb
    model, flags = "", []
    for arg in args.args:
        if "=" in arg:
            name, value = arg.split("=", 1)
            flags.append(pb.Flag(name=name, value=value))
        else:
            model = arg
    options = pb.SweepOptions(max_trials=args.max_trials, optimizer=args.optimizer,
                              minimize=args.minimize, maximize=args.maximize, parallel=args.parallel)
    if args.seed is not None:
        options.seed = args.seed
    sweep_run = api.runs.StartRun(pb.StartRunRequest(
        project_dir=os.path.abspath(args.project_dir), model=model, op=args.op,
        flags=flags, env=dict(os.environ), sweep=options,
    ))
    print("sweep", sweep_run.id, flush=True)
    # Follow the sweep's run (WatchRuns) to its end; its trials are runs of their own.
    for event in api.runs.WatchRuns(pb.WatchRunsRequest(run=sweep_run.id)):
        if event.HasField("run") and guild_api.status_name(event.run.status) not in ("pending", "queued", "running"):
            break
    sweep = api.sweeps.GetSweep(pb.GetSweepRequest(sweep=sweep_run.id))
    for trial in sweep.trials:
        print("trial", trial.number, guild_api.status_name(trial.run.status),
              trial.objective if trial.HasField("objective") else "-",
              " ".join("%s=%s" % (f.name, f.value) for f in trial.flags))
    best = next((t for t in sweep.trials if t.number == sweep.best_trial), None)
    if best is None:
        print("no completed trial has %s" % sweep.objective)
        return 1
    print("best", best.number, best.run.id, repr(best.objective),
          " ".join("%s=%s" % (f.name, f.value) for f in best.flags))
    return 0 if guild_api.status_name(sweep.run.status) == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
