"""Times GetSeries over guildd's Unix socket. Stubs are generated from proto/ into a
temporary folder with grpcio-tools (pip install grpcio grpcio-tools).
    python3 bench/series_client.py SOCKET RUN KEY [--buckets N] [--reps R] [--axis step|time]
Prints one line per call: seconds, samples counted, buckets returned.
"""
import argparse
import os
import sys
import tempfile
import time

from grpc_tools import protoc

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
p = argparse.ArgumentParser()
p.add_argument("socket")
p.add_argument("run")
p.add_argument("key")
p.add_argument("--buckets", type=int, default=1000)
p.add_argument("--reps", type=int, default=20)
p.add_argument("--axis", default="step")
args = p.parse_args()

out = tempfile.mkdtemp(prefix="guild-stubs-")
proto_dir = os.path.join(root, "proto")
rc = protoc.main(["protoc", f"-I{proto_dir}", f"--python_out={out}", f"--grpc_python_out={out}",
                  os.path.join(proto_dir, "guild/v1/guild.proto")])
if rc != 0:
    sys.exit("protoc failed")
sys.path.insert(0, out)
import grpc  # noqa: E402
from guild.v1 import guild_pb2 as pb, guild_pb2_grpc as rpc  # noqa: E402

channel = grpc.insecure_channel("unix:" + args.socket,
                                options=[("grpc.max_receive_message_length", 256 << 20),
                                         ("grpc.default_authority", "localhost")])
stub = rpc.SeriesServiceStub(channel)
axis = pb.AXIS_TIME if args.axis == "time" else pb.AXIS_STEP
req = pb.GetSeriesRequest(run=args.run, keys=[args.key], buckets=args.buckets, axis=axis)
stub.GetSeries(req)  # connect (and warm the page cache) before timing
for _ in range(args.reps):
    t = time.perf_counter()
    resp = stub.GetSeries(req)
    dt = time.perf_counter() - t
    s = resp.series[0]
    print(f"{dt:.4f} {s.count} {len(s.buckets)}")
