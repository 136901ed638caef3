//! The block codec of `series_block.data`: one key's samples packed in commit order.
//! Ours because the format is ours (run.db's, documented in its migration): per sample
//! a varint rowid delta (from the block's `first_seq`), zigzag varint step and time
//! deltas, and the value's 8 little-endian bytes.

use crate::samples::Stored;

/// Packs one key's samples (in commit order).
pub fn encode(samples: &[Stored]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 12);
    let (mut seq, mut step, mut time) = match samples.first() {
        Some(s) => (s.seq, 0i64, 0i64),
        None => return out,
    };
    for s in samples {
        put_varint(&mut out, s.seq.wrapping_sub(seq) as u64);
        put_varint(&mut out, zigzag(s.step.wrapping_sub(step)));
        put_varint(&mut out, zigzag(s.time.wrapping_sub(time)));
        out.extend_from_slice(&s.value.to_bits().to_le_bytes());
        (seq, step, time) = (s.seq, s.step, s.time);
    }
    out
}

/// Unpacks [`encode`]'s bytes. False if they are malformed (what came before was handed
/// out).
pub fn decode(first_seq: i64, mut data: &[u8], mut f: impl FnMut(Stored)) -> bool {
    let (mut seq, mut step, mut time) = (first_seq, 0i64, 0i64);
    while !data.is_empty() {
        let (Some(dseq), Some(dstep), Some(dtime)) =
            (get_varint(&mut data), get_varint(&mut data), get_varint(&mut data))
        else {
            return false;
        };
        let Some((value, rest)) = data.split_first_chunk::<8>() else {
            return false;
        };
        data = rest;
        seq = seq.wrapping_add(dseq as i64);
        step = step.wrapping_add(unzigzag(dstep));
        time = time.wrapping_add(unzigzag(dtime));
        f(Stored {
            seq,
            step,
            time,
            value: f64::from_bits(u64::from_le_bytes(*value)),
        });
    }
    true
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline(always)]
fn get_varint(data: &mut &[u8]) -> Option<u64> {
    // Most deltas fit one byte.
    if let Some((&b, rest)) = data.split_first()
        && b < 0x80
    {
        *data = rest;
        return Some(u64::from(b));
    }
    let mut v = 0u64;
    for (i, &b) in data.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *data = &data[i + 1..];
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip() {
        let samples: Vec<Stored> = (0..3000i64)
            .map(|i| Stored {
                seq: 5 + i * 3,
                step: if i % 7 == 0 { -i } else { i * 1000 },
                time: 1_795_691_008_000 + i * (i % 5) - 40,
                value: match i % 11 {
                    0 => f64::NAN,
                    1 => f64::INFINITY,
                    _ => (i as f64).sin(),
                },
            })
            .collect();
        let data = encode(&samples);
        let mut back = Vec::new();
        assert!(decode(samples[0].seq, &data, |s| back.push(s)));
        assert_eq!(back.len(), samples.len());
        for (a, b) in samples.iter().zip(&back) {
            assert_eq!((a.seq, a.step, a.time), (b.seq, b.step, b.time));
            assert_eq!(a.value.to_bits(), b.value.to_bits());
        }
        assert!(!decode(0, &data[..data.len() - 3], |_| {}), "truncated");
    }
}
