//! The sweep's random numbers: xoshiro256** seeded through splitmix64. Ours (a few lines)
//! because `--seed N` is a promise to the user: the same seed gives the same draws in every
//! Guild release, and a crate's generator may change its stream in a new version.

/// Every proposal of a sweep draws from its own stream, keyed by the seed and the proposal's
/// number, so a proposal depends only on the seed and the trials so far: a restarted daemon
/// that asks again gets the same answer.
pub(super) struct Rng {
    state: [u64; 4],
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    pub(super) fn for_proposal(seed: u64, proposal: u64) -> Rng {
        let mut mix = seed;
        let seed_hash = splitmix64(&mut mix);
        let mut state = seed_hash ^ proposal.wrapping_mul(0xd1b5_4a32_d192_ed03);
        let state = [
            splitmix64(&mut state),
            splitmix64(&mut state),
            splitmix64(&mut state),
            splitmix64(&mut state),
        ];
        Rng { state }
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1), on the 2^-53 grid.
    pub(super) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in 0..n; `n` must be above 0.
    pub(super) fn below(&mut self, n: usize) -> usize {
        // Multiply-shift (Lemire) without the rejection step: the bias is below 2^-32 for
        // any list a flag can hold.
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A standard normal draw (Box-Muller; the second value is not kept, which keeps each
    /// draw a function of the stream alone).
    pub(super) fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // (0, 1]: ln stays finite
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_depend_on_seed_and_proposal() {
        let draw = |seed, proposal| {
            let mut rng = Rng::for_proposal(seed, proposal);
            (0..4).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(1, 0), draw(1, 0));
        assert_ne!(draw(1, 0), draw(2, 0));
        assert_ne!(draw(1, 0), draw(1, 1));
        assert_ne!(draw(0, 1), draw(1, 0));
    }

    #[test]
    fn unit_below_and_normal_stay_in_range() {
        let mut rng = Rng::for_proposal(42, 7);
        let mut counts = [0usize; 5];
        let (mut sum, mut squares) = (0.0, 0.0);
        let draws = 20_000;
        for _ in 0..draws {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            counts[rng.below(5)] += 1;
            let z = rng.normal();
            assert!(z.is_finite());
            sum += z;
            squares += z * z;
        }
        assert!(
            counts.iter().all(|&c| c > draws / 5 - 400 && c < draws / 5 + 400),
            "{counts:?}"
        );
        let mean = sum / draws as f64;
        let variance = squares / draws as f64 - mean * mean;
        assert!(
            mean.abs() < 0.03 && (variance - 1.0).abs() < 0.05,
            "mean {mean}, variance {variance}"
        );
    }
}
