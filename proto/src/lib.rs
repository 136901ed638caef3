//! What the daemon and every client share: the generated `guild.v1` API, the protocol
//! number, where the daemon's socket and data live, and how to connect to it.

pub mod v1 {
    tonic::include_proto!("guild.v1");
}

/// The encoded `FileDescriptorSet` of `guild.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/guild_descriptor.bin"));

pub mod connect;
pub mod locations;
pub mod time;

/// Bumped whenever a change to `guild.v1` or its semantics would confuse an older peer.
/// The CLI refuses a daemon whose protocol differs.
pub const PROTOCOL: u32 = 1;

/// The daemon's and CLI's version (one workspace version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Metadata key carrying the TCP access token (`authorization: Bearer <token>` also works).
pub const TOKEN_HEADER: &str = "x-guild-token";
