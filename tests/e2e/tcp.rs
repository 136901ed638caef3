//! TCP: loopback only unless --allow-remote, and every request needs the data dir's token.

use guild_proto::v1::{self as pb, daemon_service_client::DaemonServiceClient, run_service_client::RunServiceClient};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use crate::helpers::*;

fn with_header<T>(message: T, name: &'static str, value: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert(name, value.parse().expect("metadata value"));
    request
}

#[test]
fn tcp_requires_the_token() {
    let env = Env::new();
    let (pid, status) = env.start_guildd(&["--listen", "127.0.0.1:0"]);
    assert_eq!(status.pid, pid, "GetStatus over the socket");
    let addr: std::net::SocketAddr = status
        .tcp_address
        .parse()
        .unwrap_or_else(|_| panic!("tcp_address {:?}", status.tcp_address));
    assert!(addr.ip().is_loopback() && addr.port() != 0, "bound to {addr}");

    let token_file = env.data_dir.join("token");
    // guildd answers on its socket a moment before it has written the token.
    wait_until("guildd to write DATA_DIR/token", || {
        std::fs::read_to_string(&token_file).is_ok_and(|t| t.len() == 64)
    });
    let token = std::fs::read_to_string(&token_file).expect("DATA_DIR/token");
    assert_eq!(token.len(), 64, "token {token:?}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(mode(&token_file), 0o600, "token file mode");

    env.block_on(async {
        let channel: Channel = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        let mut daemon = DaemonServiceClient::new(channel.clone());

        let refused = daemon
            .get_status(pb::GetStatusRequest {})
            .await
            .expect_err("GetStatus over TCP without a token");
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
        assert!(refused.message().contains("token"), "{refused:?}");

        let wrong = "0".repeat(64);
        let refused = daemon
            .get_status(with_header(pb::GetStatusRequest {}, "x-guild-token", &wrong))
            .await
            .expect_err("GetStatus over TCP with a wrong token");
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

        let refused = RunServiceClient::new(channel.clone())
            .list_runs(pb::ListRunsRequest::default())
            .await
            .expect_err("ListRuns over TCP without a token");
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

        let answer = daemon
            .get_status(with_header(
                pb::GetStatusRequest {},
                guild_proto::TOKEN_HEADER,
                token.trim(),
            ))
            .await
            .expect("GetStatus over TCP with the token")
            .into_inner();
        assert_eq!(answer.pid, pid);
        assert_eq!(answer.tcp_address, status.tcp_address);
        assert_eq!(answer.data_dir, env.data_dir.to_str().unwrap());

        let bearer = format!("Bearer {}", token.trim());
        let runs = RunServiceClient::new(channel)
            .list_runs(with_header(pb::ListRunsRequest::default(), "authorization", &bearer))
            .await
            .expect("ListRuns over TCP with a bearer token")
            .into_inner();
        assert_eq!(runs.total, 0);
    });

    // The socket needs no token, and the CLI sees the TCP address.
    let status = env.guild(&["daemon", "status"]).ok();
    assert!(status.stdout.contains(&format!("  tcp:      {}\n", addr)), "{status:?}");
}

#[test]
fn listen_beyond_loopback_needs_allow_remote() {
    let env = Env::new();
    let out = env
        .guildd(&[
            "--data-dir",
            env.data_dir.to_str().unwrap(),
            "--socket",
            env.socket.to_str().unwrap(),
            "--listen",
            "0.0.0.0:0",
        ])
        .exits(1);
    assert_eq!(
        out.stderr,
        "guildd: --listen 0.0.0.0:0 is not a loopback address; add --allow-remote to serve other hosts\n"
    );
    assert!(!env.socket.exists(), "it bound the socket anyway");
    assert!(!env.data_dir.exists(), "it created the data dir anyway");
}
