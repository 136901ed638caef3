"""Start a run with flags, print its id; --wait follows it to its end.

    python3 start_run.py PROJECT_DIR [MODEL] [NAME=VALUE ...] [--op train] [--label L] [--wait]
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
    parser.add_argument("--label", default="")
    parser.add_argument("--wait", action="store_true", help="wait for the run to end; exit with its status")
    args = parser.parse_args()
    api = guild_api.connect_from(args)
    model, flags = "", []
    for arg in args.args:
        if "=" in arg:
            name, value = arg.split("=", 1)
            flags.append(api.pb.Flag(name=name, value=value))
        else:
            model = arg
    run = api.runs.StartRun(api.pb.StartRunRequest(
        project_dir=os.path.abspath(args.project_dir), model=model, op=args.op,
        flags=flags, label=args.label, env=dict(os.environ),
    ))
    print(run.id, flush=True)
    if not args.wait:
        return 0
    for event in api.runs.WatchRuns(api.pb.WatchRunsRequest(run=run.id)):
        if not event.HasField("run"):  # the end of the snapshot
            continue
        status = guild_api.status_name(event.run.status)
        if status not in ("pending", "queued", "running"):
            print("%s %s" % (run.id, status))
            return 0 if status == "completed" else 1
    return 1


if __name__ == "__main__":
    sys.exit(main())
