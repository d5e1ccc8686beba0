//! Rendering agents, token sets and results as text or JSON. Tokens appear only when asked for
//! (`--show-tokens`); otherwise a token set is summarized without its secrets.

use authpi_idp::{AccessTokenInfo, Agent, Organization, TokenSet, UnixTime, UserInfo};
use serde_json::{Value, json};
use std::fmt::Write as _;

/// How to print.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    /// One JSON object on stdout.
    pub json: bool,
    /// Include the tokens themselves.
    pub show_tokens: bool,
}

/// Provider text made safe for a terminal: control characters (ESC, CR, BEL, …, also C1) and
/// Unicode bidirectional controls are replaced by `\u{…}` escapes, so an organization title or
/// a UserInfo claim cannot move the cursor, recolor or rewrite what the user reads.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if (c.is_control() && c != '\n') || bidi {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// Like [`clean`], and a newline is escaped too (for values printed on one line).
pub fn clean_line(s: &str) -> String {
    clean(s).replace('\n', "\\u{a}")
}

/// A short, non-reversible fingerprint of a secret (first 8 hex digits of its SHA-256), to show
/// that a token changed without showing it.
pub fn fingerprint(secret: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    digest
        .as_ref()
        .iter()
        .take(4)
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The token set as JSON: the Python SDK's form with `show_tokens`, else a summary.
pub fn tokens_json(tokens: &TokenSet, show_tokens: bool, now: UnixTime) -> Value {
    if show_tokens {
        return serde_json::to_value(tokens).unwrap_or(Value::Null);
    }
    json!({
        "token_type": tokens.token_type,
        "expires_at": tokens.expires_at,
        "expires_in": tokens.expires_in(now),
        "scope": tokens.scope,
        "has_refresh_token": tokens.refresh_token.is_some(),
        "has_id_token": tokens.id_token.is_some(),
        "subject_hint": tokens.subject_hint,
    })
}

fn org_json(o: &Organization) -> Value {
    json!({"id": o.id, "title": o.title, "scopes": o.scopes, "joined_at": o.joined_at})
}

/// The agent as JSON.
pub fn agent_json(agent: &Agent, style: Style, now: UnixTime) -> Value {
    json!({
        "id": agent.id(),
        "principal_type": agent.principal_type().as_str(),
        "email": agent.email(),
        "email_verified": agent.email_verified(),
        "org_id": agent.org_id(),
        "organizations": agent.organizations().iter().map(org_json).collect::<Vec<_>>(),
        "scopes": agent.token_scopes().as_slice(),
        "expires_at": agent.expires_at(),
        "expires_in": agent.expires_in(now),
        "tokens": tokens_json(agent.tokens(), style.show_tokens, now),
    })
}

/// The agent as text, one fact per line.
pub fn agent_text(agent: &Agent, style: Style, now: UnixTime) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "subject:       {} ({})",
        clean_line(agent.id()),
        agent.principal_type().as_str()
    );
    if let Some(email) = agent.email() {
        let verified = match agent.email_verified() {
            Some(true) => " (verified)",
            Some(false) => " (unverified)",
            None => "",
        };
        let _ = writeln!(s, "email:         {}{verified}", clean_line(email));
    }
    if let Some(org) = agent.org_id() {
        let _ = writeln!(s, "organization:  {}", clean_line(org));
    }
    if agent.organizations().is_empty() {
        let _ = writeln!(s, "organizations: (none)");
    }
    for o in agent.organizations() {
        let title = o
            .title
            .as_deref()
            .map(|t| format!(" \"{}\"", clean_line(t)))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "organization:  {}{title}: {}",
            clean_line(&o.id),
            clean_line(&o.scopes.join(" "))
        );
    }
    if !agent.token_scopes().as_slice().is_empty() {
        let _ = writeln!(
            s,
            "scope:         {}",
            clean_line(&agent.token_scopes().as_slice().join(" "))
        );
    }
    let _ = writeln!(
        s,
        "expires:       at {} (in {} s)",
        agent.expires_at(),
        agent.expires_in(now)
    );
    let t = agent.tokens();
    let _ = writeln!(
        s,
        "tokens:        access {}, refresh {}, id {}",
        fingerprint(&t.access_token),
        t.refresh_token.as_deref().map_or("-".into(), fingerprint),
        t.id_token.as_deref().map_or("-".into(), fingerprint),
    );
    if style.show_tokens {
        let _ = writeln!(s, "token set:     {}", t.to_json());
    }
    s
}

/// UserInfo claims as JSON.
pub fn userinfo_json(info: &UserInfo) -> Value {
    let mut v = json!({
        "sub": info.sub,
        "name": info.name,
        "given_name": info.given_name,
        "family_name": info.family_name,
        "picture": info.picture,
        "locale": info.locale,
        "email": info.email,
        "email_verified": info.email_verified,
        "phone_number": info.phone_number,
        "phone_number_verified": info.phone_number_verified,
        "address": info.address,
        "org_id": info.org_id,
        "organizations": info.organizations.iter().map(org_json).collect::<Vec<_>>(),
        "created_at": info.created_at,
        "updated_at": info.updated_at,
    });
    if let Value::Object(map) = &mut v {
        map.retain(|_, v| !v.is_null());
        for (k, val) in &info.custom {
            map.entry(k.clone()).or_insert_with(|| val.clone());
        }
    }
    v
}

/// A validated access token as JSON.
pub fn access_token_json(info: &AccessTokenInfo, style: Style, now: UnixTime) -> Value {
    json!({
        "client_id": info.client_id,
        "jti": info.jti,
        "sid": info.sid,
        "dat_type": info.dat_type,
        "issued_at": info.issued_at,
        "audience": info.audience,
        "agent": agent_json(&info.agent, style, now),
    })
}

/// Renders a JSON value as compact text lines (`key: value`) for the human form.
pub fn kv_text(value: &Value) -> String {
    let mut s = String::new();
    if let Value::Object(map) = value {
        for (k, v) in map {
            let v = match v {
                Value::String(x) => x.clone(),
                other => other.to_string(),
            };
            let _ = writeln!(s, "{}: {}", clean_line(k), clean_line(&v));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_escapes_terminal_controls_and_keeps_text() {
        for (input, expected) in [
            ("Founder", "Founder"),
            ("Caf\u{e9} \u{1F600}", "Caf\u{e9} \u{1F600}"),
            (
                "\u{1b}[2J\u{1b}]0;pwned\u{7}",
                "\\u{1b}[2J\\u{1b}]0;pwned\\u{7}",
            ),
            ("a\rb", "a\\u{d}b"),
            ("\u{9b}31m", "\\u{9b}31m"),
            ("x\u{202e}gpj.exe", "x\\u{202e}gpj.exe"),
            ("tab\there", "tab\\u{9}here"),
        ] {
            assert_eq!(clean(input), expected, "{input:?}");
        }
        assert_eq!(clean("a\nb"), "a\nb");
        assert_eq!(clean_line("a\nb"), "a\\u{a}b");
    }

    #[test]
    fn fingerprint_is_stable_short_and_not_the_secret() {
        let f = fingerprint("rt_secret");
        assert_eq!(f.len(), 8);
        assert_eq!(f, fingerprint("rt_secret"));
        assert_ne!(f, fingerprint("rt_secret2"));
        // SHA-256("abc") starts with ba7816bf.
        assert_eq!(fingerprint("abc"), "ba7816bf");
    }

    #[test]
    fn token_summary_hides_secrets_unless_asked() {
        let t = TokenSet::from_json(
            br#"{"access_token":"AT_SECRET","expires_at":100,"refresh_token":"RT_SECRET","id_token":"ID_SECRET","scope":"openid"}"#,
        )
        .unwrap();
        let hidden = tokens_json(&t, false, UnixTime(40)).to_string();
        for secret in ["AT_SECRET", "RT_SECRET", "ID_SECRET"] {
            assert!(!hidden.contains(secret), "{secret} leaked");
        }
        let v = tokens_json(&t, false, UnixTime(40));
        assert_eq!(v["expires_in"], 60);
        assert_eq!(v["has_refresh_token"], true);
        let shown = tokens_json(&t, true, UnixTime(40));
        assert_eq!(shown["access_token"], "AT_SECRET");
        assert_eq!(shown["refresh_token"], "RT_SECRET");
    }
}
