//! `guild view`: the dashboard's URL, with a one-time code (never the token), opened in
//! a browser unless `--no-open`.

use anyhow::anyhow;
use guild_proto::v1 as pb;

use crate::out::clean;
use crate::rpc::{self, Target, status_error};

/// `guild view`: the dashboard's URL with a one-time code (never the token: a browser's
/// command line is visible to every user in `ps`). The page trades the code for the token
/// once; the browser gets a code of its own, so the printed URL still works once.
pub async fn run(target: &Target, no_open: bool) -> anyhow::Result<u8> {
    let client = rpc::connect(target).await?;
    let code = || async {
        match client.daemon().create_view_code(pb::CreateViewCodeRequest {}).await {
            Ok(reply) => Ok(reply.into_inner().url),
            Err(status) if status.code() == tonic::Code::Unimplemented => Err(anyhow!(
                "guildd (pid {}) is older than this guild and cannot make a one-time code: \
                 `guild daemon stop`, then `guild view` again",
                client.status.pid
            )),
            Err(status) => Err(status_error(status)),
        }
    };
    outln!("{}", clean(&code().await?))?;
    if !no_open {
        let url = code().await?;
        let opened = std::process::Command::new("xdg-open")
            .arg(&url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if opened.is_err() {
            eprintln!("(no browser could be opened here: open the URL above)");
        }
    }
    eprintln!("(the URL opens the dashboard once, within 5 minutes; `guild view` makes another)");
    Ok(0)
}
