//! Shell completion candidates that only the daemon knows: run ids, the project's models
//! and resources, a model's flags (`NAME=`) and profiles, `MODEL:OP` pairs, a run's
//! series keys and media tags. clap_complete's engine calls these while completing
//! (`COMPLETE=bash guild -- guild train ...`); each asks guildd over its socket within
//! [`TIMEOUT`] and never starts one. Without a daemon they offer nothing, and subcommands
//! and options still complete from the argument definitions.

use std::ffi::OsStr;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use clap_complete::CompletionCandidate;
use clap_complete::engine::{PathCompleter, ValueCompleter};
use guild_proto::v1 as pb;

use crate::project::{self, resolved_flags};
use crate::rpc::{self, Client, Target, rpc};

/// How long a completion may wait for the daemon: a shell waits for the answer.
const TIMEOUT: Duration = Duration::from_millis(500);

/// The statuses `--status` takes.
const STATUSES: [&str; 7] = ["pending", "queued", "running", "completed", "error", "terminated", "failed"];

/// The command line being completed, as the shell passed it after `--`.
struct Line {
    words: Vec<String>,
    /// The word being completed.
    current: usize,
}

impl Line {
    fn read() -> Line {
        let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
        let words: Vec<String> = match args.iter().position(|a| a == "--") {
            Some(i) => args[i + 1..].to_vec(),
            None => Vec::new(),
        };
        // Bash says which word; the other shells complete the last one.
        let current = std::env::var("_CLAP_COMPLETE_INDEX")
            .ok()
            .and_then(|i| i.parse().ok())
            .unwrap_or(words.len().saturating_sub(1));
        Line { words, current }
    }

    /// The words before the one being completed, less the binary's name.
    fn before(&self) -> &[String] {
        self.words
            .get(1..self.current.min(self.words.len()))
            .unwrap_or_default()
    }

    /// The value given to an option before the word being completed: `-C DIR`, `-CDIR`,
    /// `--socket PATH`, `--socket=PATH`.
    fn option(&self, name: &str) -> Option<String> {
        let words = self.before();
        let mut value = None;
        for (i, word) in words.iter().enumerate() {
            if word == name {
                value = words.get(i + 1).cloned();
            } else if let Some(rest) = word.strip_prefix(name) {
                if let Some(v) = rest.strip_prefix('=') {
                    value = Some(v.to_string());
                } else if !name.starts_with("--") && !rest.is_empty() {
                    value = Some(rest.to_string());
                }
            }
        }
        value
    }

    /// The first word after `subcommand` that is not an option: the RUN of `series RUN`.
    fn operand_after(&self, subcommand: &str) -> Option<String> {
        let words = self.before();
        let at = words.iter().position(|w| w == subcommand)?;
        words[at + 1..].iter().find(|w| !w.starts_with('-')).cloned()
    }

    /// The run named after `subcommand`, as a selector for the daemon.
    fn run_after(&self, subcommand: &str) -> anyhow::Result<String> {
        let run = self
            .operand_after(subcommand)
            .ok_or_else(|| anyhow::anyhow!("no run named"))?;
        Ok(crate::rpc::run_arg(&run))
    }
}

/// Runs `ask` against the daemon this command line names, if one answers in time.
fn with_daemon<T, F, Fut>(ask: F) -> Option<T>
where
    F: FnOnce(Client, PathBuf, Line) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let line = Line::read();
    let target = Target::resolve(
        line.option("--data-dir").map(PathBuf::from),
        line.option("--socket").map(PathBuf::from),
    )
    .ok()?;
    let project = project::dir(line.option("-C").map(PathBuf::from)).ok()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    runtime.block_on(async move {
        let answer = async {
            let client = rpc::try_connect(&target).await.ok()??;
            ask(client, project, line).await.ok()
        };
        tokio::time::timeout(TIMEOUT, answer).await.ok().flatten()
    })
}

/// The candidates among `values` that start with what was typed.
fn matching(current: &OsStr, values: impl IntoIterator<Item = (String, String)>) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    values
        .into_iter()
        .filter(|(value, _)| value.starts_with(current.as_ref()))
        .map(|(value, help)| {
            let help = (!help.is_empty()).then(|| help.into());
            CompletionCandidate::new(value).help(help)
        })
        .collect()
}

/// A run: its id (a word with a `/` is a run folder: paths then).
pub fn run(current: &OsStr) -> Vec<CompletionCandidate> {
    if current.to_string_lossy().contains('/') {
        return PathCompleter::dir().complete(current);
    }
    let runs = with_daemon(|client, _, _| async move {
        rpc(client.runs().list_runs(pb::ListRunsRequest::default()).await).map(|list| list.runs)
    });
    matching(
        current,
        runs.unwrap_or_default().into_iter().map(|r| {
            let help = format!("{}:{} {}", r.model, r.op, crate::format::status_name(&r));
            (r.id, help)
        }),
    )
}

/// The project's models and resources.
pub fn model(current: &OsStr) -> Vec<CompletionCandidate> {
    let project = with_daemon(|client, dir, _| async move { project::get(&client, &dir).await });
    matching(current, project.map(|p| models(&p)).unwrap_or_default())
}

fn models(project: &pb::Project) -> Vec<(String, String)> {
    project
        .models
        .iter()
        .chain(&project.resources)
        .map(|m| (m.name.clone(), m.description.clone()))
        .collect()
}

/// The flags of the model this command line names (else the default one) as `NAME=`,
/// each with the value a run would get.
fn flags(project: &pb::Project, line: &Line) -> Vec<(String, String)> {
    let named = line
        .before()
        .iter()
        .find_map(|w| {
            let name = w.split_once(':').map_or(w.as_str(), |(model, _)| model);
            project.models.iter().chain(&project.resources).find(|m| m.name == name)
        })
        .or(project.models.first());
    match named {
        Some(model) => resolved_flags(project, model, None)
            .into_iter()
            .map(|(name, value)| (format!("{name}="), value))
            .collect(),
        None => Vec::new(),
    }
}

/// `-F NAME=VALUE`: the model's flags.
pub fn flag(current: &OsStr) -> Vec<CompletionCandidate> {
    if current.to_string_lossy().contains('=') {
        return Vec::new();
    }
    let found = with_daemon(|client, dir, line| async move {
        let project = project::get(&client, &dir).await?;
        Ok(flags(&project, &line))
    });
    matching(current, found.unwrap_or_default())
}

/// `guild train [MODEL] [NAME=VALUE...]`: models (until one is named) and the flags.
pub fn model_or_flag(current: &OsStr) -> Vec<CompletionCandidate> {
    if current.to_string_lossy().contains('=') {
        return Vec::new();
    }
    let found = with_daemon(|client, dir, line| async move {
        let project = project::get(&client, &dir).await?;
        let mut found = Vec::new();
        let names = models(&project);
        if !line.before().iter().any(|w| names.iter().any(|(n, _)| n == w)) {
            found.extend(names);
        }
        found.extend(flags(&project, &line));
        Ok(found)
    });
    matching(current, found.unwrap_or_default())
}

/// `guild run [MODEL:]OP`: every model's ops as `MODEL:OP`, and the default model's bare.
pub fn op_spec(current: &OsStr) -> Vec<CompletionCandidate> {
    let project = with_daemon(|client, dir, _| async move { project::get(&client, &dir).await });
    let Some(project) = project else { return Vec::new() };
    let mut specs = Vec::new();
    if let Some(default) = project.models.first() {
        specs.extend(
            default
                .operations
                .iter()
                .map(|op| (op.name.clone(), op.command.clone())),
        );
    }
    for model in project.models.iter().chain(&project.resources) {
        specs.extend(
            model
                .operations
                .iter()
                .map(|op| (format!("{}:{}", model.name, op.name), op.command.clone())),
        );
    }
    matching(current, specs)
}

/// `-p PROFILE`: the project's profiles.
pub fn profile(current: &OsStr) -> Vec<CompletionCandidate> {
    let project = with_daemon(|client, dir, _| async move { project::get(&client, &dir).await });
    let names = project
        .map(|p| {
            p.profiles
                .into_iter()
                .map(|p| (p.name, String::new()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    matching(current, names)
}

/// `guild series RUN KEY`: the run's series keys.
pub fn series_key(current: &OsStr) -> Vec<CompletionCandidate> {
    let keys = with_daemon(|client, _, line| async move {
        let run = line.run_after("series")?;
        let list = rpc(client.series().list_series(pb::ListSeriesRequest { run }).await)?;
        Ok(list.keys)
    });
    matching(
        current,
        keys.unwrap_or_default()
            .into_iter()
            .map(|k| (k.key, format!("last {} at step {}", k.last, k.last_step))),
    )
}

/// `guild media RUN TAG`: the run's media tags, each with its kind and steps.
pub fn media_tag(current: &OsStr) -> Vec<CompletionCandidate> {
    let tags = with_daemon(|client, _, line| async move {
        let run = line.run_after("media")?;
        let list = rpc(client.media().list_media(pb::ListMediaRequest { run }).await)?;
        Ok(list.tags)
    });
    matching(
        current,
        tags.unwrap_or_default().into_iter().map(|t| {
            let help = format!(
                "{} {}, steps {}..{}",
                t.count,
                crate::commands::media::kind_name(t.kind()),
                t.min_step,
                t.max_step
            );
            (t.tag, help)
        }),
    )
}

/// `--status`: the statuses, after any already given (`error,fa` completes `failed`).
pub fn status(current: &OsStr) -> Vec<CompletionCandidate> {
    let text = current.to_string_lossy();
    let (given, last) = text.rsplit_once(',').map_or(("", text.as_ref()), |(g, l)| (g, l));
    let prefix = if given.is_empty() {
        String::new()
    } else {
        format!("{given},")
    };
    STATUSES
        .iter()
        .filter(|s| s.starts_with(last))
        .map(|s| CompletionCandidate::new(format!("{prefix}{s}")))
        .collect()
}
