//! The endpoints, as `impl Issuer`.

use http::{Method, Request, Response, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::issuer::{AccessRecord, CodeRecord, Family, Grant, Issuer, RefreshRecord, Session};
use crate::issuer::{at_hash, pkce_challenge};
use crate::model::{Client, ClientKind};
use crate::util::{
    Form, append_query, html, json_response, no_store, oauth_error, redirect, secret_eq,
    with_header,
};

type Resp = Response<Vec<u8>>;

/// An OAuth error on a back-channel endpoint.
struct OAuthErr {
    status: StatusCode,
    code: &'static str,
    description: String,
    basic_challenge: bool,
}

impl OAuthErr {
    fn new(code: &'static str, description: impl Into<String>) -> OAuthErr {
        OAuthErr {
            status: StatusCode::BAD_REQUEST,
            code,
            description: description.into(),
            basic_challenge: false,
        }
    }

    fn client(description: &str, basic: bool) -> OAuthErr {
        OAuthErr {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_client",
            description: description.to_owned(),
            basic_challenge: basic,
        }
    }

    fn server() -> OAuthErr {
        OAuthErr {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "server_error",
            description: "signing failed".to_owned(),
            basic_challenge: false,
        }
    }

    fn into_response(self) -> Resp {
        let resp = oauth_error(self.status, self.code, &self.description);
        if self.basic_challenge {
            with_header(resp, header::WWW_AUTHENTICATE, "Basic realm=\"authpi\"")
        } else {
            resp
        }
    }
}

impl From<crate::Error> for OAuthErr {
    fn from(_: crate::Error) -> Self {
        OAuthErr::server()
    }
}

const SUPPORTED_SCOPES: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "phone",
    "address",
    "offline_access",
];

impl Issuer {
    /// Answers one request at time `now` (Unix seconds). The request URI may be absolute or
    /// just a path; only the path and query are used. Never panics.
    pub fn handle(&mut self, req: Request<Vec<u8>>, now: u64) -> Resp {
        let path = req.uri().path().to_owned();
        let endpoint = path
            .strip_prefix(self.path.as_str())
            .unwrap_or("")
            .to_owned();
        self.count(&endpoint, &req);
        if let Some(i) = self
            .faults
            .iter()
            .position(|(suffix, _)| path.ends_with(suffix.as_str()))
        {
            let (_, resp) = self.faults.remove(i);
            return resp;
        }
        let method = req.method().clone();
        let get = method == Method::GET || method == Method::HEAD;
        let post = method == Method::POST;
        match endpoint.as_str() {
            "/.well-known/openid-configuration" if get => self.discovery(),
            "/jwks.json" if get => with_header(
                json_response(StatusCode::OK, &self.jwks()),
                header::CACHE_CONTROL,
                "public, max-age=3600",
            ),
            "/authorize" if get || post => {
                let form = if post {
                    Form::parse(req.body())
                } else {
                    Form::parse(req.uri().query().unwrap_or("").as_bytes())
                };
                if self.interactive_login {
                    // The login page posts the chosen user back; only a POST logs in.
                    match form.one("login_user") {
                        Ok(Some(user)) if post && self.users.contains_key(user) => {
                            let user = user.to_owned();
                            self.set_current_user(&user);
                        }
                        _ => {
                            if let Some(page) = self.login_page(&form) {
                                return page;
                            }
                        }
                    }
                }
                self.authorize(&form, now)
            }
            "/token" if post => self
                .token(&req, now)
                .unwrap_or_else(OAuthErr::into_response),
            "/userinfo" if get || post => self.userinfo(&req, now),
            "/revoke" if post => self.revoke(&req).unwrap_or_else(OAuthErr::into_response),
            "/introspect" if post => self
                .introspect(&req, now)
                .unwrap_or_else(OAuthErr::into_response),
            "/logout" if get || post => {
                let form = if post {
                    Form::parse(req.body())
                } else {
                    Form::parse(req.uri().query().unwrap_or("").as_bytes())
                };
                self.logout(&form, now)
            }
            "/.well-known/openid-configuration"
            | "/jwks.json"
            | "/authorize"
            | "/token"
            | "/userinfo"
            | "/revoke"
            | "/introspect"
            | "/logout" => with_header(
                oauth_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "invalid_request",
                    "method not allowed",
                ),
                header::ALLOW,
                if endpoint == "/token" || endpoint == "/revoke" || endpoint == "/introspect" {
                    "POST"
                } else {
                    "GET, POST"
                },
            ),
            _ => oauth_error(StatusCode::NOT_FOUND, "not_found", "no such endpoint"),
        }
    }

    fn count(&mut self, endpoint: &str, req: &Request<Vec<u8>>) {
        let s = &mut self.stats;
        match endpoint {
            "/.well-known/openid-configuration" => s.discovery_requests += 1,
            "/jwks.json" => s.jwks_requests += 1,
            "/authorize" => s.authorize_requests += 1,
            "/token" => {
                s.token_requests += 1;
                let form = Form::parse(req.body());
                match form.one("grant_type") {
                    Ok(Some("authorization_code")) => s.code_requests += 1,
                    Ok(Some("refresh_token")) => s.refresh_requests += 1,
                    Ok(Some("client_credentials")) => s.client_credentials_requests += 1,
                    _ => {}
                }
            }
            "/userinfo" => s.userinfo_requests += 1,
            "/revoke" => s.revoke_requests += 1,
            "/introspect" => s.introspect_requests += 1,
            "/logout" => s.logout_requests += 1,
            _ => s.other_requests += 1,
        }
    }

    fn discovery(&self) -> Resp {
        let u = &self.url;
        let mut doc = json!({
            "issuer": u,
            "authorization_endpoint": format!("{u}/authorize"),
            "token_endpoint": format!("{u}/token"),
            "userinfo_endpoint": format!("{u}/userinfo"),
            "jwks_uri": format!("{u}/jwks.json"),
            "revocation_endpoint": format!("{u}/revoke"),
            "introspection_endpoint": format!("{u}/introspect"),
            "end_session_endpoint": format!("{u}/logout"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256", "EdDSA", "RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "scopes_supported": SUPPORTED_SCOPES,
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
                "sid", "name", "given_name", "family_name", "picture", "locale", "email",
                "email_verified", "phone_number", "phone_number_verified", "org_id",
                "organizations", "created_at", "updated_at"],
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
        });
        if self.authorization_response_iss
            && let Some(obj) = doc.as_object_mut()
        {
            obj.insert(
                "authorization_response_iss_parameter_supported".to_owned(),
                Value::Bool(true),
            );
        }
        json_response(StatusCode::OK, &doc)
    }

    // ---------------------------------------------------------------- /authorize

    fn authorize(&mut self, form: &Form, now: u64) -> Resp {
        let bad_page = |desc: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", desc);
        let Ok(client_id) = form.one("client_id") else {
            return bad_page("client_id is repeated");
        };
        let Some(client) = client_id.and_then(|id| self.clients.get(id)).cloned() else {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_client", "unknown client");
        };
        let Ok(Some(redirect_uri)) = form.one("redirect_uri") else {
            return bad_page("redirect_uri is missing or repeated");
        };
        if !client.redirect_uri_matches(redirect_uri) {
            return bad_page("redirect_uri is not registered for this client");
        }
        let redirect_uri = redirect_uri.to_owned();
        let state = form.one("state").ok().flatten().map(str::to_owned);
        match self.authorize_checked(form, &client, &redirect_uri, now) {
            Ok((code, session_state)) => {
                let mut pairs = vec![("code", code.as_str())];
                if let Some(s) = &state {
                    pairs.push(("state", s.as_str()));
                }
                pairs.push(("session_state", session_state.as_str()));
                if self.authorization_response_iss {
                    pairs.push(("iss", self.url.as_str()));
                }
                redirect(&append_query(&redirect_uri, &pairs))
            }
            Err((error, description)) => {
                let mut pairs = vec![
                    ("error", error),
                    ("error_description", description.as_str()),
                ];
                if let Some(s) = &state {
                    pairs.push(("state", s.as_str()));
                }
                if self.authorization_response_iss {
                    pairs.push(("iss", self.url.as_str()));
                }
                redirect(&append_query(&redirect_uri, &pairs))
            }
        }
    }

    /// The interactive login page: one button per user, the authorization parameters carried
    /// as hidden fields. `None` (answer as usual) when the client or redirect URI is not
    /// acceptable, so that the page is never shown for a request that would fail anyway.
    fn login_page(&self, form: &Form) -> Option<Resp> {
        let client = self.clients.get(form.one("client_id").ok()??)?;
        if !client.redirect_uri_matches(form.one("redirect_uri").ok()??) {
            return None;
        }
        let mut hidden = String::new();
        for (k, v) in form.0.iter().filter(|(k, _)| k != "login_user") {
            hidden.push_str(&format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            ));
        }
        let mut users = String::new();
        for u in self.users.values().filter(|u| !u.blocked) {
            let label = match (&u.name, &u.email) {
                (Some(n), Some(e)) => format!("{} &lt;{}&gt;", escape(n), escape(e)),
                (Some(n), None) => escape(n),
                (None, Some(e)) => escape(e),
                (None, None) => String::new(),
            };
            users.push_str(&format!(
                "<li><button type=\"submit\" name=\"login_user\" value=\"{id}\">{id}</button> {label}</li>",
                id = escape(&u.id)
            ));
        }
        let body = format!(
            "<!doctype html><meta charset=\"utf-8\"><title>AuthPI dev issuer: sign in</title>\
             <h1>Sign in to {client}</h1><p>Choose a user (development issuer: no password).</p>\
             <form method=\"post\" action=\"{action}\">{hidden}<ul>{users}</ul></form>",
            client = escape(&client.id),
            action = escape(&format!("{}/authorize", self.path)),
        );
        Some(with_header(
            html(StatusCode::OK, &body),
            header::CACHE_CONTROL,
            "no-store",
        ))
    }

    fn authorize_checked(
        &mut self,
        form: &Form,
        client: &Client,
        redirect_uri: &str,
        now: u64,
    ) -> Result<(String, String), (&'static str, String)> {
        let invalid = |d: String| ("invalid_request", d);
        form.check_no_repeats(&["resource"]).map_err(invalid)?;
        if !matches!(client.kind, ClientKind::Confidential | ClientKind::Public) {
            return Err((
                "unauthorized_client",
                "this client cannot use the authorization code flow".into(),
            ));
        }
        match form.one("response_type").map_err(invalid)? {
            Some("code") => {}
            Some(_) => {
                return Err((
                    "unsupported_response_type",
                    "only response_type=code is supported".into(),
                ));
            }
            None => return Err(invalid("response_type is required".into())),
        }
        let scope = form.one("scope").map_err(invalid)?.unwrap_or("");
        let scopes = split_scopes(scope);
        if !scopes.iter().any(|s| s == "openid") {
            return Err(("invalid_scope", "scope must contain openid".into()));
        }
        if form.one("state").map_err(invalid)?.is_none() {
            return Err(invalid("state is required".into()));
        }
        let nonce = form
            .one("nonce")
            .map_err(invalid)?
            .ok_or_else(|| invalid("nonce is required".into()))?
            .to_owned();
        let challenge = form
            .one("code_challenge")
            .map_err(invalid)?
            .ok_or_else(|| invalid("code_challenge is required".into()))?
            .to_owned();
        if form.one("code_challenge_method").map_err(invalid)? != Some("S256") {
            return Err(invalid("code_challenge_method must be S256".into()));
        }
        if challenge.len() != 43
            || !challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid("code_challenge is not a base64url SHA-256".into()));
        }
        let prompts: Vec<&str> = form
            .one("prompt")
            .map_err(invalid)?
            .map(|p| p.split(' ').filter(|x| !x.is_empty()).collect())
            .unwrap_or_default();
        if prompts
            .iter()
            .any(|p| !matches!(*p, "none" | "login" | "consent" | "select_account"))
            || (prompts.contains(&"none") && prompts.len() > 1)
        {
            return Err(invalid("unsupported prompt value".into()));
        }
        let max_age = match form.one("max_age").map_err(invalid)? {
            None => None,
            Some(v) => Some(
                v.parse::<u64>()
                    .map_err(|_| invalid("max_age must be a non-negative integer".into()))?,
            ),
        };
        let resources: Vec<String> = form
            .all("resource")
            .iter()
            .map(|r| (*r).to_owned())
            .collect();
        for r in &resources {
            match url::Url::parse(r) {
                Ok(u) if u.fragment().is_none() => {}
                _ => {
                    return Err((
                        "invalid_target",
                        "resource must be an absolute URI without fragment".into(),
                    ));
                }
            }
        }
        let org = form.one("org").map_err(invalid)?.map(str::to_owned);
        // Who is logged in?
        let Some(user_id) = self.current_user.clone() else {
            return Err(("login_required", "no user is logged in".into()));
        };
        let Some(user) = self.users.get(&user_id) else {
            return Err(("login_required", "no user is logged in".into()));
        };
        if user.blocked {
            return Err(("user_blocked", "this account is blocked".into()));
        }
        if let Some(o) = &org
            && !self.is_member(&user_id, o)
        {
            return Err((
                "access_denied",
                "the user is not a member of the requested organization".into(),
            ));
        }
        let same_user = self.session.as_ref().is_some_and(|s| s.user == user_id);
        let too_old = match (max_age, &self.session) {
            (Some(m), Some(s)) => now.saturating_sub(s.login_time) > m,
            _ => false,
        };
        if !same_user {
            let sid = format!("s_{}", self.random_token::<12>().map_err(server)?);
            self.session = Some(Session {
                user: user_id.clone(),
                sid,
                login_time: now,
            });
        } else if (prompts.contains(&"login") || too_old)
            && let Some(s) = self.session.as_mut()
        {
            s.login_time = now;
        }
        let (sid, auth_time) = match &self.session {
            Some(s) => (s.sid.clone(), s.login_time),
            None => return Err(server(crate::Error::Crypto)),
        };
        let code = self.random_token::<32>().map_err(server)?;
        let session_state = self.random_token::<16>().map_err(server)?;
        self.codes.insert(
            code.clone(),
            CodeRecord {
                grant: Grant {
                    client_id: client.id.clone(),
                    user_id,
                    scopes,
                    org,
                    resources,
                    sid,
                    auth_time,
                    nonce,
                },
                redirect_uri: redirect_uri.to_owned(),
                challenge,
                expires_at: now.saturating_add(self.ttls.code),
                redeemed: None,
            },
        );
        Ok((code, session_state))
    }

    // ---------------------------------------------------------------- client auth

    /// Authenticates the client of a back-channel request (basic, post, or none for public
    /// clients).
    fn authenticate(&self, req: &Request<Vec<u8>>, form: &Form) -> Result<Client, OAuthErr> {
        let basic = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
            });
        let body_id = form
            .one("client_id")
            .map_err(|e| OAuthErr::new("invalid_request", e))?;
        let body_secret = form
            .one("client_secret")
            .map_err(|e| OAuthErr::new("invalid_request", e))?;
        let (id, secret, used_basic) = if let Some(b64) = basic {
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| OAuthErr::client("malformed Basic credentials", true))?;
            let text = String::from_utf8(raw)
                .map_err(|_| OAuthErr::client("malformed Basic credentials", true))?;
            let (i, s) = text
                .split_once(':')
                .ok_or_else(|| OAuthErr::client("malformed Basic credentials", true))?;
            let dec = |x: &str| {
                url::form_urlencoded::parse(format!("a={x}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            let (i, s) = (dec(i), dec(s));
            if body_secret.is_some() {
                return Err(OAuthErr::new(
                    "invalid_request",
                    "more than one client authentication method",
                ));
            }
            if body_id.is_some_and(|b| b != i) {
                return Err(OAuthErr::new(
                    "invalid_request",
                    "client_id does not match the Basic credentials",
                ));
            }
            (i, Some(s), true)
        } else {
            let id = body_id
                .ok_or_else(|| OAuthErr::client("client authentication is required", false))?;
            (id.to_owned(), body_secret.map(str::to_owned), false)
        };
        let client = self
            .clients
            .get(&id)
            .ok_or_else(|| OAuthErr::client("client authentication failed", used_basic))?;
        match (&client.secret, secret) {
            (Some(expected), Some(given)) if secret_eq(expected, &given) => Ok(client.clone()),
            (None, None) if client.kind == ClientKind::Public => Ok(client.clone()),
            _ => Err(OAuthErr::client("client authentication failed", used_basic)),
        }
    }

    // ---------------------------------------------------------------- /token

    fn token(&mut self, req: &Request<Vec<u8>>, now: u64) -> Result<Resp, OAuthErr> {
        let form = Form::parse(req.body());
        form.check_no_repeats(&["resource"])
            .map_err(|e| OAuthErr::new("invalid_request", e))?;
        let client = self.authenticate(req, &form)?;
        match form.one("grant_type").ok().flatten() {
            Some("authorization_code") => self.code_grant(&client, &form, now),
            Some("refresh_token") => self.refresh_grant(&client, &form, now),
            Some("client_credentials") => self.client_credentials(&client, &form, now),
            Some(_) => Err(OAuthErr::new(
                "unsupported_grant_type",
                "grant_type is not supported",
            )),
            None => Err(OAuthErr::new("invalid_request", "grant_type is required")),
        }
    }

    fn code_grant(&mut self, client: &Client, form: &Form, now: u64) -> Result<Resp, OAuthErr> {
        let req = |name: &str| -> Result<String, OAuthErr> {
            form.one(name)
                .ok()
                .flatten()
                .map(str::to_owned)
                .ok_or_else(|| OAuthErr::new("invalid_request", format!("{name} is required")))
        };
        let code = req("code")?;
        let redirect_uri = req("redirect_uri")?;
        let verifier = req("code_verifier")?;
        let grant_err = |d: &str| OAuthErr::new("invalid_grant", d);
        let Some(record) = self.codes.get(&code) else {
            return Err(grant_err("the authorization code is invalid"));
        };
        if record.grant.client_id != client.id {
            return Err(grant_err(
                "the authorization code was issued to another client",
            ));
        }
        if let Some(family) = record.redeemed.clone() {
            // RFC 6749 §4.1.2: a replayed code revokes what it produced.
            self.revoke_family(&family);
            return Err(grant_err("the authorization code was already used"));
        }
        if now >= record.expires_at {
            return Err(grant_err("the authorization code has expired"));
        }
        if record.redirect_uri != redirect_uri {
            return Err(grant_err(
                "redirect_uri does not match the authorization request",
            ));
        }
        if !(43..=128).contains(&verifier.len())
            || !verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        {
            return Err(grant_err("code_verifier is malformed"));
        }
        if pkce_challenge(&verifier) != record.challenge {
            return Err(grant_err("PKCE verification failed"));
        }
        let grant = record.grant.clone();
        let aud = self.pick_audience(&grant, client, form)?;
        if self.users.get(&grant.user_id).is_none_or(|u| u.blocked) {
            return Err(OAuthErr::new("user_blocked", "this account is blocked"));
        }
        let family = self.random_token::<16>()?;
        if let Some(r) = self.codes.get_mut(&code) {
            r.redeemed = Some(family.clone());
        }
        self.families.insert(
            family.clone(),
            Family {
                grant: grant.clone(),
                revoked: false,
            },
        );
        self.user_tokens(client, &grant, &family, &grant.scopes, &aud, true, now)
    }

    /// The access-token audience: a `resource` of the token request (must have been
    /// authorized), else the first authorized resource, else the client id.
    fn pick_audience(
        &self,
        grant: &Grant,
        client: &Client,
        form: &Form,
    ) -> Result<String, OAuthErr> {
        let requested = form.all("resource");
        for r in &requested {
            if !grant.resources.iter().any(|g| g == r) {
                return Err(OAuthErr::new(
                    "invalid_target",
                    "resource was not part of the authorization",
                ));
            }
        }
        Ok(requested
            .first()
            .map(|r| (*r).to_owned())
            .or_else(|| grant.resources.first().cloned())
            .unwrap_or_else(|| client.id.clone()))
    }

    #[allow(clippy::too_many_arguments)]
    fn user_tokens(
        &mut self,
        client: &Client,
        grant: &Grant,
        family: &str,
        scopes: &[String],
        aud: &str,
        with_id_token: bool,
        now: u64,
    ) -> Result<Resp, OAuthErr> {
        let scope = scopes.join(" ");
        let organizations = self.organizations(&grant.user_id, grant.org.as_deref());
        let access_jti = self.jti()?;
        let exp = now.saturating_add(self.ttls.access);
        let mut at = json!({
            "iss": self.url, "sub": grant.user_id, "aud": aud, "exp": exp, "iat": now,
            "auth_time": now, "jti": access_jti, "sid": grant.sid, "client_id": client.id,
            "dat": {"type": "identity"}, "scope": scope, "organizations": organizations,
        });
        if let (Some(o), Some(obj)) = (&grant.org, at.as_object_mut()) {
            obj.insert("org_id".into(), Value::String(o.clone()));
        }
        let access_token = self.sign(client.alg, Some("at+jwt"), &at)?;
        self.access.insert(
            access_jti,
            AccessRecord {
                client_id: client.id.clone(),
                family: Some(family.to_owned()),
                revoked: false,
                exp,
            },
        );
        let refresh_jti = self.jti()?;
        let rexp = now.saturating_add(self.ttls.refresh);
        let mut rt = json!({
            "iss": self.url, "sub": grant.user_id, "aud": client.id, "exp": rexp, "iat": now,
            "jti": refresh_jti, "sid": grant.sid, "client_id": client.id,
            "scope": grant.scopes.join(" "),
        });
        if let (Some(o), Some(obj)) = (&grant.org, rt.as_object_mut()) {
            obj.insert("org_id".into(), Value::String(o.clone()));
        }
        let refresh_token = self.sign(client.alg, None, &rt)?;
        self.refresh.insert(
            refresh_jti,
            RefreshRecord {
                family: family.to_owned(),
                used: false,
                exp: rexp,
            },
        );
        let mut body = json!({
            "access_token": access_token, "token_type": "Bearer",
            "expires_in": self.ttls.access, "refresh_token": refresh_token, "scope": scope,
        });
        if with_id_token && scopes.iter().any(|s| s == "openid") {
            let id_token = self.id_token(client, grant, scopes, &access_token, now)?;
            if let Some(obj) = body.as_object_mut() {
                obj.insert("id_token".into(), Value::String(id_token));
            }
        }
        Ok(no_store(StatusCode::OK, &body))
    }

    fn id_token(
        &self,
        client: &Client,
        grant: &Grant,
        scopes: &[String],
        access_token: &str,
        now: u64,
    ) -> Result<String, OAuthErr> {
        let mut c = Map::new();
        c.insert("iss".into(), json!(self.url));
        c.insert("sub".into(), json!(grant.user_id));
        c.insert("aud".into(), json!(client.id));
        c.insert("exp".into(), json!(now.saturating_add(self.ttls.id)));
        c.insert("iat".into(), json!(now));
        c.insert("nonce".into(), json!(grant.nonce));
        c.insert("auth_time".into(), json!(grant.auth_time));
        c.insert("sid".into(), json!(grant.sid));
        c.insert("at_hash".into(), json!(at_hash(client.alg, access_token)));
        if let Some(user) = self.users.get(&grant.user_id) {
            profile_claims(&mut c, user, scopes);
        }
        if let Some(o) = &grant.org {
            c.insert("org_id".into(), json!(o));
        }
        c.insert(
            "organizations".into(),
            Value::Array(self.organizations(&grant.user_id, grant.org.as_deref())),
        );
        Ok(self.sign(client.alg, None, &Value::Object(c))?)
    }

    fn refresh_grant(&mut self, client: &Client, form: &Form, now: u64) -> Result<Resp, OAuthErr> {
        let token = form
            .one("refresh_token")
            .ok()
            .flatten()
            .ok_or_else(|| OAuthErr::new("invalid_request", "refresh_token is required"))?
            .to_owned();
        let grant_err = |d: &str| OAuthErr::new("invalid_grant", d);
        let (header, claims) = self
            .verify_own(&token)
            .ok_or_else(|| grant_err("the refresh token is invalid"))?;
        if header.get("typ").is_some() {
            return Err(grant_err("not a refresh token"));
        }
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .ok_or_else(|| grant_err("the refresh token is invalid"))?;
        let (family_id, used, exp) = match self.refresh.get(jti) {
            Some(r) => (r.family.clone(), r.used, r.exp),
            None => return Err(grant_err("the refresh token is invalid")),
        };
        let Some(family) = self.families.get(&family_id) else {
            return Err(grant_err("the refresh token is invalid"));
        };
        if family.grant.client_id != client.id {
            return Err(grant_err("the refresh token was issued to another client"));
        }
        if used {
            if !self.replay_revokes_grant {
                return Err(grant_err("the refresh token was already used"));
            }
            self.revoke_family(&family_id);
            return Err(grant_err(
                "the refresh token was already used; the grant is revoked",
            ));
        }
        if family.revoked {
            return Err(grant_err("the grant has been revoked"));
        }
        if now >= exp {
            return Err(grant_err("the refresh token has expired"));
        }
        let grant = family.grant.clone();
        if self.users.get(&grant.user_id).is_none_or(|u| u.blocked) {
            return Err(OAuthErr::new("user_blocked", "this account is blocked"));
        }
        if let Some(o) = &grant.org
            && !self.is_member(&grant.user_id, o)
        {
            return Err(grant_err(
                "the user is no longer a member of the selected organization",
            ));
        }
        let scopes = match form.one("scope").ok().flatten() {
            None => grant.scopes.clone(),
            Some(s) => {
                let asked = split_scopes(s);
                if asked.iter().any(|a| !grant.scopes.contains(a)) {
                    return Err(OAuthErr::new(
                        "invalid_scope",
                        "the requested scope exceeds the grant",
                    ));
                }
                asked
            }
        };
        let aud = self.pick_audience(&grant, client, form)?;
        if let Some(r) = self.refresh.get_mut(jti) {
            r.used = true;
        }
        self.user_tokens(
            client,
            &grant,
            &family_id,
            &scopes,
            &aud,
            client.id_token_on_refresh,
            now,
        )
    }

    fn client_credentials(
        &mut self,
        client: &Client,
        form: &Form,
        now: u64,
    ) -> Result<Resp, OAuthErr> {
        let (ttl, dat) = match client.kind {
            ClientKind::M2m => (self.ttls.access, "key"),
            ClientKind::Agent => (self.ttls.agent, "agent"),
            _ => {
                return Err(OAuthErr::new(
                    "unauthorized_client",
                    "this client cannot use client_credentials",
                ));
            }
        };
        let scopes = match form.one("scope").ok().flatten() {
            None => client.allowed_scopes.clone(),
            Some(s) => {
                let asked = split_scopes(s);
                if asked.iter().any(|a| !client.allowed_scopes.contains(a)) {
                    return Err(OAuthErr::new(
                        "invalid_scope",
                        "the requested scope is not allowed for this client",
                    ));
                }
                asked
            }
        };
        let aud = form
            .all("resource")
            .first()
            .map(|r| (*r).to_owned())
            .unwrap_or_else(|| client.id.clone());
        let scope = scopes.join(" ");
        let jti = self.jti()?;
        let exp = now.saturating_add(ttl);
        let at = json!({
            "iss": self.url, "sub": client.id, "aud": aud, "exp": exp, "iat": now,
            "auth_time": now, "jti": jti, "client_id": client.id, "dat": {"type": dat},
            "scope": scope, "organizations": [],
        });
        let access_token = self.sign(client.alg, Some("at+jwt"), &at)?;
        self.access.insert(
            jti,
            AccessRecord {
                client_id: client.id.clone(),
                family: None,
                revoked: false,
                exp,
            },
        );
        Ok(no_store(
            StatusCode::OK,
            &json!({"access_token": access_token, "token_type": "Bearer", "expires_in": ttl, "scope": scope}),
        ))
    }

    // ---------------------------------------------------------------- /userinfo

    /// Verifies an access token of ours: signature, `typ`, expiry, not revoked.
    fn active_access_token(&self, token: &str, now: u64) -> Option<Value> {
        let (header, claims) = self.verify_own(token)?;
        if header.get("typ")?.as_str()? != "at+jwt" {
            return None;
        }
        let rec = self.access.get(claims.get("jti")?.as_str()?)?;
        let family_revoked = rec
            .family
            .as_ref()
            .is_some_and(|f| self.families.get(f).is_none_or(|f| f.revoked));
        if rec.revoked || family_revoked || now >= rec.exp {
            return None;
        }
        Some(claims)
    }

    fn userinfo(&self, req: &Request<Vec<u8>>, now: u64) -> Resp {
        let challenge = |error: &str, desc: &str| {
            with_header(
                oauth_error(StatusCode::UNAUTHORIZED, error, desc),
                header::WWW_AUTHENTICATE,
                &format!("Bearer error=\"{error}\", error_description=\"{desc}\""),
            )
        };
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
            });
        let Some(token) = token else {
            return with_header(
                oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_request",
                    "a Bearer token is required",
                ),
                header::WWW_AUTHENTICATE,
                "Bearer",
            );
        };
        let Some(claims) = self.active_access_token(token, now) else {
            return challenge("invalid_token", "the access token is invalid or expired");
        };
        let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
        let scopes = split_scopes(claims.get("scope").and_then(Value::as_str).unwrap_or(""));
        let mut out = Map::new();
        out.insert("sub".into(), json!(sub));
        let Some(user) = self.users.get(sub) else {
            // Client-credentials principals have no profile.
            out.insert("organizations".into(), json!([]));
            return json_response(StatusCode::OK, &Value::Object(out));
        };
        if user.blocked {
            return challenge("invalid_token", "the account is blocked");
        }
        let org = claims.get("org_id").and_then(Value::as_str);
        profile_claims(&mut out, user, &scopes);
        if let Some(o) = org {
            out.insert("org_id".into(), json!(o));
        }
        out.insert(
            "organizations".into(),
            Value::Array(self.organizations(sub, org)),
        );
        out.insert("created_at".into(), json!(user.created_at));
        out.insert("updated_at".into(), json!(user.updated_at));
        for (k, v) in &user.custom_claims {
            out.insert(k.clone(), v.clone());
        }
        json_response(StatusCode::OK, &Value::Object(out))
    }

    // ---------------------------------------------------------------- /revoke, /introspect

    /// Finds one of our tokens: `(is_refresh, jti, client_id, claims)`.
    fn lookup(&self, token: &str) -> Option<(bool, String, String, Value)> {
        let (header, claims) = self.verify_own(token)?;
        let jti = claims.get("jti")?.as_str()?.to_owned();
        if header.get("typ").and_then(Value::as_str) == Some("at+jwt") {
            let rec = self.access.get(&jti)?;
            Some((false, jti, rec.client_id.clone(), claims))
        } else {
            let rec = self.refresh.get(&jti)?;
            let fam = self.families.get(&rec.family)?;
            Some((true, jti, fam.grant.client_id.clone(), claims))
        }
    }

    fn revoke(&mut self, req: &Request<Vec<u8>>) -> Result<Resp, OAuthErr> {
        let form = Form::parse(req.body());
        let client = self.authenticate(req, &form)?;
        let token = form
            .one("token")
            .map_err(|e| OAuthErr::new("invalid_request", e))?
            .ok_or_else(|| OAuthErr::new("invalid_request", "token is required"))?;
        if let Some((is_refresh, jti, owner, _)) = self.lookup(token)
            && owner == client.id
        {
            if is_refresh {
                if let Some(fam) = self.refresh.get(&jti).map(|r| r.family.clone()) {
                    self.revoke_family(&fam);
                }
            } else if let Some(rec) = self.access.get_mut(&jti) {
                rec.revoked = true;
            }
        }
        let mut resp = Response::new(Vec::new());
        *resp.status_mut() = StatusCode::OK;
        Ok(with_header(resp, header::CACHE_CONTROL, "no-store"))
    }

    fn introspect(&self, req: &Request<Vec<u8>>, now: u64) -> Result<Resp, OAuthErr> {
        let form = Form::parse(req.body());
        let client = self.authenticate(req, &form)?;
        let token = form
            .one("token")
            .map_err(|e| OAuthErr::new("invalid_request", e))?
            .ok_or_else(|| OAuthErr::new("invalid_request", "token is required"))?;
        let inactive = || no_store(StatusCode::OK, &json!({"active": false}));
        let Some((is_refresh, jti, owner, claims)) = self.lookup(token) else {
            return Ok(inactive());
        };
        if owner != client.id {
            return Ok(inactive());
        }
        let active = if is_refresh {
            self.refresh.get(&jti).is_some_and(|r| {
                !r.used && now < r.exp && self.families.get(&r.family).is_some_and(|f| !f.revoked)
            })
        } else {
            self.active_access_token(token, now).is_some()
        };
        if !active {
            return Ok(inactive());
        }
        let mut out = Map::new();
        out.insert("active".into(), json!(true));
        out.insert(
            "token_type".into(),
            json!(if is_refresh {
                "refresh_token"
            } else {
                "access_token"
            }),
        );
        for k in [
            "scope",
            "client_id",
            "sub",
            "exp",
            "iat",
            "iss",
            "aud",
            "jti",
            "sid",
            "org_id",
        ] {
            if let Some(v) = claims.get(k) {
                out.insert(k.into(), v.clone());
            }
        }
        Ok(no_store(StatusCode::OK, &Value::Object(out)))
    }

    // ---------------------------------------------------------------- /logout

    fn logout(&mut self, form: &Form, now: u64) -> Resp {
        let page = |status, text: &str| {
            html(
                status,
                &format!("<!doctype html><title>AuthPI</title><p>{text}</p>"),
            )
        };
        let Ok(Some(hint)) = form.one("id_token_hint") else {
            return page(StatusCode::BAD_REQUEST, "id_token_hint is required");
        };
        let Some((header, claims)) = self.verify_own(hint) else {
            return page(StatusCode::BAD_REQUEST, "id_token_hint is not valid");
        };
        if header.get("typ").is_some() || claims.get("nonce").is_none() {
            return page(StatusCode::BAD_REQUEST, "id_token_hint is not an ID token");
        }
        let client_id = claims.get("aud").and_then(Value::as_str).unwrap_or("");
        let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
        // End the session the hint names (its `sid`), else the current one if it is the
        // hint's user's; the clients that took part are told by back-channel logout.
        let sid = claims
            .get("sid")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                self.session
                    .as_ref()
                    .filter(|s| s.user == sub)
                    .map(|s| s.sid.clone())
            });
        if let Some(sid) = sid {
            match self.end_session(&sid, now) {
                Ok(deliveries) => self.pending_logouts.extend(deliveries),
                Err(_) => return page(StatusCode::INTERNAL_SERVER_ERROR, "signing failed"),
            }
        }
        let target = form.one("post_logout_redirect_uri").ok().flatten();
        let registered = self.clients.get(client_id).is_some_and(|c| {
            target.is_some_and(|t| c.post_logout_redirect_uris.iter().any(|u| u == t))
        });
        match target {
            Some(t) if registered => {
                let state = form.one("state").ok().flatten();
                let loc = match state {
                    Some(s) => append_query(t, &[("state", s)]),
                    None => t.to_owned(),
                };
                redirect(&loc)
            }
            _ => page(StatusCode::OK, "You are signed out."),
        }
    }
}

/// HTML-escapes text for element content and double-quoted attributes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn server(_: crate::Error) -> (&'static str, String) {
    ("server_error", "internal error".into())
}

/// Space-separated scopes, duplicates removed, order kept.
fn split_scopes(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in s.split(' ').filter(|p| !p.is_empty()) {
        if !out.iter().any(|o| o == part) {
            out.push(part.to_owned());
        }
    }
    out
}

/// Standard claims granted by `scopes`.
fn profile_claims(out: &mut Map<String, Value>, user: &crate::model::User, scopes: &[String]) {
    let has = |s: &str| scopes.iter().any(|x| x == s);
    fn put(out: &mut Map<String, Value>, k: &str, v: &Option<String>) {
        if let Some(v) = v {
            out.insert(k.into(), json!(v));
        }
    }
    if has("profile") {
        put(out, "name", &user.name);
        put(out, "given_name", &user.given_name);
        put(out, "family_name", &user.family_name);
        put(out, "picture", &user.picture);
        put(out, "locale", &user.locale);
    }
    if has("phone") && user.phone_number.is_some() {
        put(out, "phone_number", &user.phone_number);
        out.insert("phone_number_verified".into(), json!(false));
    }
    if has("email") && user.email.is_some() {
        put(out, "email", &user.email);
        out.insert("email_verified".into(), json!(user.email_verified));
    }
}
