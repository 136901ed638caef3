//! What of a run's environment is recorded in its `env` attr: names that look like they
//! hold secrets are left out, and secrets inside other values (a password in a URL, a
//! key in a connection string) are replaced with `***`. A run's own process still gets
//! its whole environment; this is only about what is written down.

use std::borrow::Cow;

/// Words that mark a secret anywhere in a name (case-insensitive): `DB_PASS`,
/// `AWS_SECRET_ACCESS_KEY`, `GITHUB_TOKEN`, `NPM_AUTH`, `GOOGLE_APPLICATION_CREDENTIALS`.
const SECRET_WORDS: [&str; 13] = [
    "PASS",
    "SECRET",
    "TOKEN",
    "KEY",
    "AUTH",
    "CREDENTIAL",
    "COOKIE",
    "SESSION",
    "PRIVATE",
    "SIGNATURE",
    "CONNSTR",
    "CONNECTION_STRING",
    "DSN",
];

/// Name parts (between `_`) that mark a secret: `GH_PAT`, `MYSQL_PWD`, `AZURE_SAS`.
const SECRET_PARTS: [&str; 5] = ["PAT", "PWD", "SAS", "PSK", "OTP"];

/// Whether an environment variable's name looks like it holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    // The working directory, not a password.
    if upper == "PWD" || upper == "OLDPWD" {
        return false;
    }
    SECRET_WORDS.iter().any(|word| upper.contains(word))
        || upper
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|part| SECRET_PARTS.contains(&part))
}

/// Keys of `key=value` pairs whose value is a secret, in connection strings (Azure's
/// `AccountKey=...;`, ODBC's `Pwd=...`) and URL queries (`?sig=...`), compared
/// case-insensitively after removing spaces.
fn is_secret_key(key: &str) -> bool {
    let key: String = key
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    // `SharedAccessKeyName=root` names a key; it is not one.
    if key.ends_with("NAME") {
        return false;
    }
    matches!(key.as_str(), "SIG" | "PWD" | "PAT") || is_secret_name(&key)
}

/// A value with the secrets it carries replaced by `***`: the password of every URL
/// (`postgres://user:***@host/db`) and the value of every secret-looking `key=value`
/// pair (`AccountKey=***;`, `Password=***`, `?sig=***&`).
pub fn redact_value(value: &str) -> Cow<'_, str> {
    let urls = redact_url_passwords(value);
    match redact_pairs(&urls) {
        Cow::Borrowed(_) => urls,
        Cow::Owned(owned) => Cow::Owned(owned),
    }
}

/// `scheme://user:password@host` -> `scheme://user:***@host`, for every URL in the value.
fn redact_url_passwords(value: &str) -> Cow<'_, str> {
    if !value.contains("://") {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut changed = false;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at the path, query, fragment, or a separator between values.
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace() || c == ',' || c == ';')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) if authority[..at].contains(':') => {
                let userinfo = &authority[..at];
                let colon = userinfo.find(':').unwrap_or(userinfo.len());
                out.push_str(&userinfo[..colon]);
                out.push_str(":***");
                out.push_str(&authority[at..]);
                changed = true;
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    if changed { Cow::Owned(out) } else { Cow::Borrowed(value) }
}

/// The value of each secret-looking `key=value` pair (pairs separated by `;`, `&` or
/// `?`; a connection string's values may hold spaces) replaced by `***`.
fn redact_pairs(value: &str) -> Cow<'_, str> {
    if !value.contains('=') {
        return Cow::Borrowed(value);
    }
    let is_separator = |c: char| matches!(c, ';' | '&' | '?');
    let mut out = String::with_capacity(value.len());
    let mut changed = false;
    let mut start = 0;
    for (i, c) in value.char_indices().chain(std::iter::once((value.len(), ';'))) {
        if i < value.len() && !is_separator(c) {
            continue;
        }
        let piece = &value[start..i];
        match piece.split_once('=') {
            Some((key, secret)) if !secret.is_empty() && is_secret_key(key) => {
                out.push_str(key);
                out.push_str("=***");
                changed = true;
            }
            _ => out.push_str(piece),
        }
        if i < value.len() {
            out.push(c);
        }
        start = i + c.len_utf8();
    }
    if changed { Cow::Owned(out) } else { Cow::Borrowed(value) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_recognised_by_pattern() {
        for name in [
            "AWS_SECRET_ACCESS_KEY",
            "GITHUB_TOKEN",
            "api_key",
            "DB_PASS",
            "PGPASSWORD",
            "GH_PAT",
            "SENTRY_DSN",
            "MYSQL_PWD",
            "NPM_AUTH",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "AZURE_STORAGE_CONNECTION_STRING",
            "AZURE_SAS",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "PATH",
            "CUDA_VISIBLE_DEVICES",
            "PWD",
            "OLDPWD",
            "HOME",
            "PATIENCE",
            "LANG",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn passwords_in_values_are_redacted() {
        assert_eq!(
            redact_value("postgres://user:hunter2@db.example:5432/app"),
            "postgres://user:***@db.example:5432/app"
        );
        assert_eq!(
            redact_value("redis://:s3cret@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(redact_value("https://user@host/x"), "https://user@host/x");
        assert_eq!(
            redact_value("http://a:b@h1,http://c:d@h2"),
            "http://a:***@h1,http://c:***@h2"
        );
        assert_eq!(
            redact_value(
                "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=abc+/==;EndpointSuffix=core.windows.net"
            ),
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=***;EndpointSuffix=core.windows.net"
        );
        assert_eq!(
            redact_value("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=xyz="),
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=***"
        );
        assert_eq!(
            redact_value("Server=tcp:db,1433;User ID=sa;Password=p@ss;Encrypt=True"),
            "Server=tcp:db,1433;User ID=sa;Password=***;Encrypt=True"
        );
        assert_eq!(
            redact_value("https://acct.blob.core.windows.net/c?sv=2020&sig=abcd%2F&se=1"),
            "https://acct.blob.core.windows.net/c?sv=2020&sig=***&se=1"
        );
        assert_eq!(redact_value("/usr/bin:/bin"), "/usr/bin:/bin");
        assert_eq!(redact_value("a=b"), "a=b");
    }
}
