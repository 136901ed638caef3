"""GetSeries over guildd's socket: 1,000 keys x 100,000 buckets (refused with the limit
named), then the widest allowed (1,000 x 1,000 and 20 x 50,000). Prints one summary
line. Stubs are generated from proto/ with grpcio-tools.
    python3 bench/faults/get_series_wide.py SOCKET RUN
"""
import os
import sys
import tempfile

import grpc
from grpc_tools import protoc

socket, run = sys.argv[1:3]
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
out = tempfile.mkdtemp(prefix="guild-stubs-")
proto = os.path.join(root, "proto")
if protoc.main(["protoc", f"-I{proto}", f"--python_out={out}", f"--grpc_python_out={out}",
                os.path.join(proto, "guild/v1/guild.proto")]) != 0:
    sys.exit("protoc failed")
sys.path.insert(0, out)
from guild.v1 import guild_pb2 as pb, guild_pb2_grpc as rpc  # noqa: E402

stub = rpc.SeriesServiceStub(grpc.insecure_channel(
    "unix:" + socket, options=[("grpc.max_receive_message_length", 64 << 20),
                               ("grpc.default_authority", "localhost")]))
said = []
for keys, buckets in [(1000, 100_000), (1000, 1000), (20, 50_000)]:
    req = pb.GetSeriesRequest(run=run, keys=[f"k{k}" for k in range(keys)], buckets=buckets)
    try:
        got = stub.GetSeries(req, timeout=60)
        said.append(f"{keys}x{buckets}: {sum(len(s.buckets) for s in got.series)} buckets")
    except grpc.RpcError as e:
        limit = "limit named" if "1000000" in e.details() else "no limit named"
        said.append(f"{keys}x{buckets}: {e.code().name} ({limit})")
print("; ".join(said))
