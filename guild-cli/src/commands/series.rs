//! `guild list-series RUN` (each key with its last, min, max, count and last step) and
//! `guild series RUN KEY` (every sample of one key).

use anyhow::bail;
use guild_proto::time;
use guild_proto::v1 as pb;

use crate::format::format_exact;
use crate::out::clean;
use crate::rpc::{Client, rpc, run_arg};
use crate::table;

pub async fn list(client: &Client, run: &str) -> anyhow::Result<u8> {
    let list = rpc(client
        .series()
        .list_series(pb::ListSeriesRequest { run: run_arg(run) })
        .await)?;
    let mut rows = vec![
        ["KEY", "LAST", "MIN", "MAX", "COUNT", "STEP"]
            .map(String::from)
            .to_vec(),
    ];
    rows.extend(list.keys.iter().map(|k| {
        vec![
            k.key.clone(),
            format_exact(k.last),
            format_exact(k.min),
            format_exact(k.max),
            k.count.to_string(),
            k.last_step.to_string(),
        ]
    }));
    out!("{}", table::render(rows, &[]))?;
    Ok(0)
}

/// Every sample of `key`: `step  time  value`, or CSV. A key the run does not have is an
/// error that names both and where to find the run's keys.
pub async fn samples(client: &Client, run: &str, key: &str, csv: bool) -> anyhow::Result<u8> {
    let selector = run_arg(run);
    let reply = rpc(client
        .series()
        .get_series(pb::GetSeriesRequest {
            run: selector.clone(),
            keys: vec![key.to_string()],
            ..Default::default()
        })
        .await)?;
    let samples = reply.series.into_iter().next().map(|s| s.samples).unwrap_or_default();
    if samples.is_empty() {
        let keys = rpc(client
            .series()
            .list_series(pb::ListSeriesRequest { run: selector.clone() })
            .await)?;
        if !keys.keys.iter().any(|k| k.key == key) {
            let detail = rpc(client.runs().get_run(pb::GetRunRequest { run: selector }).await)?;
            let id = detail.run.map(|r| r.id).unwrap_or_else(|| run.to_string());
            bail!(
                "run {} has no series \"{}\" (`guild list-series {}` lists its keys)",
                clean(&id),
                clean(key),
                clean(&id)
            );
        }
    }
    if csv {
        outln!("step,time_ms,value")?;
    }
    for s in samples {
        if csv {
            outln!("{},{},{}", s.step, s.time_ms, format_exact(s.value))?;
        } else {
            outln!("{:>8}  {}  {}", s.step, time::display(s.time_ms), format_exact(s.value))?;
        }
    }
    Ok(0)
}
