//! gRPC to this test's daemon over its socket: a channel, clients, and the calls many
//! tests make.

use guild_proto::v1::{
    self as pb, daemon_service_client::DaemonServiceClient, output_service_client::OutputServiceClient,
    run_service_client::RunServiceClient, serve_service_client::ServeServiceClient,
};
use tonic::Streaming;
use tonic::transport::Channel;

use super::env::Env;

impl Env {
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.rt.block_on(future)
    }

    /// A channel over this test's socket; panics when nothing answers.
    pub async fn channel(&self) -> Channel {
        guild_proto::connect::connect_unix(&self.socket)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to guildd at {}: {e}", self.socket.display()))
    }

    pub async fn runs_client(&self) -> RunServiceClient<Channel> {
        RunServiceClient::new(self.channel().await)
    }

    /// The daemon's status, or None when nothing answers on the socket.
    pub fn try_status(&self) -> Option<pb::DaemonStatus> {
        self.block_on(async {
            let channel = guild_proto::connect::connect_unix(&self.socket).await.ok()?;
            DaemonServiceClient::new(channel)
                .get_status(pb::GetStatusRequest {})
                .await
                .ok()
                .map(|r| r.into_inner())
        })
    }

    /// GetRun: a run and its flags, attrs and series.
    #[track_caller]
    pub fn get_run(&self, selector: &str) -> pb::RunDetail {
        self.block_on(async {
            self.runs_client()
                .await
                .get_run(pb::GetRunRequest {
                    run: selector.to_string(),
                })
                .await
                .unwrap_or_else(|s| panic!("GetRun {selector}: {s}"))
                .into_inner()
        })
    }

    /// ReadOutput of a run from its first line; `follow` keeps it open to the run's end.
    pub async fn read_output(&self, id: &str, follow: bool) -> Result<Streaming<pb::OutputChunk>, tonic::Status> {
        let request = pb::ReadOutputRequest {
            run: id.to_string(),
            from_seq: 0,
            follow,
        };
        let reply = OutputServiceClient::new(self.channel().await)
            .read_output(request)
            .await?;
        Ok(reply.into_inner())
    }

    /// Every output line of a run (ReadOutput without follow).
    pub fn output_lines(&self, id: &str) -> Vec<pb::OutputLine> {
        self.block_on(async {
            let mut stream = self
                .read_output(id, false)
                .await
                .unwrap_or_else(|s| panic!("ReadOutput {id}: {s}"));
            let mut lines = Vec::new();
            while let Some(chunk) = stream.message().await.expect("ReadOutput stream") {
                lines.extend(chunk.lines);
            }
            lines
        })
    }
}

/// A ServeService client over this test's socket.
pub async fn serves(env: &Env) -> ServeServiceClient<tonic::transport::Channel> {
    ServeServiceClient::new(env.channel().await)
}

/// ListServes for one run; None when it is not served.
pub fn serve_of(env: &Env, run: &str) -> Option<pb::Serve> {
    env.block_on(async {
        serves(env)
            .await
            .list_serves(pb::ListServesRequest { run: run.to_string() })
            .await
            .unwrap_or_else(|s| panic!("ListServes {run}: {s}"))
            .into_inner()
            .serves
            .into_iter()
            .next()
    })
}

/// StartServe; panics when it is refused.
#[track_caller]
pub fn start_serve(env: &Env, request: pb::StartServeRequest) -> pb::Serve {
    env.block_on(async {
        serves(env)
            .await
            .start_serve(request)
            .await
            .unwrap_or_else(|s| panic!("StartServe: {s}"))
            .into_inner()
    })
}
