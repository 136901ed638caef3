"""Connecting to guildd from Python with grpcio.

The stubs are generated from the daemon's own proto/guild/v1/guild.proto at run time
(grpcio-tools ships protoc), into a private cache folder, so they never drift from the
API. Import this module from the example scripts:

    import guild_api
    api = guild_api.connect()            # Unix socket, as the `guild` CLI finds it
    api = guild_api.connect(tcp="127.0.0.1:6333")   # TCP: sends DATA_DIR/token
    runs = api.runs.ListRuns(api.pb.ListRunsRequest()).runs

Needs: pip install grpcio grpcio-tools (grpcio-reflection and grpcio-health-checking
for reflect.py).
"""
import argparse
import hashlib
import importlib
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_ROOT = os.environ.get("GUILD_PROTO_DIR", os.path.join(HERE, "..", "..", "proto"))
PROTO_FILE = "guild/v1/guild.proto"


def load_stubs():
    """(guild_pb2, guild_pb2_grpc), generated once per version of guild.proto."""
    import grpc_tools
    from grpc_tools import protoc

    source = os.path.join(PROTO_ROOT, PROTO_FILE)
    with open(source, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(tempfile.gettempdir(), "guild-%d" % os.getuid())
    out = os.path.join(cache, "guild-python-stubs", digest)
    if not os.path.exists(os.path.join(out, "guild", "v1", "guild_pb2_grpc.py")):
        # Generated in a fresh folder, then renamed into place: concurrent scripts never
        # import a half-written module.
        os.makedirs(os.path.dirname(out), exist_ok=True)
        staging = tempfile.mkdtemp(dir=os.path.dirname(out), prefix=".gen-")
        package = os.path.join(staging, "guild", "v1")
        os.makedirs(package)
        # A regular package (with __init__.py) first on sys.path wins over any other
        # `guild` package installed (guildai has one).
        for folder in (os.path.join(staging, "guild"), package):
            open(os.path.join(folder, "__init__.py"), "a").close()
        well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
        code = protoc.main([
            "grpc_tools.protoc", "-I" + PROTO_ROOT, "-I" + well_known,
            "--python_out=" + staging, "--grpc_python_out=" + staging, PROTO_FILE,
        ])
        if code != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError("grpc_tools.protoc failed on %s (exit %d)" % (source, code))
        try:
            os.rename(staging, out)
        except OSError:  # another script got there first
            shutil.rmtree(staging, ignore_errors=True)
    if out not in sys.path:
        sys.path.insert(0, out)
    return importlib.import_module("guild.v1.guild_pb2"), importlib.import_module("guild.v1.guild_pb2_grpc")


def data_dir():
    """The daemon's data folder, resolved as the CLI does."""
    if os.environ.get("GUILD_DATA_DIR"):
        return os.path.abspath(os.environ["GUILD_DATA_DIR"])
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "guild")


def socket_path():
    """The daemon's Unix socket, resolved as the CLI does."""
    if os.environ.get("GUILD_SOCKET"):
        return os.path.abspath(os.environ["GUILD_SOCKET"])
    if os.environ.get("GUILD_DATA_DIR"):
        return os.path.join(data_dir(), "guildd.sock")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "guild", "guildd.sock")
    return os.path.join(data_dir(), "guildd.sock")


class _Token:
    """Adds `x-guild-token` to every call (TCP requires it; the socket does not)."""

    def __init__(self, token):
        self.token = token

    def _with_token(self, details):
        import grpc

        class Details(grpc.ClientCallDetails):
            pass

        new = Details()
        new.method = details.method
        new.timeout = details.timeout
        new.credentials = details.credentials
        new.wait_for_ready = getattr(details, "wait_for_ready", None)
        new.compression = getattr(details, "compression", None)
        new.metadata = list(details.metadata or []) + [("x-guild-token", self.token)]
        return new


def _token_interceptor(token):
    import grpc

    class Interceptor(_Token, grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                      grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
        def intercept_unary_unary(self, continuation, details, request):
            return continuation(self._with_token(details), request)

        def intercept_unary_stream(self, continuation, details, request):
            return continuation(self._with_token(details), request)

        def intercept_stream_unary(self, continuation, details, requests):
            return continuation(self._with_token(details), requests)

        def intercept_stream_stream(self, continuation, details, requests):
            return continuation(self._with_token(details), requests)

    return Interceptor(token)


class Api:
    """A channel to guildd and a stub per service."""

    def __init__(self, channel, target):
        self.channel = channel
        self.target = target
        self.pb, grpc_mod = load_stubs()
        self.daemon = grpc_mod.DaemonServiceStub(channel)
        self.projects = grpc_mod.ProjectServiceStub(channel)
        self.runs = grpc_mod.RunServiceStub(channel)
        self.output = grpc_mod.OutputServiceStub(channel)
        self.series = grpc_mod.SeriesServiceStub(channel)
        self.compare = grpc_mod.CompareServiceStub(channel)


def connect(socket=None, tcp=None, token=None):
    """Over the Unix socket (default), or TCP `HOST:PORT` with the data dir's token."""
    import grpc

    options = [("grpc.max_receive_message_length", 256 * 1024 * 1024)]
    if tcp:
        if token is None:
            with open(os.path.join(data_dir(), "token")) as f:
                token = f.read().strip()
        channel = grpc.intercept_channel(grpc.insecure_channel(tcp, options=options), _token_interceptor(token))
        return Api(channel, tcp)
    path = socket or socket_path()
    # grpcio would send the socket path as :authority, which HTTP/2 servers refuse.
    options.append(("grpc.default_authority", "localhost"))
    return Api(grpc.insecure_channel("unix:" + path, options=options), "unix:" + path)


def add_connection_args(parser):
    parser.add_argument("--socket", help="guildd's Unix socket (default: as the guild CLI finds it)")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="connect over TCP instead (sends DATA_DIR/token)")
    parser.add_argument("--token", help="the TCP token (default: read from DATA_DIR/token)")


def connect_from(args):
    return connect(socket=args.socket, tcp=args.tcp, token=args.token)


STATUS = {1: "pending", 2: "running", 3: "completed", 4: "error", 5: "terminated", 6: "failed", 7: "queued"}


def status_name(value):
    return STATUS.get(value, "unknown")
