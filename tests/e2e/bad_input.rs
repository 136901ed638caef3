//! Bad requests get a clear error naming the field, and the daemon stays up: malformed
//! gRPC arguments, oversized messages, a run folder that cannot be created.

use guild_proto::v1::{
    self as pb, output_service_client::OutputServiceClient, project_service_client::ProjectServiceClient,
    series_service_client::SeriesServiceClient,
};
use tonic::Code;

use crate::helpers::*;

fn expect_invalid(result: Result<impl std::fmt::Debug, tonic::Status>, field: &str) {
    let status = result.expect_err("the request should be refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains(field),
        "message does not name {field}: {}",
        status.message()
    );
}

#[test]
fn every_method_names_the_bad_field() {
    let env = Env::new();
    env.guild(&["daemon", "start", "--listen", "none"]).ok();
    let project = env.project.to_string_lossy().into_owned();
    env.block_on(async {
        let channel = env.channel().await;
        let mut runs = pb::run_service_client::RunServiceClient::new(channel.clone());
        let start = |project_dir: &str, op: &str| pb::StartRunRequest {
            project_dir: project_dir.into(),
            op: op.into(),
            ..Default::default()
        };
        expect_invalid(runs.start_run(start("", "train")).await, "project_dir");
        expect_invalid(runs.start_run(start("relative/dir", "train")).await, "project_dir");
        expect_invalid(runs.start_run(start(&project, "")).await, "op");
        let mut unnamed = start(&project, "train");
        unnamed.flags.push(pb::Flag {
            name: " ".into(),
            value: "1".into(),
        });
        expect_invalid(runs.start_run(unnamed).await, "flags");
        let mut long_label = start(&project, "train");
        long_label.label = "x".repeat(5000);
        expect_invalid(runs.start_run(long_label).await, "label");
        expect_invalid(runs.get_run(pb::GetRunRequest { run: "".into() }).await, "run");
        expect_invalid(runs.stop_run(pb::StopRunRequest { run: " ".into() }).await, "run");
        expect_invalid(runs.delete_run(pb::DeleteRunRequest { run: "".into() }).await, "run");
        let mut projects = ProjectServiceClient::new(channel.clone());
        expect_invalid(
            projects
                .get_project(pb::GetProjectRequest { project_dir: "".into() })
                .await,
            "project_dir",
        );
        expect_invalid(
            projects
                .get_project(pb::GetProjectRequest {
                    project_dir: "x".into(),
                })
                .await,
            "project_dir",
        );
        let mut output = OutputServiceClient::new(channel.clone());
        expect_invalid(
            output
                .read_output(pb::ReadOutputRequest {
                    run: "".into(),
                    from_seq: 0,
                    follow: false,
                })
                .await,
            "run",
        );
        expect_invalid(
            output
                .read_output(pb::ReadOutputRequest {
                    run: "1".into(),
                    from_seq: -1,
                    follow: false,
                })
                .await,
            "from_seq",
        );
        let mut series = SeriesServiceClient::new(channel.clone());
        expect_invalid(
            series.list_series(pb::ListSeriesRequest { run: "".into() }).await,
            "run",
        );
        expect_invalid(
            series
                .get_series(pb::GetSeriesRequest {
                    run: "1".into(),
                    keys: vec![],
                    ..Default::default()
                })
                .await,
            "keys",
        );
        expect_invalid(
            series
                .get_series(pb::GetSeriesRequest {
                    run: "1".into(),
                    keys: vec!["x".into()],
                    buckets: 10_000_000,
                    ..Default::default()
                })
                .await,
            "buckets",
        );
        expect_invalid(
            series
                .get_series(pb::GetSeriesRequest {
                    run: "1".into(),
                    keys: vec!["x".into()],
                    min: Some(5.0),
                    max: Some(1.0),
                    ..Default::default()
                })
                .await,
            "min",
        );
        expect_invalid(
            series
                .watch_series(pb::WatchSeriesRequest {
                    run: "1".into(),
                    keys: vec![],
                    after_cursor: -3,
                })
                .await,
            "after_cursor",
        );
        // A message over the size limit is refused whole.
        let mut huge = start(&project, "train");
        huge.flags.push(pb::Flag {
            name: "blob".into(),
            value: "x".repeat(8 << 20),
        });
        let status = runs
            .start_run(huge)
            .await
            .expect_err("an 8 MB request should be refused");
        assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    });
    // Still up, still answering.
    env.guild(&["daemon", "status"]).ok();
}

#[test]
fn a_run_folder_that_cannot_be_created_fails_clearly() {
    let env = Env::new();
    env.write("Guild", "[model \"m\"]\ntrain = hello\n");
    env.write("hello.py", "print('hello')\n");
    // `runs` is a file: no run folder can be made under it.
    env.write("runs", "not a folder\n");
    let out = env.guild(&["train"]);
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    let runs_path = env.project.join("runs");
    assert!(
        out.stderr.contains("cannot create run folder") && out.stderr.contains(&*runs_path.to_string_lossy()),
        "{out:?}"
    );
    // The daemon is up and the next good run works.
    std::fs::remove_file(&runs_path).unwrap();
    let ok = env.guild(&["train"]).ok();
    assert_eq!(ok.stdout, "hello\n");
}

/// Unmounts the tmpfs when the test ends, however it ends.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_the_run_clearly_and_leaves_nothing_behind() {
    let env = Env::new();
    let disk = env.root.join("disk");
    std::fs::create_dir(&disk).unwrap();
    let mounted = std::process::Command::new("mount")
        // Room for a whole run once the filler is gone (run.db alone is 136 KiB): guildd
        // waits for room to record a run's end, so a disk too small for one never ends it.
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&disk)
        .output();
    if !mounted.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root): {mounted:?}");
        return;
    }
    let _mount = Mount(disk.clone());
    let project = disk.join("p");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(project.join("Guild"), "[model \"m\"]\ntrain = hello\n").unwrap();
    std::fs::write(project.join("hello.py"), "print('hello')\n").unwrap();
    // Fill the disk.
    let filler = disk.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 2 * 1024 * 1024]);
    // `guild train` in the project on the small disk (Env::guild names its own project).
    let train = || {
        std::process::Command::new(guild_exe())
            .env("GUILD_DATA_DIR", &env.data_dir)
            .env("GUILD_SOCKET", &env.socket)
            .env_remove("GUILD_LISTEN")
            .current_dir(&project)
            .arg("train")
            .output()
            .unwrap()
    };
    let out = train();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stderr.contains("No space left on device") || stderr.contains("is the disk full?"),
        "{stderr}"
    );
    // Nothing half-made is left, and the daemon still works once there is room.
    let runs = project.join("runs");
    let leftovers: Vec<_> = std::fs::read_dir(&runs)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "a half-made run folder was left: {leftovers:?}");
    assert_eq!(env.guild(&["runs", "--json"]).ok().stdout.trim(), "[]");
    std::fs::remove_file(&filler).unwrap();
    let ok = train();
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "hello\n");
}
