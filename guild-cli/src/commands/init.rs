//! `guild init`: a starter Guild file for a folder of Python scripts. Each script that
//! reads `--flags` with argparse becomes a model whose train op runs it, with the flags
//! and defaults the script declares. The scripts are read, never run: Python's own
//! parser (`ast`) reads them, so a call spread over lines or a default named by a
//! module-level constant reads as Python reads it.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, bail};

/// Reads the scripts named on its command line and prints, as JSON, each one's
/// argparse options: name, default, whether it is a switch, required, help.
const READ_SCRIPTS: &str = r#"
import ast, json, sys

def literal(node, consts):
    if isinstance(node, ast.Name) and node.id in consts:
        return True, consts[node.id]
    try:
        return True, ast.literal_eval(node)
    except Exception:
        return False, None

out = []
for path in sys.argv[1:]:
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
    except Exception as e:
        out.append({"path": path, "error": str(e).splitlines()[0] if str(e) else type(e).__name__})
        continue
    consts = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            ok, value = literal(node.value, {})
            if ok:
                consts[node.targets[0].id] = value
    description = ast.get_docstring(tree) or ""
    flags, parser = [], False
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        if node.func.attr == "ArgumentParser":
            parser = True
            if "description" in kw:
                ok, value = literal(kw["description"], consts)
                if ok and isinstance(value, str):
                    description = value
            continue
        if node.func.attr != "add_argument":
            continue
        names = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        option = next((n for n in names if n.startswith("--")), None)
        if option is None:
            continue
        action = None
        if "action" in kw:
            ok, value = literal(kw["action"], consts)
            action = value if ok else "?"
        has_default, default = (False, None)
        if "default" in kw:
            has_default, default = literal(kw["default"], consts)
        required = False
        if "required" in kw:
            ok, value = literal(kw["required"], consts)
            required = bool(value) if ok else False
        help_text = ""
        if "help" in kw:
            ok, value = literal(kw["help"], consts)
            help_text = value if ok and isinstance(value, str) else ""
        flags.append({
            "name": option[2:],
            "switch": action in ("store_true", "store_false", "store_const", "count", "append_const", "help", "version"),
            "has_default": has_default and default is not None,
            "default": default if isinstance(default, (str, int, float, bool)) else None,
            "list": isinstance(default, (list, tuple)),
            "required": required,
            "help": help_text,
        })
    if parser or flags:
        out.append({"path": path, "description": description.strip().splitlines()[0] if description.strip() else "", "flags": flags})
print(json.dumps(out))
"#;

/// What the reader found in one script.
struct Script {
    path: String,
    description: String,
    flags: Vec<Flag>,
    error: Option<String>,
}

struct Flag {
    name: String,
    switch: bool,
    default: Option<String>,
    list: bool,
    required: bool,
    help: String,
}

impl Script {
    fn from_json(v: &serde_json::Value) -> Script {
        let text =
            |v: &serde_json::Value, key: &str| v.get(key).and_then(|x| x.as_str()).unwrap_or_default().to_string();
        let flag = |f: &serde_json::Value| Flag {
            name: text(f, "name"),
            switch: f.get("switch").and_then(|x| x.as_bool()).unwrap_or(false),
            default: f
                .get("has_default")
                .and_then(|x| x.as_bool())
                .filter(|&has| has)
                .and_then(|_| f.get("default"))
                .and_then(value_text),
            list: f.get("list").and_then(|x| x.as_bool()).unwrap_or(false),
            required: f.get("required").and_then(|x| x.as_bool()).unwrap_or(false),
            help: text(f, "help"),
        };
        Script {
            path: text(v, "path"),
            description: text(v, "description"),
            flags: v
                .get("flags")
                .and_then(|x| x.as_array())
                .map(|a| a.iter().map(flag).collect())
                .unwrap_or_default(),
            error: v.get("error").and_then(|x| x.as_str()).map(str::to_string),
        }
    }
}

pub fn run(dir: &Path, name: Option<String>, force: bool) -> anyhow::Result<u8> {
    let guild_file = dir.join("Guild");
    if guild_file.exists() && !force {
        bail!(
            "{} exists already (guild init --force replaces it)",
            guild_file.display()
        );
    }
    let mut scripts: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "py"))
        .filter(|p| {
            p.file_stem()
                .is_some_and(|s| !s.to_string_lossy().starts_with(['_', '.']))
        })
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    scripts.sort();
    if scripts.is_empty() {
        bail!("no Python scripts in {} to make models of", dir.display());
    }
    let python = std::env::var("GUILD_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = std::process::Command::new(&python)
        .arg("-c")
        .arg(READ_SCRIPTS)
        .args(&scripts)
        .output()
        .with_context(|| format!("guild init reads scripts with {python} (set GUILD_PYTHON to another)"))?;
    if !output.status.success() {
        bail!(
            "{python} could not read the scripts: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let found: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("reading what the scripts declare")?;
    let mut read: Vec<Script> = found
        .as_array()
        .map(|a| a.iter().map(Script::from_json).collect())
        .unwrap_or_default();
    for script in read.iter().filter(|s| s.error.is_some()) {
        eprintln!(
            "guild: skipped {}: {}",
            script.path,
            script.error.as_deref().unwrap_or("")
        );
    }
    read.retain(|s| s.error.is_none());
    // train.py first: the first model is the default.
    read.sort_by_key(|s| module_name(&s.path) != "train");
    if read.is_empty() {
        bail!(
            "no script in {} reads --flags with argparse: write the Guild file by hand (see the README)",
            dir.display()
        );
    }
    let project_name = name.unwrap_or_else(|| {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "project".into())
    });
    let text = guild_file_text(&project_name, &read);
    std::fs::write(&guild_file, &text).with_context(|| format!("cannot write {}", guild_file.display()))?;
    let models: Vec<String> = read.iter().map(|s| module_name(&s.path)).collect();
    outln!(
        "Wrote {} with {} model{}: {}",
        guild_file.display(),
        models.len(),
        if models.len() == 1 { "" } else { "s" },
        models.join(", ")
    )?;
    outln!("Try: guild list-models, guild train --help, guild train")?;
    Ok(0)
}

fn module_name(path: &str) -> String {
    Path::new(path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Guild's flag-name rule: a letter or `_`, then letters, digits, `_`, `-`, `.`.
fn valid_flag_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn value_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) if !s.contains('\n') => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
        _ => None,
    }
}

fn guild_file_text(project_name: &str, scripts: &[Script]) -> String {
    let mut out = String::new();
    out.push_str("#-*-conf-*-\n");
    out.push_str("# Written by `guild init` from the scripts in this folder. Each model runs a\n");
    out.push_str("# script as `python3 -um MODULE --flag value ...`; edit freely.\n\n");
    let _ = writeln!(out, "[project]\n\n  name = {project_name}\n  sources = *.py\n");
    for script in scripts {
        let module = module_name(&script.path);
        let _ = writeln!(out, "[model \"{module}\"]\n");
        if !script.description.is_empty() {
            let _ = writeln!(out, "  description = {}", script.description);
        }
        let _ = writeln!(out, "  train = {module}\n");
        let mut lines = Vec::new();
        for flag in &script.flags {
            let why = if !valid_flag_name(&flag.name) {
                Some("its name is not a Guild flag name")
            } else if flag.switch {
                Some("a switch (it takes no value; Guild passes --NAME VALUE)")
            } else if flag.list {
                Some("its default is a list")
            } else {
                None
            };
            if let Some(why) = why {
                lines.push(format!("  # --{}: left out, {why}", flag.name));
                continue;
            }
            if !flag.help.is_empty() {
                lines.push(format!("  # {}", flag.help.lines().next().unwrap_or("")));
            }
            match &flag.default {
                Some(value) => lines.push(format!("  {} = {value}", flag.name)),
                None if flag.required => {
                    lines.push(format!(
                        "  # required by the script: set it here or with {}=VALUE",
                        flag.name
                    ));
                    lines.push(format!("  {} =", flag.name));
                }
                None => lines.push(format!("  # --{}: no default in the script", flag.name)),
            }
        }
        if !lines.is_empty() {
            let _ = writeln!(out, "[flags \"{module}\"]\n");
            for line in lines {
                let _ = writeln!(out, "{line}");
            }
            out.push('\n');
        }
    }
    out
}
