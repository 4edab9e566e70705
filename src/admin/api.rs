//! The admin REST API under `/api/v1/`: users and passkeys (create, disable, issue, revoke,
//! rotate), the allow list, client rules, torrent and user statistics, flush and reload. JSON in
//! and out, bearer-token auth, described by `openapi.json` (served at `/api/v1/openapi.json`).
//!
//! Every change goes to the database and the in-memory view at once, so it takes effect on the
//! next announce without a restart. Database work runs on the blocking pool, never on the async
//! workers that serve the trackers.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use swarmd_private::{ClientAction, ClientRule, PrivateError, PrivatePolicy, TorrentOptions};
use swarmd_proto::InfoHash;

use super::token::TokenCheck;
use super::{with_type, AdminState};
use crate::announce_url;

/// Where the API lives on the admin listener.
pub const PREFIX: &str = "/api/v1/";

/// The OpenAPI 3 description of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The largest request body accepted (a bulk allow of ~100,000 torrents fits).
const MAX_BODY: usize = 8 << 20;

/// One operation of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Stats,
    ListUsers,
    CreateUser,
    GetUser,
    PatchUser,
    IssueKey,
    RotateKeys,
    RevokeKey,
    ListTorrents,
    AllowTorrents,
    GetTorrent,
    PutTorrent,
    DeleteTorrent,
    ListClients,
    PutClient,
    DeleteClient,
    Flush,
    Reload,
    OpenApi,
}

/// Every route: method, path template (`{name}` matches one segment), operation. The OpenAPI
/// document lists exactly these (a test holds them together).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/stats"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users/{id}"),
    ("PATCH", "/api/v1/users/{id}"),
    ("POST", "/api/v1/users/{id}/passkeys"),
    ("POST", "/api/v1/users/{id}/passkeys/rotate"),
    ("DELETE", "/api/v1/passkeys/{passkey}"),
    ("GET", "/api/v1/torrents"),
    ("POST", "/api/v1/torrents"),
    ("GET", "/api/v1/torrents/{info_hash}"),
    ("PUT", "/api/v1/torrents/{info_hash}"),
    ("DELETE", "/api/v1/torrents/{info_hash}"),
    ("GET", "/api/v1/clients"),
    ("PUT", "/api/v1/clients/{prefix}"),
    ("DELETE", "/api/v1/clients/{prefix}"),
    ("POST", "/api/v1/flush"),
    ("POST", "/api/v1/reload"),
    ("GET", "/api/v1/openapi.json"),
];

const OPS: [Op; 19] = [
    Op::Stats,
    Op::ListUsers,
    Op::CreateUser,
    Op::GetUser,
    Op::PatchUser,
    Op::IssueKey,
    Op::RotateKeys,
    Op::RevokeKey,
    Op::ListTorrents,
    Op::AllowTorrents,
    Op::GetTorrent,
    Op::PutTorrent,
    Op::DeleteTorrent,
    Op::ListClients,
    Op::PutClient,
    Op::DeleteClient,
    Op::Flush,
    Op::Reload,
    Op::OpenApi,
];

/// An error reply: a status and a message, sent as `{"error": message}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<PrivateError> for ApiError {
    fn from(e: PrivateError) -> Self {
        let status = if e.is_not_found() {
            StatusCode::NOT_FOUND
        } else if e.is_conflict() {
            StatusCode::CONFLICT
        } else if e.is_invalid() {
            StatusCode::BAD_REQUEST
        } else {
            tracing::error!(error = %e, "admin API operation failed");
            StatusCode::INTERNAL_SERVER_ERROR
        };
        Self::new(status, e.to_string())
    }
}

type Reply = Result<(StatusCode, Value), ApiError>;

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut bytes = serde_json::to_vec_pretty(body).unwrap_or_default();
    bytes.push(b'\n');
    with_type(status, bytes.into(), "application/json")
}

fn error_response(e: &ApiError) -> Response<Full<Bytes>> {
    json_response(e.status, &json!({ "error": e.message }))
}

/// Matches `path` against the route table: the operation and the captured segments
/// (percent-decoded), or the methods the path allows if only the method is wrong.
fn route(method: &Method, path: &str) -> Result<(Op, Vec<String>), Option<Vec<&'static str>>> {
    let segments: Vec<&str> = path.split('/').collect();
    let mut allowed = Vec::new();
    for (&(m, template), &op) in ROUTES.iter().zip(OPS.iter()) {
        let parts: Vec<&str> = template.split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut params = Vec::new();
        let matched = parts.iter().zip(&segments).all(|(t, s)| {
            if t.starts_with('{') {
                match percent_decode(s) {
                    Some(v) if !v.is_empty() => {
                        params.push(v);
                        true
                    }
                    _ => false,
                }
            } else {
                t == s
            }
        });
        if !matched {
            continue;
        }
        if method.as_str() == m {
            return Ok((op, params));
        }
        allowed.push(m);
    }
    Err((!allowed.is_empty()).then_some(allowed))
}

fn percent_decode(segment: &str) -> Option<String> {
    let mut out = Vec::with_capacity(segment.len());
    swarmd_proto::http::percent_decode_into(segment.as_bytes(), &mut out).ok()?;
    String::from_utf8(out).ok()
}

/// Serves one request under [`PREFIX`].
pub async fn handle(state: Arc<AdminState>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let (op, params) = match route(req.method(), &path) {
        Ok(found) => found,
        Err(None) => {
            return error_response(&ApiError::new(StatusCode::NOT_FOUND, "no such endpoint"))
        }
        Err(Some(allowed)) => {
            let mut r = error_response(&ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not allowed here", req.method()),
            ));
            if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                r.headers_mut().insert(ALLOW, v);
            }
            return r;
        }
    };
    if op == Op::OpenApi {
        return with_type(
            StatusCode::OK,
            Bytes::from_static(OPENAPI.as_bytes()),
            "application/json",
        );
    }
    match state
        .token
        .check(req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes))
    {
        TokenCheck::Ok => {}
        TokenCheck::Disabled => {
            return error_response(&ApiError::new(
                StatusCode::FORBIDDEN,
                "the admin API is disabled: set admin.token or admin.token_file",
            ))
        }
        TokenCheck::Missing | TokenCheck::Wrong => {
            let mut r = error_response(&ApiError::new(
                StatusCode::UNAUTHORIZED,
                "a valid bearer token is required (Authorization: Bearer TOKEN)",
            ));
            r.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    let query = req.uri().query().unwrap_or("").to_string();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return error_response(&ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body over {MAX_BODY} bytes, or unreadable"),
            ))
        }
    };
    let result = tokio::task::spawn_blocking(move || execute(&state, op, &params, &query, &body))
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "admin API task failed");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
            ))
        });
    match result {
        Ok((status, body)) if status == StatusCode::NO_CONTENT => {
            let _ = body;
            with_type(status, Bytes::new(), "application/json")
        }
        Ok((status, body)) => json_response(status, &body),
        Err(e) => error_response(&e),
    }
}

fn parse_body<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))
}

fn parse_required<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))
}

fn user_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad(format!("user id {raw:?} is not a number")))
}

fn info_hash(raw: &str) -> Result<InfoHash, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::bad(format!(
            "info hash {raw:?} is not 40 hexadecimal characters"
        ))
    })
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    name: String,
    #[serde(default)]
    expires_at: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueKey {
    #[serde(default)]
    expires_at: Option<i64>,
}

/// One element of a bulk allow.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkTorrent {
    info_hash: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    private: bool,
    #[serde(default = "one")]
    upload_multiplier: f64,
    #[serde(default = "one")]
    download_multiplier: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchUser {
    disabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientBody {
    action: ClientAction,
    #[serde(default)]
    note: Option<String>,
}

/// The private policy, or 409 in public mode.
fn policy(state: &AdminState) -> Result<&PrivatePolicy, ApiError> {
    state.private.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "access.mode is public: there are no users, passkeys or allow list to manage",
        )
    })
}

/// Personal announce URLs for `passkey` under every configured base.
fn urls(state: &AdminState, passkey: &str) -> Vec<String> {
    state
        .announce_urls
        .iter()
        .map(|base| announce_url::personal(base, passkey))
        .collect()
}

fn execute(state: &AdminState, op: Op, params: &[String], query: &str, body: &[u8]) -> Reply {
    let param = |i: usize| params.get(i).map_or("", String::as_str);
    match op {
        Op::Stats => {
            let c = state.registry.counts();
            let access = state.private.as_ref().map(|p| to_value(&p.stats()));
            Ok((
                StatusCode::OK,
                json!({
                    "mode": state.private.as_ref().map_or("public", |p| p.mode().as_str()),
                    "access": access,
                    "registry": {
                        "torrents": c.torrents,
                        "seeders": c.seeders_v4 + c.seeders_v6,
                        "leechers": c.leechers_v4 + c.leechers_v6,
                    },
                }),
            ))
        }
        Op::ListUsers => {
            let p = policy(state)?;
            let name = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("name="))
                .map(|raw| percent_decode(raw).ok_or_else(|| ApiError::bad("bad name= value")))
                .transpose()?;
            let users = p.list_users()?;
            let users: Vec<_> = users
                .into_iter()
                .filter(|u| name.as_ref().is_none_or(|n| &u.name == n))
                .collect();
            Ok((StatusCode::OK, to_value(&users)))
        }
        Op::CreateUser => {
            let p = policy(state)?;
            let b: CreateUser = parse_required(body)?;
            let (user, mut key) = p.create_user(&b.name)?;
            if b.expires_at.is_some() {
                key = p.rotate_keys(user.id, b.expires_at)?;
            }
            let announce_urls = urls(state, &key.key);
            Ok((
                StatusCode::CREATED,
                json!({ "user": user, "passkey": key, "announce_urls": announce_urls }),
            ))
        }
        Op::GetUser => {
            let detail = policy(state)?.user(user_id(param(0))?)?;
            let mut v = to_value(&detail);
            let announce_urls: Vec<String> = detail
                .passkeys
                .iter()
                .filter(|k| k.state == swarmd_private::KeyState::Active)
                .flat_map(|k| urls(state, &k.key))
                .collect();
            if let Value::Object(m) = &mut v {
                m.insert("announce_urls".into(), to_value(&announce_urls));
            }
            Ok((StatusCode::OK, v))
        }
        Op::PatchUser => {
            let b: PatchUser = parse_required(body)?;
            let user = policy(state)?.set_user_disabled(user_id(param(0))?, b.disabled)?;
            Ok((StatusCode::OK, to_value(&user)))
        }
        Op::IssueKey | Op::RotateKeys => {
            let p = policy(state)?;
            let b: IssueKey = parse_body(body)?;
            let id = user_id(param(0))?;
            let key = if op == Op::IssueKey {
                p.issue_key(id, b.expires_at)?
            } else {
                p.rotate_keys(id, b.expires_at)?
            };
            let announce_urls = urls(state, &key.key);
            Ok((
                StatusCode::CREATED,
                json!({ "passkey": key, "announce_urls": announce_urls }),
            ))
        }
        Op::RevokeKey => {
            let key = policy(state)?.revoke_key(param(0))?;
            Ok((StatusCode::OK, to_value(&key)))
        }
        Op::ListTorrents => Ok((StatusCode::OK, to_value(&policy(state)?.list_torrents()?))),
        Op::AllowTorrents => {
            let items: Vec<BulkTorrent> = parse_required(body)?;
            let items = items
                .into_iter()
                .map(|t| {
                    Ok((
                        info_hash(&t.info_hash)?,
                        TorrentOptions {
                            name: t.name,
                            private: t.private,
                            upload_multiplier: t.upload_multiplier,
                            download_multiplier: t.download_multiplier,
                        },
                    ))
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            let rows = policy(state)?.allow_torrents(&items)?;
            Ok((StatusCode::OK, json!({ "allowed": rows.len() })))
        }
        Op::GetTorrent => {
            let ih = info_hash(param(0))?;
            let detail = policy(state)?.torrent(&ih)?;
            let swarm = state.registry.scrape(&ih).unwrap_or_default();
            let mut v = to_value(&detail);
            if let Value::Object(m) = &mut v {
                m.insert(
                    "swarm".into(),
                    json!({
                        "seeders": swarm.complete,
                        "leechers": swarm.incomplete,
                        "completed": swarm.downloaded,
                    }),
                );
            }
            Ok((StatusCode::OK, v))
        }
        Op::PutTorrent => {
            let ih = info_hash(param(0))?;
            let opts: TorrentOptions = parse_body(body)?;
            let t = policy(state)?.allow_torrent(ih, &opts)?;
            Ok((StatusCode::OK, to_value(&t)))
        }
        Op::DeleteTorrent => {
            let ih = info_hash(param(0))?;
            if policy(state)?.remove_torrent(&ih)? {
                Ok((StatusCode::NO_CONTENT, Value::Null))
            } else {
                Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "that info hash is not on the allow list",
                ))
            }
        }
        Op::ListClients => Ok((
            StatusCode::OK,
            to_value(&policy(state)?.list_client_rules()?),
        )),
        Op::PutClient => {
            let b: ClientBody = parse_required(body)?;
            let rule = ClientRule {
                prefix: param(0).to_string(),
                action: b.action,
                note: b.note,
            };
            Ok((
                StatusCode::OK,
                to_value(&policy(state)?.set_client_rule(&rule)?),
            ))
        }
        Op::DeleteClient => {
            if policy(state)?.remove_client_rule(param(0))? {
                Ok((StatusCode::NO_CONTENT, Value::Null))
            } else {
                Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "no client rule has that prefix",
                ))
            }
        }
        Op::Flush => Ok((StatusCode::OK, to_value(&policy(state)?.flush()?))),
        Op::Reload => {
            state
                .reload()
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
            Ok((StatusCode::NO_CONTENT, Value::Null))
        }
        Op::OpenApi => Ok((
            StatusCode::OK,
            serde_json::from_str(OPENAPI).unwrap_or(Value::Null),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn routes_match_templates_and_report_allowed_methods() {
        let (op, params) = route(&Method::GET, "/api/v1/users/42").unwrap();
        assert_eq!((op, params), (Op::GetUser, vec!["42".to_string()]));
        let (op, params) = route(&Method::PUT, "/api/v1/clients/-TR%32").unwrap();
        assert_eq!((op, params), (Op::PutClient, vec!["-TR2".to_string()]));
        assert_eq!(
            route(&Method::POST, "/api/v1/users/7/passkeys/rotate")
                .unwrap()
                .0,
            Op::RotateKeys
        );
        let allowed = route(&Method::POST, "/api/v1/torrents/ab")
            .unwrap_err()
            .unwrap();
        assert_eq!(allowed, vec!["GET", "PUT", "DELETE"]);
        assert!(route(&Method::GET, "/api/v1/nothing")
            .unwrap_err()
            .is_none());
        assert!(route(&Method::GET, "/api/v1/users/").unwrap_err().is_none());
    }

    /// The OpenAPI document describes exactly the routes served.
    #[test]
    fn openapi_lists_exactly_the_routes() {
        assert_eq!(ROUTES.len(), OPS.len());
        let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json parses");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if method != "parameters" {
                    documented.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        let served: BTreeSet<_> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(documented, served);
    }
}
