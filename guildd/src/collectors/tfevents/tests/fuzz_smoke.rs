//! Random bytes (garbage, framed garbage, cut records, damaged events, good records)
//! appended in random pieces and polled with random bounds: the reader never panics,
//! never runs past what was written, and always makes progress.

use super::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Up to `max - 1` random bytes.
    fn bytes(&mut self, max: u64) -> Vec<u8> {
        let n = self.below(max);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_garbage_fuzz_smoke() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let tmp = Temp::new("fuzz");
    for round in 0..400 {
        let mut data = Vec::new();
        for _ in 0..rng.below(12) {
            match rng.below(7) {
                0 => data.extend(rng.bytes(40)),
                1 => data.extend(frame(&rng.bytes(60))),
                2 => {
                    let r = scalar_record("x", rng.below(100) as i64, 1.0);
                    let cut = rng.below(r.len() as u64) as usize;
                    data.extend_from_slice(&r[..cut]);
                }
                3 => {
                    // a framed random summary built from random fields
                    let mut e = event(1, vec![simple("y", 2.0)]);
                    let len = e.len();
                    for _ in 0..rng.below(4) {
                        e[rng.below(len as u64) as usize] = rng.next() as u8;
                    }
                    data.extend(frame(&e));
                }
                _ => data.extend(scalar_record("z", rng.below(100) as i64, 3.0)),
            }
        }
        for _ in 0..rng.below(3) {
            if !data.is_empty() {
                let i = rng.below(data.len() as u64) as usize;
                data[i] ^= 1 << rng.below(8);
            }
        }
        tmp.write(&[]);
        let file = tmp.open();
        let mut reader = Reader::new(0);
        let mut c = Collected::default();
        // append in random pieces, polling in between with random bounds
        let mut written = 0;
        while written < data.len() {
            let n = 1 + rng.below((data.len() - written) as u64) as usize;
            tmp.append(&data[written..written + n]);
            written += n;
            let max = 1 + rng.below(200);
            poll_all(&mut reader, &file, max, rng.below(4) == 0, &mut c);
            assert!(reader.offset() <= written as u64, "round {round}");
        }
        poll_all(&mut reader, &file, u64::MAX, true, &mut c);
        assert!(reader.offset() <= data.len() as u64);
        assert!(
            c.polls < 10 * (data.len() as u64 + 10),
            "round {round}: {} polls",
            c.polls
        );
        // a reader started anywhere copes too
        let mut other = Reader::new(rng.below(data.len() as u64 + 20));
        let mut c2 = Collected::default();
        poll_all(&mut other, &file, u64::MAX, true, &mut c2);
    }
}
