"""Stream a run's series as it trains: one line `KEY STEP VALUE` per sample, from the
first sample to the run's end. python3 watch_series.py RUN [KEY ...]"""
import argparse

import guild_api


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    guild_api.add_connection_args(parser)
    parser.add_argument("run", help="run id, id prefix or index (1 = latest)")
    parser.add_argument("keys", nargs="*", help="series keys (default: every key)")
    args = parser.parse_args()
    api = guild_api.connect_from(args)
    request = api.pb.WatchSeriesRequest(run=args.run, keys=args.keys, after_cursor=0)
    for update in api.series.WatchSeries(request):
        for series in update.series:
            for sample in series.samples:
                print("%s %d %r" % (series.key, sample.step, sample.value), flush=True)


if __name__ == "__main__":
    main()
