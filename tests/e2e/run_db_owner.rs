//! run.db has one writer: a live run's label and tags are written by the run's own task
//! (its one writer), a finished run's by a writer opened then; either way they land in
//! run.db next to what the run records, and the run's end is still recorded.

use guild_proto::v1::RunStatus;

use crate::helpers::*;

/// A run.db's attrs, read-only.
fn attrs(env: &Env, run_dir: &std::path::Path) -> Vec<(String, String)> {
    let path = run_dir.join("guild.d").join("run.db");
    env.block_on(async move {
        use sqlx::Connection;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .read_only(true);
        let mut conn = sqlx::sqlite::SqliteConnection::connect_with(&options)
            .await
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        sqlx::query_as::<_, (String, String)>("SELECT name, value FROM attr ORDER BY rowid")
            .fetch_all(&mut conn)
            .await
            .expect("SELECT from attr")
    })
}

fn attr(attrs: &[(String, String)], name: &str) -> Option<String> {
    attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

#[test]
fn a_live_runs_label_and_tags_go_through_its_writer() {
    let env = Env::new();
    env.write("Guild", "[model \"waiter\"]\ntrain = waiter\n");
    env.write("waiter.py", WAITER_PY);
    let id = env.guild(&["train", "--background"]).ok().stdout.trim().to_string();
    env.wait_output(&id, |line| line.starts_with("waiting for"));
    let run_dir = std::path::PathBuf::from(env.get_run(&id).run.unwrap().run_dir);

    // While it runs (its task holds run.db's writer).
    env.guild(&["label", &id, "while", "running"]).ok();
    env.guild(&["tag", &id, "+live", "+first"]).ok();
    let during = attrs(&env, &run_dir);
    assert_eq!(attr(&during, "label").as_deref(), Some("while running"), "{during:?}");
    assert_eq!(
        attr(&during, "tags").as_deref(),
        Some(r#"["first","live"]"#),
        "{during:?}"
    );
    assert_eq!(attr(&during, "status"), None, "not ended yet: {during:?}");

    // It ends as usual, its attrs kept alongside its end.
    std::fs::write(env.project.join("go"), "").unwrap();
    env.wait_run(&id, &[RunStatus::Completed]);
    env.wait_idle();
    let after = attrs(&env, &run_dir);
    assert_eq!(attr(&after, "status").as_deref(), Some("completed"), "{after:?}");
    assert_eq!(attr(&after, "label").as_deref(), Some("while running"));

    // Finished: written by a writer of its own.
    env.guild(&["label", &id, "after"]).ok();
    env.guild(&["tag", &id, "-live"]).ok();
    let finished = attrs(&env, &run_dir);
    assert_eq!(attr(&finished, "label").as_deref(), Some("after"));
    assert_eq!(attr(&finished, "tags").as_deref(), Some(r#"["first"]"#));
    let json = env.runs_json();
    assert_eq!(json[0]["label"], "after");
    assert_eq!(json[0]["tags"], serde_json::json!(["first"]));
}
