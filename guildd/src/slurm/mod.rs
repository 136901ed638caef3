//! Runs on a Slurm cluster (`guild train --slurm`). guildd makes the run folder as for a
//! local run, writes a batch script into `guild.d/` and submits it with `sbatch
//! --parsable`; the job runs the same supervisor a local run has (`guildd supervise`),
//! which writes `stdout.log`, `stderr.log`, `exit` and the node's stats (`node`) into the
//! run folder, on a filesystem the cluster's nodes and guildd's machine share. guildd
//! follows the folder by polling (writes made on another node never reach inotify), and
//! Slurm's view of the job (`squeue`, one call for every job followed) says whether it
//! is pending (and why), running, or ended without an exit file (`scontrol show job`:
//! cancelled, time limit, node failure, out of memory).
//!
//! Slurm's own commands are the interface: they are what every site has, and they work
//! with accounting off (`sacct` is not used).

pub mod node;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// The batch script guildd writes into `guild.d/` and submits.
pub const SCRIPT_FILE: &str = "slurm.sh";
/// What the batch script itself prints (Slurm's `--output`), before it becomes the
/// supervisor: a job that could not start says why here.
pub const SLURM_OUTPUT_FILE: &str = "slurm.out";

/// How often Slurm is asked about the jobs guildd follows (one `squeue` for all of
/// them) while one of them waits: its pending reason, and its start (seen sooner
/// through its supervisor's first line in `node.jsonl`).
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// ... and while every one runs: a running job's end is seen through its `exit` file;
/// this is for jobs that end without one (a node that fails). Each squeue costs
/// a few ms of CPU.
pub const POLL_INTERVAL_RUNNING: Duration = Duration::from_secs(10);
/// How long a Slurm command may take before guildd gives up on it (a controller that
/// does not answer makes them retry for a long while).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// sbatch gets longer: a submission that times out may still have been accepted.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `guild status` reuses what sinfo said.
const SINFO_FRESH: Duration = Duration::from_secs(10);

/// How a run is submitted: arguments for sbatch and GPUs per job.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlurmSpec {
    /// The command line's `--sbatch` arguments (after the model's `sbatch = ...`).
    pub sbatch: Vec<String>,
    /// `--gpus N`: sbatch's `--gres=gpu:N` (0: none asked).
    pub gpus: u32,
}

/// What Slurm says of a job.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobInfo {
    /// Slurm's state (`PENDING`, `RUNNING`, `COMPLETED`, `TIMEOUT`, ...); `UNKNOWN` when
    /// the controller no longer knows the job (it ended longer ago than its MinJobAge).
    pub state: String,
    /// Why it is pending (or how it ended): `Resources`, `Priority`, `None`, ...
    pub reason: String,
    /// The node(s) it runs on.
    pub nodes: String,
    /// `ExitCode=a:b` (the batch script's exit code and the signal that ended it), when
    /// scontrol said.
    pub exit_code: String,
}

/// The state Slurm gives a job it no longer knows.
pub const UNKNOWN: &str = "UNKNOWN";

impl JobInfo {
    fn unknown() -> JobInfo {
        JobInfo {
            state: UNKNOWN.into(),
            ..JobInfo::default()
        }
    }

    /// Waiting to run (`PENDING`, or held after a requeue).
    pub fn is_pending(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "SPECIAL_EXIT" | "RESV_DEL_HOLD"
        )
    }

    /// Its processes may still run (or be starting, or be cleaned up).
    pub fn is_running(&self) -> bool {
        matches!(
            self.state.as_str(),
            "RUNNING" | "CONFIGURING" | "COMPLETING" | "SUSPENDED" | "STOPPED" | "SIGNALING" | "STAGE_OUT" | "RESIZING"
        )
    }

    /// Over: Slurm will not run it again (or no longer knows it).
    pub fn is_final(&self) -> bool {
        !self.is_pending() && !self.is_running()
    }

    /// Ended by Slurm rather than by the op: the run's status comes from this state.
    pub fn ended_by_slurm(&self) -> bool {
        matches!(
            self.state.as_str(),
            "CANCELLED"
                | "TIMEOUT"
                | "NODE_FAIL"
                | "OUT_OF_MEMORY"
                | "PREEMPTED"
                | "BOOT_FAIL"
                | "DEADLINE"
                | "REVOKED"
        )
    }

    /// What the state means, for the run's reason.
    pub fn describe(&self) -> &'static str {
        match self.state.as_str() {
            "CANCELLED" => "cancelled (scancel)",
            "TIMEOUT" => "its time limit was reached",
            "NODE_FAIL" => "its node failed",
            "OUT_OF_MEMORY" => "it ran out of memory",
            "PREEMPTED" => "it was preempted",
            "BOOT_FAIL" => "its node failed to boot",
            "DEADLINE" => "its deadline passed",
            "REVOKED" => "it was revoked",
            "COMPLETED" => "completed",
            "FAILED" => "its batch script failed",
            UNKNOWN => "the controller no longer knows it",
            _ => "ended",
        }
    }
}

/// Parses sbatch --parsable's answer: `JOBID` or `JOBID;CLUSTER`.
pub fn parse_job_id(out: &str) -> Option<String> {
    let line = out.lines().map(str::trim).find(|l| !l.is_empty())?;
    let id = line.split(';').next()?.trim();
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then(|| id.to_string())
}

/// Parses `squeue -h -o '%i|%T|%r|%N'` lines: job id -> what Slurm says.
fn parse_squeue(out: &str) -> HashMap<String, JobInfo> {
    out.lines()
        .filter_map(|line| {
            let mut parts = line.trim().splitn(4, '|');
            let id = parts.next()?.trim().to_string();
            let state = parts.next()?.trim().to_string();
            if id.is_empty() || state.is_empty() {
                return None;
            }
            Some((
                id,
                JobInfo {
                    state,
                    reason: parts.next().unwrap_or("").trim().to_string(),
                    nodes: parts.next().unwrap_or("").trim().to_string(),
                    exit_code: String::new(),
                },
            ))
        })
        .collect()
}

/// Parses `scontrol -o show job ID` (one line of `Key=Value` words).
fn parse_scontrol(out: &str) -> Option<JobInfo> {
    let mut info = JobInfo::default();
    for word in out.split_whitespace() {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        match key {
            "JobState" => info.state = value.to_string(),
            "Reason" => info.reason = value.to_string(),
            "NodeList" if value != "(null)" => info.nodes = value.to_string(),
            "ExitCode" => info.exit_code = value.to_string(),
            _ => {}
        }
    }
    (!info.state.is_empty()).then_some(info)
}

/// A word as sh reads it back: in single quotes, `'` as `'\''`.
pub fn sh_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// What the batch script runs.
pub struct Script<'a> {
    pub run_id: &'a str,
    pub supervisor_exe: &'a Path,
    pub guild_d: &'a Path,
    pub argv: &'a [String],
    pub cwd: &'a Path,
    /// Guild's own variables (RUNDIR, GUILD_RUN_ID, ...): exported by the script itself,
    /// so they reach the job whatever `--export` says.
    pub guild_env: &'a [(String, String)],
    /// Seconds between the node's stats samples (0: none).
    pub stats_interval: f64,
}

impl Script<'_> {
    pub fn text(&self) -> String {
        let guild_d = self.guild_d.to_string_lossy();
        let mut out = String::from("#!/bin/sh\n");
        out.push_str(&format!(
            "# Guild run {}, submitted to Slurm by guildd with `sbatch --parsable`.\n\
             # The job runs the run's supervisor, which writes stdout.log, stderr.log, node\n\
             # and exit into this folder; guildd follows them from its own machine.\n",
            self.run_id.replace('\n', " ")
        ));
        out.push_str(&format!("cd {} || exit 1\n", sh_quote(&self.cwd.to_string_lossy())));
        for (name, value) in self.guild_env {
            out.push_str(&format!("export {}={}\n", name, sh_quote(value)));
        }
        out.push_str(&format!(
            "exec {} supervise --node-stats {} {}",
            sh_quote(&self.supervisor_exe.to_string_lossy()),
            self.stats_interval,
            sh_quote(&guild_d)
        ));
        for arg in self.argv {
            out.push(' ');
            out.push_str(&sh_quote(arg));
        }
        out.push_str(&format!(
            " >>{} 2>>{}\n",
            sh_quote(&format!("{guild_d}/stdout.log")),
            sh_quote(&format!("{guild_d}/stderr.log"))
        ));
        out
    }
}

/// sbatch's arguments for a run: its name and output file, `--gres` for GPUs, then the
/// model's and the command line's own (later ones win, as sbatch reads them).
pub fn sbatch_args(run_id: &str, guild_d: &Path, model: &[String], spec: &SlurmSpec) -> Vec<String> {
    let mut args = vec![
        "--parsable".to_string(),
        format!("--job-name=guild-{run_id}"),
        // sbatch reads `%` in the name as a pattern (`%j`): a literal one is `%%`.
        format!("--output={}", guild_d.join(SLURM_OUTPUT_FILE).display().to_string().replace('%', "%%")),
    ];
    if spec.gpus > 0 {
        args.push(format!("--gres=gpu:{}", spec.gpus));
    }
    args.extend(model.iter().cloned());
    args.extend(spec.sbatch.iter().cloned());
    args
}

/// Runs a Slurm command; its stdout, or a message with what it said on stderr.
async fn run(
    program: &str,
    args: &[String],
    env: Option<&BTreeMap<String, String>>,
    cwd: Option<&Path>,
    timeout: Duration,
) -> Result<String, String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(env) = env {
        cmd.env_clear().envs(env);
    }
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    let child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{program} is not on guildd's PATH (is Slurm installed here?)"),
        _ => format!("cannot run {program}: {e}"),
    })?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return Err(format!("{program} failed: {e}")),
        Err(_) => return Err(format!("{program} did not answer within {} s", timeout.as_secs())),
    };
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let said = String::from_utf8_lossy(&output.stderr);
    let said = said.trim();
    let said: String = said.chars().take(500).collect();
    Err(format!(
        "{program} failed ({}){}",
        output.status,
        if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        }
    ))
}

/// Writes the batch script and submits it; the job id. `env` is the run's whole
/// environment (sbatch passes it on to the job); `cwd` the op's working folder.
pub async fn submit(script: &Script<'_>, args: &[String], env: &BTreeMap<String, String>) -> Result<String, String> {
    let path = script.guild_d.join(SCRIPT_FILE);
    std::fs::write(&path, script.text()).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut all = args.to_vec();
    all.push(path.to_string_lossy().into_owned());
    let out = run("sbatch", &all, Some(env), Some(script.cwd), SUBMIT_TIMEOUT).await?;
    parse_job_id(&out).ok_or_else(|| format!("sbatch answered no job id: {:?}", out.trim()))
}

/// The job guildd submitted for this run, found by its name (`guild-RUN_ID`), for a run
/// whose job id was never recorded (guildd died between sbatch's answer and the record).
pub async fn job_named(run_id: &str) -> Option<String> {
    let args = ["-h", "-t", "all", "-o", "%i"].map(String::from).into_iter().chain([format!("--name=guild-{run_id}")]);
    let out = run("squeue", &args.collect::<Vec<_>>(), None, None, COMMAND_TIMEOUT).await.ok()?;
    out.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string)
}

/// `scancel JOB`.
pub async fn cancel(job: &str) -> Result<(), String> {
    run("scancel", &[job.to_string()], None, None, COMMAND_TIMEOUT)
        .await
        .map(|_| ())
}

/// `scontrol -o show job JOB`: what the controller knows of the job now; `UNKNOWN` when
/// it no longer knows it.
pub async fn show_job(job: &str) -> Result<JobInfo, String> {
    let args = ["-o".to_string(), "show".to_string(), "job".to_string(), job.to_string()];
    match run("scontrol", &args, None, None, COMMAND_TIMEOUT).await {
        Ok(out) => parse_scontrol(&out).ok_or_else(|| format!("scontrol said nothing of job {job}")),
        Err(err) if err.contains("Invalid job id") => Ok(JobInfo::unknown()),
        Err(err) => Err(err),
    }
}

/// `squeue` for the given jobs, in any state the controller still holds: id -> info.
/// Jobs it does not list are unknown to it.
async fn query(jobs: &[String]) -> Result<HashMap<String, JobInfo>, String> {
    let args = [
        "-h".to_string(),
        "-t".to_string(),
        "all".to_string(),
        "-j".to_string(),
        jobs.join(","),
        "-o".to_string(),
        "%i|%T|%r|%N".to_string(),
    ];
    match run("squeue", &args, None, None, COMMAND_TIMEOUT).await {
        Ok(out) => Ok(parse_squeue(&out)),
        // One job it no longer knows makes squeue fail for all: ask one by one.
        Err(err) if err.contains("Invalid job id") => {
            let mut found = HashMap::new();
            for job in jobs {
                let info = show_job(job).await?;
                found.insert(job.clone(), info);
            }
            Ok(found)
        }
        Err(err) => Err(err),
    }
}

/// What `guild status` shows of Slurm.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub found: bool,
    pub reachable: bool,
    pub detail: String,
    pub runs: u32,
}

/// The jobs followed, and whether the poller runs.
#[derive(Default)]
struct Jobs {
    followed: HashMap<String, watch::Sender<Option<JobInfo>>>,
    polling: bool,
}

/// The daemon's one link to Slurm: the jobs it follows (polled together), and what
/// sinfo said last.
#[derive(Clone)]
pub struct Slurm {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: Mutex<Jobs>,
    wake: Notify,
    sinfo: Mutex<Option<(Instant, Report)>>,
    /// A sinfo is on its way.
    asking: std::sync::atomic::AtomicBool,
}

impl Default for Slurm {
    fn default() -> Self {
        Slurm::new()
    }
}

impl Slurm {
    /// The poller starts with the first job followed (within the tokio runtime).
    pub fn new() -> Slurm {
        Slurm {
            inner: Arc::new(Inner {
                jobs: Mutex::new(Jobs::default()),
                wake: Notify::new(),
                sinfo: Mutex::new(None),
                asking: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Follows a job: the receiver gets what Slurm says of it at each poll (None until
    /// the first).
    pub fn follow(&self, job: &str) -> watch::Receiver<Option<JobInfo>> {
        let mut jobs = self.inner.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let rx = jobs
            .followed
            .entry(job.to_string())
            .or_insert_with(|| watch::channel(None).0)
            .subscribe();
        let start = !jobs.polling;
        jobs.polling = true;
        drop(jobs);
        if start {
            let inner = Arc::downgrade(&self.inner);
            tokio::spawn(poll_loop(inner));
        }
        self.inner.wake.notify_one();
        rx
    }

    /// Stops following a job.
    pub fn forget(&self, job: &str) {
        let mut jobs = self.inner.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.followed.remove(job);
    }

    /// Asks Slurm at once (after a cancel, say) rather than at the next poll.
    pub fn poll_now(&self) {
        self.inner.wake.notify_one();
    }

    fn followed(&self) -> usize {
        self.inner.jobs.lock().unwrap_or_else(|e| e.into_inner()).followed.len()
    }

    /// How many runs are followed on Slurm, and what sinfo said. sinfo is asked at most
    /// every 10 s, in the background: the answer is the last one (the first call waits
    /// for one, up to 3 s), so GetStatus never waits on a controller that hangs.
    pub async fn report(&self) -> Report {
        let (known, stale) = {
            let cached = self.inner.sinfo.lock().unwrap_or_else(|e| e.into_inner());
            match &*cached {
                Some((at, report)) => (Some(report.clone()), at.elapsed() >= SINFO_FRESH),
                None => (None, true),
            }
        };
        if stale && !self.inner.asking.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let inner = self.inner.clone();
            let asked = tokio::spawn(async move {
                let report = ask_sinfo().await;
                *inner.sinfo.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), report.clone()));
                inner.asking.store(false, std::sync::atomic::Ordering::SeqCst);
                report
            });
            if known.is_none()
                && let Ok(Ok(report)) = tokio::time::timeout(Duration::from_secs(3), asked).await
            {
                return Report {
                    runs: self.followed() as u32,
                    ..report
                };
            }
        }
        Report {
            runs: self.followed() as u32,
            ..known.unwrap_or_default()
        }
    }
}

/// `sinfo`: found, answering, and what it says (partitions, availability, node counts
/// and states), or why it failed.
async fn ask_sinfo() -> Report {
    let args = ["-h".to_string(), "-o".to_string(), "%P %a %D %t".to_string()];
    match run("sinfo", &args, None, None, Duration::from_secs(10)).await {
        Ok(out) => Report {
            found: true,
            reachable: true,
            detail: out
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .take(8)
                .collect::<Vec<_>>()
                .join("; "),
            runs: 0,
        },
        Err(err) => Report {
            found: !err.contains("not on guildd's PATH"),
            reachable: false,
            detail: err,
            runs: 0,
        },
    }
}

/// Asks squeue about every followed job, every POLL_INTERVAL (or when woken), until no
/// job is followed; ends with the service.
async fn poll_loop(inner: std::sync::Weak<Inner>) {
    let mut failing = false;
    loop {
        let Some(strong) = inner.upgrade() else { return };
        let jobs: Vec<String> = {
            let mut jobs = strong.jobs.lock().unwrap_or_else(|e| e.into_inner());
            if jobs.followed.is_empty() {
                // The next `follow` starts a new loop.
                jobs.polling = false;
                jobs.followed.shrink_to_fit();
                return;
            }
            jobs.followed.keys().cloned().collect()
        };
        let mut pause = POLL_INTERVAL;
        match query(&jobs).await {
            Ok(found) => {
                if jobs.iter().all(|job| found.get(job).is_some_and(JobInfo::is_running)) {
                    pause = POLL_INTERVAL_RUNNING;
                }
                if failing {
                    tracing::info!("Slurm answers again");
                    failing = false;
                }
                let map = strong.jobs.lock().unwrap_or_else(|e| e.into_inner());
                for job in &jobs {
                    let Some(tx) = map.followed.get(job) else { continue };
                    let info = found.get(job).cloned().unwrap_or_else(JobInfo::unknown);
                    tx.send_if_modified(|current| {
                        let changed = current.as_ref() != Some(&info);
                        *current = Some(info);
                        changed
                    });
                }
            }
            Err(err) => {
                // Jobs keep their last known state; their files still tell their progress.
                if !failing {
                    tracing::warn!("cannot ask Slurm about its jobs: {err}; trying again");
                    failing = true;
                }
            }
        }
        let wake = strong.clone();
        drop(strong);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = wake.wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbatch_answers_parse() {
        assert_eq!(parse_job_id("42\n").as_deref(), Some("42"));
        assert_eq!(parse_job_id("42;cluster\n").as_deref(), Some("42"));
        assert_eq!(parse_job_id("\n  7 \n").as_deref(), Some("7"));
        assert_eq!(parse_job_id("Submitted batch job 42"), None);
        assert_eq!(parse_job_id(""), None);
    }

    #[test]
    fn squeue_and_scontrol_lines_parse() {
        let found = parse_squeue("12|PENDING|Resources|\n13|RUNNING|None|node1\nbad\n");
        assert_eq!(found["12"].state, "PENDING");
        assert_eq!(found["12"].reason, "Resources");
        assert!(found["12"].is_pending());
        assert_eq!(found["13"].nodes, "node1");
        assert!(found["13"].is_running() && !found["13"].is_final());
        assert_eq!(found.len(), 2);
        let info = parse_scontrol(
            "JobId=9 JobName=guild-x UserId=root(0) JobState=TIMEOUT Reason=TimeLimit Dependency=(null) \
             ExitCode=0:15 NodeList=vm",
        )
        .unwrap();
        assert_eq!(info.state, "TIMEOUT");
        assert_eq!(info.reason, "TimeLimit");
        assert_eq!(info.exit_code, "0:15");
        assert!(info.is_final() && info.ended_by_slurm());
        assert!(parse_scontrol("nothing here").is_none());
        assert!(JobInfo::unknown().is_final() && !JobInfo::unknown().ended_by_slurm());
    }

    #[test]
    fn scripts_quote_every_word() {
        let env = vec![("RUNDIR".to_string(), "/p/runs/a b".to_string())];
        let argv = vec!["python3".to_string(), "-um".to_string(), "it's".to_string()];
        let script = Script {
            run_id: "20261205T000000Z-m",
            supervisor_exe: Path::new("/usr/bin/guildd"),
            guild_d: Path::new("/p/runs/a b/guild.d"),
            argv: &argv,
            cwd: Path::new("/p"),
            guild_env: &env,
            stats_interval: 2.0,
        };
        let text = script.text();
        assert!(text.starts_with("#!/bin/sh\n"));
        assert!(text.contains("export RUNDIR='/p/runs/a b'\n"), "{text}");
        assert!(
            text.contains("exec /usr/bin/guildd supervise --node-stats 2 '/p/runs/a b/guild.d' python3 -um 'it'\\''s' >>'/p/runs/a b/guild.d/stdout.log' 2>>'/p/runs/a b/guild.d/stderr.log'\n"),
            "{text}"
        );
        // sh reads it back as written.
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("printf '%s\\n' {}", sh_quote("a 'b' $c \"d\""))])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a 'b' $c \"d\"\n");
    }

    #[test]
    fn sbatch_arguments_put_the_command_line_last() {
        let spec = SlurmSpec {
            sbatch: vec!["--time=2:00:00".into()],
            gpus: 2,
        };
        let args = sbatch_args("r1", Path::new("/g"), &["--partition=gpu".into()], &spec);
        assert_eq!(
            args,
            [
                "--parsable",
                "--job-name=guild-r1",
                "--output=/g/slurm.out",
                "--gres=gpu:2",
                "--partition=gpu",
                "--time=2:00:00"
            ]
        );
        // A `%` in the run folder is literal, not one of sbatch's patterns.
        let args = sbatch_args("r1", Path::new("/runs/100%/g"), &[], &SlurmSpec::default());
        assert_eq!(args[2], "--output=/runs/100%%/g/slurm.out");
    }
}
