//! Issue 13, case 8: archives made to hurt. A run whose `guild.d` links to another run,
//! world-writable modes, a gzip bomb, ids, labels and tags with terminal escapes: each is
//! refused (or normalised) with a clear error and nothing left behind, and what the CLI
//! prints from the daemon never carries a control character.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::compare::{train, train_env};
use crate::helpers::*;

/// Rewrites the runs archive `src` into `dest` as `spec` (JSON) says:
/// `{"link_guild_d": PATH}` makes the run's `guild.d` a link to PATH (its files dropped);
/// `{"modes": {"REL": MODE}}` sets entry modes; `{"attrs": {"NAME": VALUE}}` rewrites
/// run.db attrs; `{"zeros": [BYTES...]}` adds files of zeros (a bomb).
fn craft(src: &Path, dest: &Path, spec: serde_json::Value) {
    let script = r#"
import io, json, os, sqlite3, sys, tarfile, tempfile
src, dest, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
class Zeros(io.RawIOBase):
    def __init__(self, n): self.n = n
    def readable(self): return True
    def readinto(self, b):
        k = min(len(b), self.n); b[:k] = bytes(k); self.n -= k; return k
with tarfile.open(src) as a, tarfile.open(dest, "w:gz", compresslevel=9) as b:
    run = a.getnames()[0].split("/")[0]
    for m in a.getmembers():
        rel = m.name[len(run) + 1:]
        if "link_guild_d" in spec and (rel == "guild.d" or rel.startswith("guild.d/")):
            continue
        if rel in spec.get("modes", {}):
            m.mode = int(spec["modes"][rel], 8)
        data = a.extractfile(m) if m.isfile() else None
        if rel == "guild.d/run.db" and "attrs" in spec:
            with tempfile.TemporaryDirectory() as t:
                p = os.path.join(t, "run.db")
                open(p, "wb").write(data.read())
                db = sqlite3.connect(p)
                for k, v in spec["attrs"].items():
                    db.execute("DELETE FROM attr WHERE name = ?", (k,))
                    db.execute("INSERT INTO attr (name, value) VALUES (?, ?)", (k, v))
                db.commit(); db.close()
                raw = open(p, "rb").read()
            m.size = len(raw); data = io.BytesIO(raw)
        b.addfile(m, data)
    if "link_guild_d" in spec:
        l = tarfile.TarInfo(run + "/guild.d"); l.type = tarfile.SYMTYPE; l.linkname = spec["link_guild_d"]
        b.addfile(l)
    for i, n in enumerate(spec.get("zeros", [])):
        t = tarfile.TarInfo("%s/zeros-%d.bin" % (run, i)); t.size = n
        b.addfile(t, io.BufferedReader(Zeros(n), 1 << 20))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(src)
        .arg(dest)
        .arg(spec.to_string())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "crafting {}: {}",
        dest.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Names in the project's runroot (hidden ones too).
fn runroot(env: &Env) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(env.project.join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_linked_guild_d_is_refused_and_the_other_run_keeps_its_id() {
    let env = train_env();
    let id = train(&env, &["lr=0.1"]);
    let run_dir = env.project.join("runs").join(&id);
    let good = env.root.join("good.tar.gz");
    env.guild(&["export", &id, good.to_str().unwrap()]).ok();
    let evil = env.root.join("evil.tar.gz");
    craft(
        &good,
        &evil,
        serde_json::json!({"link_guild_d": run_dir.join("guild.d").to_str().unwrap()}),
    );
    let out = env.guild(&["import", evil.to_str().unwrap(), "--rename"]).exits(1);
    assert!(
        out.stderr.contains("guild.d")
            && out.stderr.contains("is a link")
            && out.stderr.contains("nothing was imported"),
        "{out:?}"
    );
    assert_eq!(runroot(&env), vec![id.clone()], "something was left behind");
    let attrs = env.block_on(async {
        let mut conn = open_run_db(&run_dir).await;
        pairs(&mut conn, "attr").await
    });
    assert!(
        attrs.contains(&("id".to_string(), id.clone())),
        "the other run's id changed: {attrs:?}"
    );

    // The same refusal for a folder (not an archive) whose guild.d is a link.
    let folder = env.root.join("folder").join("evil-run");
    std::fs::create_dir_all(&folder).unwrap();
    std::os::unix::fs::symlink(run_dir.join("guild.d"), folder.join("guild.d")).unwrap();
    let out = env.guild(&["import", folder.to_str().unwrap(), "--rename"]).exits(1);
    assert!(out.stderr.contains("is a link"), "{out:?}");
    assert_eq!(env.runs_json().len(), 1);
}

#[test]
fn imported_modes_are_normalised() {
    let env = train_env();
    let id = train(&env, &["lr=0.1"]);
    let good = env.root.join("good.tar.gz");
    env.guild(&["export", &id, good.to_str().unwrap()]).ok();
    let loose = env.root.join("loose.tar.gz");
    craft(
        &good,
        &loose,
        serde_json::json!({"modes": {"guild.d/run.db": "0777", "guild.d/Guild": "0666", "guild.d": "0777", "guild.d/sources/train.py": "4755"}}),
    );
    let out = env.guild(&["import", loose.to_str().unwrap(), "--rename"]).ok();
    let new_id = format!("{id}-2");
    assert!(out.stdout.contains(&new_id), "{out:?}");
    let dir = env.project.join("runs").join(&new_id);
    assert_eq!(mode(&dir.join("guild.d/run.db")), 0o755);
    assert_eq!(mode(&dir.join("guild.d/Guild")), 0o644);
    assert_eq!(mode(&dir.join("guild.d")), 0o755);
    let script = dir.join("guild.d/sources/train.py");
    assert_eq!(
        std::fs::metadata(&script).unwrap().permissions().mode() & 0o7777,
        0o755,
        "setuid kept"
    );
    // No file or folder anywhere in the run is writable by others.
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if !meta.file_type().is_symlink() {
                assert_eq!(
                    meta.permissions().mode() & 0o022,
                    0,
                    "{} is writable by others",
                    entry.path().display()
                );
            }
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
}

#[test]
fn a_gzip_bomb_is_refused_before_it_fills_the_disk() {
    let env = train_env();
    let id = train(&env, &["lr=0.1"]);
    let good = env.root.join("good.tar.gz");
    env.guild(&["export", &id, good.to_str().unwrap()]).ok();

    // One entry that says 1 GiB: refused before a byte of it is written.
    let bomb = env.root.join("bomb.tar.gz");
    craft(&good, &bomb, serde_json::json!({"zeros": [1u64 << 30]}));
    let size = std::fs::metadata(&bomb).unwrap().len();
    assert!(size < 2 << 20, "the bomb is {size} bytes");
    let out = env.guild(&["import", bomb.to_str().unwrap(), "--rename"]).exits(1);
    assert!(
        out.stderr.contains("unpacks to more than 2")
            && out.stderr.contains(" MiB")
            && out.stderr.contains("--max-size"),
        "{out:?}"
    );
    assert_eq!(runroot(&env), vec![id.clone()], "the unpack folder stayed");

    // Many entries under the limit each, over it together: stopped at the limit.
    let many = env.root.join("many.tar.gz");
    craft(&good, &many, serde_json::json!({"zeros": vec![40u64 << 20; 8]}));
    let out = env.guild(&["import", many.to_str().unwrap(), "--rename"]).exits(1);
    assert!(out.stderr.contains("unpacks to more than"), "{out:?}");
    assert_eq!(runroot(&env), vec![id.clone()]);

    // --max-size sets the bound; a normal archive under it imports.
    let out = env
        .guild(&["import", good.to_str().unwrap(), "--rename", "--max-size", "1K"])
        .exits(1);
    assert!(out.stderr.contains("unpacks to more than 1 KiB"), "{out:?}");
    env.guild(&["import", good.to_str().unwrap(), "--rename", "--max-size", "50M"])
        .ok();
    assert_eq!(env.runs_json().len(), 2);
}

#[test]
fn ids_labels_and_tags_with_control_characters_are_refused() {
    let env = train_env();
    let id = train(&env, &["lr=0.1"]);
    let good = env.root.join("good.tar.gz");
    env.guild(&["export", &id, good.to_str().unwrap()]).ok();
    for (what, attrs, expect) in [
        (
            "id",
            serde_json::json!({"id": "x\u{1b}[2J\nforged"}),
            "control characters",
        ),
        ("id", serde_json::json!({"id": "../escape"}), "cannot start with a dot"),
        (
            "id",
            serde_json::json!({"id": "a/b"}),
            "no spaces or control characters",
        ),
        (
            "label",
            serde_json::json!({"label": "ok\u{1b}[31mred"}),
            "control characters",
        ),
        ("label", serde_json::json!({"label": "two\nlines"}), "one line only"),
        ("tags", serde_json::json!({"tags": "[\"a\\u001b[2J\"]"}), "one word"),
        ("tags", serde_json::json!({"tags": "not json"}), "JSON list of tags"),
    ] {
        let crafted = env.root.join("crafted.tar.gz");
        let _ = std::fs::remove_file(&crafted);
        craft(&good, &crafted, serde_json::json!({"attrs": attrs}));
        let out = env.guild(&["import", crafted.to_str().unwrap(), "--rename"]).exits(1);
        assert!(
            out.stderr.contains(expect) && out.stderr.contains("nothing was imported"),
            "{what} {attrs}: {out:?}"
        );
        assert!(!out.stderr.contains('\u{1b}'), "the error echoes an escape: {out:?}");
        assert_eq!(runroot(&env), vec![id.clone()], "{what}: something was left");
    }
    // Labels from the CLI or the API are held to the same rule.
    let out = env.guild(&["label", &id, "bad\u{1b}[2Jlabel"]).exits(1);
    assert!(out.stderr.contains("control characters"), "{out:?}");
    let out = env.guild(&["train", "--label", "x\u{7}y"]).exits(1);
    assert!(out.stderr.contains("control characters"), "{out:?}");
}

#[test]
fn the_cli_escapes_what_it_prints_from_the_daemon() {
    let env = train_env();
    let id = train(&env, &["lr=0.1"]);
    let good = env.root.join("good.tar.gz");
    env.guild(&["export", &id, good.to_str().unwrap()]).ok();
    // A model and op name are the run's own (not checked like ids): a forged row and a
    // cleared screen if printed raw.
    let crafted = env.root.join("forged.tar.gz");
    craft(
        &good,
        &crafted,
        serde_json::json!({"attrs": {"model": "m\u{1b}[2J\n1  forged  row", "op": "train\r"}}),
    );
    let out = env.guild(&["import", crafted.to_str().unwrap(), "--rename"]).ok();
    let new_id = format!("{id}-2");
    assert!(out.stdout.contains(&new_id), "{out:?}");
    for args in [
        vec!["runs"],
        vec!["runs", "info", new_id.as_str()],
        vec!["list-attrs", new_id.as_str()],
        vec!["compare", "--table"],
    ] {
        let out = env.guild(&args).ok();
        assert!(
            !out.stdout.contains(['\u{1b}', '\r']),
            "{args:?} printed a control character: {out:?}"
        );
        assert!(
            !out.stdout.lines().any(|l| l.starts_with("1  forged")),
            "{args:?} printed a forged row: {out:?}"
        );
    }
    let out = env.guild(&["runs"]).ok();
    assert!(out.stdout.contains("m\\u{1b}[2J\\n1  forged  row"), "{out:?}");
}
