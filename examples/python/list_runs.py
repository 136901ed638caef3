"""List runs, newest first: python3 list_runs.py [--json] [--socket PATH | --tcp HOST:PORT]"""
import argparse
import json

import guild_api


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    guild_api.add_connection_args(parser)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    api = guild_api.connect_from(args)
    reply = api.runs.ListRuns(api.pb.ListRunsRequest())
    if args.json:
        print(json.dumps([
            {"id": r.id, "model": r.model, "op": r.op, "status": guild_api.status_name(r.status),
             "label": r.label, "tags": list(r.tags), "run_dir": r.run_dir}
            for r in reply.runs
        ], indent=2))
        return
    for i, r in enumerate(reply.runs, 1):
        print("%d  %s  %s:%s  %s  %s" % (i, r.id, r.model, r.op, guild_api.status_name(r.status), r.label))
    print("%d runs" % reply.total)


if __name__ == "__main__":
    main()
