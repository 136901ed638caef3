//! One-time codes that open the dashboard without the token on a command line: `guild
//! view` asks for a code over the Unix socket (CreateViewCode) and opens
//! `http://ADDR/?code=CODE`; the page trades the code for the token once (`POST
//! /auth/code`) and keeps the token in its session storage. A code is 128 random bits,
//! works once, and expires after [`CODE_LIFETIME`]; a browser's command line (visible to
//! every user in `ps`) then shows only a spent code.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a code may wait to be used.
pub const CODE_LIFETIME: Duration = Duration::from_secs(300);
/// Most codes outstanding at once; the oldest go first.
const MAX_CODES: usize = 64;

#[derive(Default)]
pub struct ViewCodes {
    codes: Mutex<Vec<(String, Instant)>>,
}

impl ViewCodes {
    /// A new code, valid once for [`CODE_LIFETIME`].
    pub fn issue(&self) -> std::io::Result<String> {
        let code = crate::secret::random_hex(16).map_err(std::io::Error::other)?;
        let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        codes.retain(|(_, issued)| issued.elapsed() < CODE_LIFETIME);
        if codes.len() >= MAX_CODES {
            codes.remove(0);
        }
        codes.push((code.clone(), Instant::now()));
        Ok(code)
    }

    /// Whether `code` is a live code; it is spent either way.
    pub fn redeem(&self, code: &str) -> bool {
        let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        codes.retain(|(_, issued)| issued.elapsed() < CODE_LIFETIME);
        match codes
            .iter()
            .position(|(c, _)| crate::secret::same(code.as_bytes(), c.as_bytes()))
        {
            Some(i) => {
                codes.remove(i);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_works_once() {
        let codes = ViewCodes::default();
        let code = codes.issue().unwrap();
        assert_eq!(code.len(), 32);
        assert!(!codes.redeem("0".repeat(32).as_str()));
        assert!(codes.redeem(&code));
        assert!(!codes.redeem(&code), "a spent code works again");
        let many: Vec<String> = (0..MAX_CODES + 1).map(|_| codes.issue().unwrap()).collect();
        assert!(!codes.redeem(&many[0]), "the oldest code outlived the bound");
        assert!(codes.redeem(&many[MAX_CODES]));
    }
}
