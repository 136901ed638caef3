"""Compare runs as CSV: id, model, status, every flag, the last value of every series.
python3 compare.py [RUNS ...] [--sys]   (RUNS: ids, prefixes, indexes, ranges like 1:5)"""
import argparse
import csv
import sys

import guild_api


def rows(api, runs, sys_stats=False):
    """Yields (run, {flag: value}, {key: last}) for each selected run, newest first."""
    request = api.pb.CompareRunsRequest(selection=api.pb.RunSelection(runs=runs), sys=sys_stats)
    flag_names, flag_values, keys = [], [], []
    for chunk in api.compare.CompareRuns(request):
        # Names and values arrive once; rows refer to them by position.
        flag_names.extend(chunk.new_flag_names)
        flag_values.extend(chunk.new_flag_values)
        keys.extend(chunk.new_scalar_keys)
        for row in chunk.rows:
            flags = {flag_names[n]: flag_values[v] for n, v in zip(row.flag_names, row.flag_values)}
            scalars = {keys[i]: v for i, v in zip(row.scalar_keys, row.scalar_last)}
            yield row.run, flags, scalars


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    guild_api.add_connection_args(parser)
    parser.add_argument("runs", nargs="*")
    parser.add_argument("--sys", action="store_true", help="include sys/* and op/* series")
    args = parser.parse_args()
    api = guild_api.connect_from(args)
    table = list(rows(api, args.runs, args.sys))
    flag_cols = sorted({name for _, flags, _ in table for name in flags})
    key_cols = sorted({key for _, _, scalars in table for key in scalars})
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["id", "model", "status"] + flag_cols + key_cols)
    for run, flags, scalars in table:
        out.writerow([run.id, run.model, guild_api.status_name(run.status)]
                     + [flags.get(f, "") for f in flag_cols]
                     + [repr(scalars[k]) if k in scalars else "" for k in key_cols])


if __name__ == "__main__":
    main()
