//! Issue 13, case 9: the token never goes on a command line (`guild view` opens a
//! one-time code), loose modes on the data folder and token are tightened (the token
//! replaced), and the recorded `env` leaves out secret-looking names and redacts
//! passwords in values.

use std::os::unix::fs::PermissionsExt;

use guild_proto::v1::{self as pb, daemon_service_client::DaemonServiceClient};

use crate::helpers::*;

/// `POST /auth/code` with a body and content type: (status, body).
fn redeem(addr: &str, content_type: &str, body: &str) -> (u16, String) {
    let reply = http(
        addr,
        "POST",
        "/auth/code",
        &[("Content-Type", content_type)],
        body.as_bytes(),
    );
    (reply.status, reply.body)
}

fn code_of(url: &str) -> String {
    url.trim()
        .split_once("?code=")
        .unwrap_or_else(|| panic!("no ?code= in {url:?}"))
        .1
        .to_string()
}

#[test]
fn guild_view_opens_a_one_time_code_never_the_token() {
    let env = Env::new();
    let (_, status) = env.start_guildd(&["--listen", "127.0.0.1:0"]);
    let addr = status.tcp_address.clone();
    let token = env.token();
    // A browser opener that records the command line it was given (as `ps` would show it).
    let bin = env.root.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let opener = bin.join("xdg-open");
    let argv_file = env.root.join("xdg-open.argv");
    std::fs::write(
        &opener,
        format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > {}\n", argv_file.display()),
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = env.guild_env(&["view"], &[("PATH", path.as_str())]).ok();
    wait_until("xdg-open to run", || {
        std::fs::read_to_string(&argv_file).is_ok_and(|a| a.ends_with('\n'))
    });
    let argv = std::fs::read_to_string(&argv_file).unwrap();
    assert!(
        !argv.contains(token.trim()),
        "the token is on xdg-open's command line: {argv}"
    );
    assert!(!out.stdout.contains(token.trim()), "the token is printed: {out:?}");
    assert!(argv.starts_with(&format!("http://{addr}/?code=")), "{argv}");

    // Each code gives the token once; the printed URL has a code of its own.
    let (opened, printed) = (code_of(&argv), code_of(&out.stdout));
    assert_ne!(opened, printed);
    for code in [&opened, &printed] {
        let (status, body) = redeem(&addr, "application/json", &format!("{{\"code\":\"{code}\"}}"));
        assert_eq!(status, 200, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["token"], token.trim());
        let (status, body) = redeem(&addr, "application/json", &format!("{{\"code\":\"{code}\"}}"));
        assert_eq!(status, 403, "a code worked twice: {body}");
        assert!(body.contains("used already or has expired"), "{body}");
    }
    // A page elsewhere cannot post a form or text to it.
    let fresh = code_of(&env.guild(&["view", "--no-open"]).ok().stdout);
    let (status, _) = redeem(&addr, "text/plain", &format!("{{\"code\":\"{fresh}\"}}"));
    assert_eq!(status, 415);
    let (status, _) = redeem(&addr, "application/json", "{\"code\": 0}");
    assert_eq!(status, 400);

    // Without a TCP port there is nothing to open, and the message says so.
    let bare = Env::new();
    bare.start_guildd(&["--listen", "none"]);
    let out = bare.guild(&["view", "--no-open"]).exits(1);
    assert!(out.stderr.contains("serves no TCP port"), "{out:?}");
}

#[test]
fn loose_modes_on_the_data_folder_and_token_are_tightened() {
    let env = Env::new();
    std::fs::create_dir(&env.data_dir).unwrap();
    std::fs::set_permissions(&env.data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let old = "a".repeat(64);
    let token_file = env.data_dir.join("token");
    std::fs::write(&token_file, &old).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();

    let (_, status) = env.start_guildd(&["--listen", "127.0.0.1:0"]);
    assert_eq!(mode(&env.data_dir), 0o700);
    wait_until("the new token", || {
        std::fs::read_to_string(&token_file).is_ok_and(|t| t.trim().len() == 64 && t.trim() != old)
    });
    assert_eq!(mode(&token_file), 0o600);
    let log = std::fs::read_to_string(env.root.join("guildd.out")).unwrap_or_default();
    assert!(log.contains("others may have read the token"), "{log}");
    let new = std::fs::read_to_string(&token_file).unwrap();

    // The old token opens nothing; the new one does.
    env.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", status.tcp_address))
            .unwrap()
            .connect()
            .await
            .unwrap();
        for (token, ok) in [(old.as_str(), false), (new.trim(), true)] {
            let mut request = tonic::Request::new(pb::GetStatusRequest {});
            request
                .metadata_mut()
                .insert(guild_proto::TOKEN_HEADER, token.parse().unwrap());
            let answer = DaemonServiceClient::new(channel.clone()).get_status(request).await;
            assert_eq!(answer.is_ok(), ok, "{answer:?}");
        }
    });

    // A private token is kept across restarts.
    env.guild(&["daemon", "stop"]).ok();
    env.start_guildd(&["--listen", "127.0.0.1:0"]);
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), new);
}

#[test]
fn the_recorded_env_leaves_secrets_out() {
    let env = Env::new();
    env.write("Guild", "[project]\nstats_interval = 0\n\n[model \"m\"]\ntrain = ok\n");
    env.write("ok.py", OK_PY);
    let secrets = [
        ("DB_PASS", "hunter2"),
        ("GH_PAT", "ghp_abcdef"),
        ("SENTRY_DSN", "https://key@sentry.example/1"),
        ("MYSQL_PWD", "pw1"),
        ("AWS_SECRET_ACCESS_KEY", "aws1"),
        ("API_KEY", "k1"),
        ("NPM_AUTH", "a1"),
        ("GOOGLE_APPLICATION_CREDENTIALS", "/c.json"),
        ("AZURE_STORAGE_CONNECTION_STRING", "AccountKey=az1"),
    ];
    let kept = [
        (
            "DATABASE_URL",
            "postgres://user:s3cr3t@db.example:5432/app",
            "postgres://user:***@db.example:5432/app",
        ),
        (
            "STORAGE",
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=az2==;EndpointSuffix=core.windows.net",
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=***;EndpointSuffix=core.windows.net",
        ),
        (
            "BUS",
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=sb1=",
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=***",
        ),
        (
            "ODBC",
            "Server=db;User ID=sa;Password=p@ss word;Encrypt=yes",
            "Server=db;User ID=sa;Password=***;Encrypt=yes",
        ),
        ("LR_SCHEDULE", "cosine", "cosine"),
    ];
    let mut vars: Vec<(&str, &str)> = secrets.to_vec();
    vars.extend(kept.iter().map(|(n, v, _)| (*n, *v)));
    let out = env.guild_env(&["train"], &vars).ok();
    let (_, run_dir) = out.started_run();
    let attrs = env.block_on(async {
        let mut conn = open_run_db(&run_dir).await;
        pairs(&mut conn, "attr").await
    });
    let recorded = &attrs.iter().find(|(n, _)| n == "env").expect("env attr").1;
    let recorded: serde_json::Map<String, serde_json::Value> = serde_json::from_str(recorded).unwrap();
    for (name, value) in secrets {
        assert!(!recorded.contains_key(name), "{name} was recorded");
        assert!(
            !recorded.values().any(|v| v.as_str().is_some_and(|s| s.contains(value))),
            "{value} leaked"
        );
    }
    for (name, _, expect) in kept {
        assert_eq!(recorded[name], expect, "{name}");
    }
    assert!(recorded.contains_key("PATH"));
}
