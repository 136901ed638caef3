//! No path in a request reaches outside a run directory: crafted archives given to
//! `guild import`, run selectors that look like paths, and traversal paths on the
//! dashboard's HTTP port.

use std::path::Path;
use std::process::Command;

use guild_proto::v1 as pb;

use crate::compare::{train, train_env};
use crate::helpers::*;

/// Copies the runs archive `src` to `dest`, adding entries that try to write outside the
/// folder it is unpacked into: `extra` names which (`dotdot`, `absolute`, `symlink`).
fn craft_archive(src: &Path, dest: &Path, outside: &Path, extra: &[&str]) {
    let script = r#"
import io, sys, tarfile
src, dest, outside, extra = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
with tarfile.open(src) as a, tarfile.open(dest, "w:gz") as b:
    first = a.getnames()[0]
    for m in a.getmembers():
        b.addfile(m, a.extractfile(m) if m.isfile() else None)
    def add(name, data=b"escaped"):
        t = tarfile.TarInfo(name)
        t.size = len(data)
        b.addfile(t, io.BytesIO(data))
    if "dotdot" in extra:
        add("../dotdot.txt")
        add(first + "/../../dotdot2.txt")
    if "absolute" in extra:
        add(outside + "/absolute.txt")
    if "symlink" in extra:
        link = tarfile.TarInfo("link")
        link.type = tarfile.SYMTYPE
        link.linkname = outside
        b.addfile(link)
        add("link/through-link.txt")
"#;
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(src)
        .arg(dest)
        .arg(outside)
        .arg(extra.join(","))
        .status()
        .expect("python3");
    assert!(status.success(), "crafting {}", dest.display());
}

/// Every file under `dir` whose name says it escaped.
fn escaped_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else if ["dotdot.txt", "dotdot2.txt", "absolute.txt", "through-link.txt"]
                .iter()
                .any(|n| path.file_name().is_some_and(|f| f == *n))
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[test]
fn crafted_archives_cannot_write_outside_the_import() {
    let env = train_env();
    let id = train(&env, &["lr=0.1"]);
    let good = env.root.join("good.tar.gz");
    env.guild(&["export", &id, good.to_str().unwrap()]).ok();
    let outside = env.root.join("outside");
    std::fs::create_dir(&outside).unwrap();
    let runs_dir = env.project.join("runs");

    // A link out of the folder, then a file through it: refused as a whole, nothing kept.
    let evil = env.root.join("evil.tar.gz");
    craft_archive(&good, &evil, &outside, &["dotdot", "absolute", "symlink"]);
    let out = env.guild(&["import", evil.to_str().unwrap(), "--rename"]).exits(1);
    assert!(
        out.stderr.contains("leaves the archive's folder") && out.stderr.contains("nothing was imported"),
        "{out:?}"
    );
    assert_eq!(escaped_files(&env.root), Vec::<String>::new());
    assert!(
        std::fs::read_dir(&outside).unwrap().next().is_none(),
        "outside stays empty"
    );
    let left: Vec<String> = std::fs::read_dir(&runs_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        std::slice::from_ref(&id),
        "no half-imported run or unpack folder is left"
    );
    assert_eq!(env.runs_json().len(), 1);

    // `..` and absolute entries alone (no link) refuse the archive as well: an entry that
    // leaves its folder is never skipped quietly. Nothing lands anywhere.
    let sly = env.root.join("sly.tar.gz");
    craft_archive(&good, &sly, &outside, &["dotdot", "absolute"]);
    let out = env.guild(&["import", sly.to_str().unwrap(), "--rename"]).exits(1);
    assert!(out.stderr.contains("leaves the archive's folder"), "{out:?}");
    assert!(
        std::fs::read_dir(&outside).unwrap().next().is_none(),
        "outside stays empty"
    );
    assert_eq!(escaped_files(&env.root), Vec::<String>::new());
    assert!(
        !std::fs::read_dir(&runs_dir)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".import-")),
        "the unpack folder is removed"
    );
    assert_eq!(env.runs_json().len(), 1);
}

#[test]
fn run_selectors_are_paths_of_known_run_folders_only() {
    let env = train_env();
    let id = train(&env, &["lr=0.1"]);
    let run_dir = env.get_run(&id).run.unwrap().run_dir;
    // A run's own folder selects it; no other path means anything.
    let out = env.guild(&["runs", "info", &run_dir]).ok();
    assert!(out.stdout.contains(&id), "{out:?}");
    let guild_d = format!("{run_dir}/guild.d");
    let parent = format!("{run_dir}/..");
    for selector in [
        "../../../../etc/passwd",
        "/etc/passwd",
        "..",
        "runs/../runs",
        &guild_d,
        &parent,
    ] {
        for args in [
            vec!["runs", "info", selector],
            vec!["series", selector, "loss"],
            vec!["list-attrs", selector],
            vec!["label", selector, "x"],
        ] {
            let out = env.guild(&args).exits(1);
            assert!(
                out.stderr.contains("no run has the folder") || out.stderr.contains("no run matches"),
                "{args:?}: {out:?}"
            );
        }
    }
    env.block_on(async {
        let mut runs = env.runs_client().await;
        // A relative path means nothing to the daemon (its folder is not the caller's).
        let err = runs
            .get_run(pb::GetRunRequest {
                run: "../../etc/passwd".into(),
            })
            .await
            .expect_err("GetRun of a relative path");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        let err = runs
            .get_run(pb::GetRunRequest {
                run: "/etc/passwd".into(),
            })
            .await
            .expect_err("GetRun of a path that is no run folder");
        assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
    });
}

#[test]
fn dashboard_paths_stay_inside_the_bundle() {
    let env = Env::new();
    let (_, status) = env.start_guildd(&["--listen", "127.0.0.1:0"]);
    let addr = status.tcp_address;
    // The same server answers the bundle's own files.
    let index = http(&addr, "GET", "/", &[], b"");
    assert_eq!(index.status, 200, "{index:?}");
    assert!(index.body.contains("guild-app"), "{index:?}");
    for path in [
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/assets/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/..%5c..%5c..%5cetc%5cpasswd",
        "//etc/passwd",
    ] {
        let reply = http(&addr, "GET", path, &[], b"");
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
        assert!(!reply.body.contains("root:"), "{path}: {reply:?}");
    }
}
