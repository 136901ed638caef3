"""What generic gRPC tools see: the services guildd lists through server reflection,
their methods, and the standard health check. python3 reflect.py [--socket | --tcp]
Needs: pip install grpcio-reflection grpcio-health-checking"""
import argparse

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from google.protobuf.descriptor_pool import DescriptorPool

import guild_api


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    guild_api.add_connection_args(parser)
    args = parser.parse_args()
    api = guild_api.connect_from(args)
    database = ProtoReflectionDescriptorDatabase(api.channel)
    pool = DescriptorPool(database)
    for name in sorted(database.get_services()):
        service = pool.FindServiceByName(name)
        print("%s: %s" % (name, " ".join(m.name for m in service.methods)))
    health = health_pb2_grpc.HealthStub(api.channel)
    for service in ("", "guild.v1.RunService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service))
        print("health %r: %s" % (service, health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)))


if __name__ == "__main__":
    main()
