//! Cookies and the `return_to` rule.

use axum::http::HeaderMap;
use axum::http::header;
use std::time::Duration;

/// The names and attributes of the two cookies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieNames {
    /// The session cookie (`__Host-authpi-session`, or `authpi-session` on loopback http).
    pub session: String,
    /// The login transaction cookie (`__Host-authpi-login`, or `authpi-login`).
    pub login: String,
    /// Whether the cookies carry `Secure`.
    pub secure: bool,
}

impl CookieNames {
    pub(crate) fn new(secure: bool) -> Self {
        let prefix = if secure { "__Host-" } else { "" };
        CookieNames {
            session: format!("{prefix}authpi-session"),
            login: format!("{prefix}authpi-login"),
            secure,
        }
    }

    /// `Set-Cookie` value for `name=value` living `max_age` (`None`: deletes the cookie).
    pub(crate) fn set(&self, name: &str, value: &str, max_age: Option<Duration>) -> String {
        let age = max_age.map_or(0, |d| d.as_secs());
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{name}={value}; Path=/; Max-Age={age}; HttpOnly; SameSite=Lax{secure}")
    }
}

pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The value of cookie `name` in the request (the first one, if the browser sent several).
pub(crate) fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name && !v.is_empty()).then_some(v)
        })
}

/// `return_to` when it is a same-origin relative path (`/…`), else `None`.
///
/// Refused: absolute and scheme-relative URLs (`//evil`, `/\evil`), backslashes (browsers
/// read them as slashes), control characters and whitespace (browsers strip tabs and
/// newlines, turning `/\t/evil` into `//evil`), anything longer than 2 KiB, and anything that
/// does not resolve to `origin` when joined to it.
#[must_use]
pub fn safe_return_to(return_to: &str, origin: &str) -> Option<String> {
    if return_to.len() > 2048
        || !return_to.starts_with('/')
        || return_to.starts_with("//")
        || return_to
            .chars()
            .any(|c| c == '\\' || c.is_control() || c.is_whitespace())
    {
        return None;
    }
    let base = url::Url::parse(origin).ok()?;
    let joined = base.join(return_to).ok()?;
    (joined.origin() == base.origin()).then(|| return_to.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_accepts_relative_paths_only() {
        let origin = "https://app.example.com";
        for ok in ["/", "/orgs/org_acme/projects?x=1#f", "/a%2F%2Fb", "/me"] {
            assert_eq!(safe_return_to(ok, origin).as_deref(), Some(ok), "{ok}");
        }
        for bad in [
            "https://evil.example",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            " /x",
            "javascript:alert(1)",
            "evil.example",
            "",
            "http:/evil.example",
        ] {
            assert_eq!(safe_return_to(bad, origin), None, "{bad:?}");
        }
        assert_eq!(
            safe_return_to(&format!("/{}", "a".repeat(3000)), origin),
            None
        );
    }

    #[test]
    fn cookies_are_host_prefixed_and_secure_unless_loopback_http() {
        let c = CookieNames::new(true);
        assert_eq!(c.session, "__Host-authpi-session");
        let set = c.set(&c.session, "v", Some(Duration::from_secs(60)));
        assert_eq!(
            set,
            "__Host-authpi-session=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
        let c = CookieNames::new(false);
        assert_eq!(c.login, "authpi-login");
        assert!(!c.set(&c.login, "v", None).contains("Secure"));
    }

    #[test]
    fn cookie_lookup_takes_the_named_cookie() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; authpi-session=xyz".parse().unwrap());
        h.append(header::COOKIE, "authpi-session=later".parse().unwrap());
        assert_eq!(get(&h, "authpi-session"), Some("xyz"));
        assert_eq!(get(&h, "authpi"), None);
        assert_eq!(get(&h, "a"), Some("1"));
    }
}
