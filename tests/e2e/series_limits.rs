//! GetSeries on many keys and buckets (issue 13, case 6): 1,000 keys × 100,000 buckets
//! is refused with the limit named, and what is allowed stays small in guildd's memory.

use guild_proto::v1::{self as pb, series_service_client::SeriesServiceClient};

use crate::helpers::*;

/// 1,000 output scalars (`k0` ... `k999`), each at steps 1 to 3.
const MANY_KEYS: &str = r#"for step in range(1, 4):
    print(f"step: {step}")
    for k in range(1000):
        print(f"k{k}: {k * step}")
"#;

#[test]
fn get_series_bounds_its_work_and_memory() {
    let env = Env::new();
    env.write(
        "Guild",
        "[project]\nstats_interval = 0\n\n[model \"m\"]\ntrain = many\n",
    );
    env.write("many.py", MANY_KEYS);
    let (id, _) = env.guild(&["train"]).ok().started_run();
    let daemon = env.try_status().expect("the daemon answers").pid;
    let keys = |n: usize| (0..n).map(|k| format!("k{k}")).collect::<Vec<_>>();
    let get = |keys: Vec<String>, buckets: u32| {
        env.block_on(async {
            SeriesServiceClient::new(env.channel().await)
                .max_decoding_message_size(64 * 1024 * 1024)
                .get_series(pb::GetSeriesRequest {
                    run: id.clone(),
                    keys,
                    buckets,
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner())
        })
    };
    let before = peak_rss(daemon);

    let refused = get(keys(1000), 100_000).expect_err("1,000 keys x 100,000 buckets");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("1000000"), "the limit is named: {refused:?}");

    // At the limit: every key answers with its own few buckets.
    let all = get(keys(1000), 1000).expect("1,000 keys x 1,000 buckets");
    assert_eq!(all.series.len(), 1000);
    assert!(all.series.iter().all(|s| s.count == 3 && s.buckets.len() == 3));
    // Many buckets for a few samples: each key's answer is the size of its buckets, not
    // of the 50,000 asked for (that was 3.6 MB a key, kept to the end of the request).
    let wide = get(keys(20), 50_000).expect("20 keys x 50,000 buckets");
    assert!(wide.series.iter().all(|s| s.buckets.len() == 3));
    let grown = peak_rss(daemon).saturating_sub(before);
    assert!(grown < 32 << 20, "guildd's peak memory grew by {} MiB", grown >> 20);

    // The daemon still answers at once.
    assert!(env.try_status().is_some());
}
