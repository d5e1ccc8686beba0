//! Small helpers: form parsing, response builders.

use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};

/// Parsed `application/x-www-form-urlencoded` pairs, order kept.
pub(crate) struct Form(pub(crate) Vec<(String, String)>);

impl Form {
    pub(crate) fn parse(input: &[u8]) -> Form {
        Form(
            url::form_urlencoded::parse(input)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The single value of `name`; `Err(())` when it appears more than once.
    pub(crate) fn one(&self, name: &str) -> Result<Option<&str>, String> {
        let mut it = self.0.iter().filter(|(k, _)| k == name);
        let first = it.next().map(|(_, v)| v.as_str());
        if it.next().is_some() {
            return Err(format!("parameter {name} is repeated"));
        }
        Ok(first.filter(|v| !v.is_empty()))
    }

    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// First error of any repeated parameter except the allowed ones.
    pub(crate) fn check_no_repeats(&self, allowed: &[&str]) -> Result<(), String> {
        for (i, (k, _)) in self.0.iter().enumerate() {
            if allowed.contains(&k.as_str()) {
                continue;
            }
            if self.0.iter().skip(i + 1).any(|(k2, _)| k2 == k) {
                return Err(format!("parameter {k} is repeated"));
            }
        }
        Ok(())
    }
}

pub(crate) fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn set(resp: &mut Response<Vec<u8>>, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response<Vec<u8>> {
    let mut resp = Response::new(body.to_string().into_bytes());
    *resp.status_mut() = status;
    set(&mut resp, header::CONTENT_TYPE, "application/json");
    resp
}

/// A JSON response with `Cache-Control: no-store` (token, introspection, errors).
pub(crate) fn no_store(status: StatusCode, body: &Value) -> Response<Vec<u8>> {
    let mut resp = json_response(status, body);
    set(&mut resp, header::CACHE_CONTROL, "no-store");
    set(&mut resp, header::PRAGMA, "no-cache");
    resp
}

pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response<Vec<u8>> {
    no_store(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

pub(crate) fn with_header(
    mut resp: Response<Vec<u8>>,
    name: header::HeaderName,
    value: &str,
) -> Response<Vec<u8>> {
    set(&mut resp, name, value);
    resp
}

pub(crate) fn redirect(location: &str) -> Response<Vec<u8>> {
    let mut resp = Response::new(Vec::new());
    *resp.status_mut() = StatusCode::FOUND;
    set(&mut resp, header::LOCATION, location);
    set(&mut resp, header::CACHE_CONTROL, "no-store");
    resp
}

pub(crate) fn html(status: StatusCode, body: &str) -> Response<Vec<u8>> {
    let mut resp = Response::new(body.as_bytes().to_vec());
    *resp.status_mut() = status;
    set(&mut resp, header::CONTENT_TYPE, "text/html; charset=utf-8");
    resp
}

/// Appends query pairs to a redirect URI that may already have a query.
pub(crate) fn append_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{}", form_encode(pairs))
}

/// Constant-time-ish equality for secrets (length leak is acceptable in a test issuer).
pub(crate) fn secret_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
