//! Runs every shared contract case (`tests/contract/*.json`, format in its README) against the
//! embedded store's router. The Convex functions run the same files under convex-test.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use ykeep_core::merge::apply_to;
use ykeep_store::token::{Claims, mint, now_unix};
use ykeep_store::{EmbeddedStore, StoreConfig};
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact};

const SECRET: &str = "contract-secret";
const TOKEN_KEY: &str = "contract-token-key";
/// The snapshot limit both runners set (tests/contract/README.md, "Runner settings").
const CASE_SNAPSHOT_LIMIT: usize = 4096;

/// Fields a case may have; anything else fails the case (the format may have moved on).
const FREE_TEXT: [&str; 3] = ["comment", "description", "notes"];
const KNOWN: [(&str, &[&str]); 4] = [
    ("case", &["name", "resources", "tokens", "steps"]),
    ("step", &["request", "expect", "capture"]),
    ("request", &["method", "path", "auth", "headers", "body"]),
    (
        "expect",
        &["status", "errorCode", "json", "headers", "loadText"],
    ),
];

fn check_known_fields(what: &str, value: &Value, at: &str) {
    let known = KNOWN.iter().find(|(w, _)| *w == what).unwrap().1;
    for key in value.as_object().into_iter().flat_map(|o| o.keys()) {
        assert!(
            known.contains(&key.as_str()) || FREE_TEXT.contains(&key.as_str()),
            "{at}: unknown {what} field {key:?} (format: tests/contract/README.md)"
        );
    }
}

fn case_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/contract")
}

struct Run {
    store: EmbeddedStore,
    dir: tempfile::TempDir,
    vars: HashMap<String, String>,
    bodies: HashMap<String, Vec<u8>>,
}

impl Run {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(StoreConfig {
            data_dir: dir.path().join("store"),
            secret: SECRET.into(),
            token_key: TOKEN_KEY.into(),
            auto_create: false,
            max_snapshot_bytes: CASE_SNAPSHOT_LIMIT,
        })
        .await
        .unwrap();
        Run {
            store,
            dir,
            vars: HashMap::new(),
            bodies: HashMap::new(),
        }
    }

    fn subst(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (k, v) in &self.vars {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        out
    }

    fn subst_json(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.subst(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.subst_json(v)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), self.subst_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response = self
            .store
            .standalone_router()
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, body.to_vec())
    }

    fn auth(&self, auth: Option<&Value>) -> Option<String> {
        match auth {
            None => None,
            Some(Value::String(s)) => match s.as_str() {
                "secret" => Some(format!("Bearer {SECRET}")),
                "wrong" => Some("Bearer not-the-secret".into()),
                "none" => None,
                other => panic!("unknown auth {other:?}"),
            },
            Some(Value::Object(o)) if o.contains_key("raw") => {
                Some(o["raw"].as_str().unwrap().to_owned())
            }
            Some(Value::Object(o)) if o.contains_key("token") => {
                Some(format!("Bearer {}", self.token(&o["token"])))
            }
            Some(other) => panic!("unknown auth {other}"),
        }
    }

    /// A user token minted with the test key from a case's token spec.
    fn token(&self, spec: &Value) -> String {
        let exp_in = spec["expInSeconds"].as_i64().expect("token expInSeconds");
        let claims = Claims {
            sub: self.subst(spec["sub"].as_str().unwrap_or("u1")),
            kind: self.subst(spec["kind"].as_str().expect("token kind")),
            id: self.subst(spec["id"].as_str().expect("token id")),
            exp: (now_unix() as i64 + exp_in).max(0) as u64,
        };
        mint(TOKEN_KEY, &claims)
    }

    /// After a case: `blobs/` holds exactly one `.yjs` file per resource with a snapshot and
    /// nothing else, so an overwritten or deleted blob is really gone; the database lists as
    /// detached only blobs whose files are gone (their entries wait for the next transaction),
    /// and a restart drops those entries and touches no file.
    async fn check_blob_files(&mut self, kinds: &[(String, String)], at: &str) {
        let mut with_snapshot = 0;
        for (symbol, kind) in kinds {
            let path = format!("/snapshots/{kind}/{}", self.subst(&format!("{{{symbol}}}")));
            if self.load_text(&path).await.is_some() {
                with_snapshot += 1;
            }
        }
        let blob_dir = self.dir.path().join("store/blobs");
        let list = || -> Vec<String> {
            let mut files: Vec<String> = std::fs::read_dir(&blob_dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            files
        };
        let files = list();
        assert!(
            files.iter().all(|f| f.ends_with(".yjs")),
            "{at}: stray files in blobs/: {files:?}"
        );
        assert_eq!(
            files.len(),
            with_snapshot,
            "{at}: one blob file per resource with a snapshot, found {files:?}"
        );
        let detached = || -> Vec<String> {
            let db =
                rusqlite::Connection::open(self.dir.path().join("store/store.sqlite3")).unwrap();
            let mut stmt = db.prepare("SELECT id FROM blob_sweep").unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        for id in detached() {
            assert!(
                !files.contains(&format!("{id}.yjs")),
                "{at}: detached blob {id} still has its file"
            );
        }
        // Nothing is left for the start-up sweep but those entries.
        let config = self.store.config().clone();
        self.store = EmbeddedStore::open(config).await.unwrap();
        assert!(
            detached().is_empty(),
            "{at}: blob_sweep entries left after a restart"
        );
        assert_eq!(list(), files, "{at}: the restart changed blobs/");
    }

    fn body(&self, body: Option<&Value>, step: usize) -> Vec<u8> {
        let Some(body) = body else { return Vec::new() };
        if let Some(yjs) = body.get("yjs") {
            let client = body.get("client").and_then(Value::as_u64).unwrap_or(1);
            let doc = Doc::with_client_id(client);
            let t = doc.get_or_insert_text("t");
            let parts: Vec<String> = match yjs {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
                other => panic!("bad yjs body {other}"),
            };
            for part in parts {
                let mut txn = doc.transact_mut();
                let len = t.len(&txn);
                t.insert(&mut txn, len, &part);
            }
            return full_state(&doc);
        }
        if let Some(from) = body.get("yjsFrom") {
            let bytes = &self.bodies[from.as_str().unwrap()];
            let doc = Doc::with_client_id(1_000_000 + step as u64);
            apply_to(&doc, bytes).unwrap();
            let t = doc.get_or_insert_text("t");
            let mut txn = doc.transact_mut();
            if let Some(more) = body.get("append").and_then(Value::as_str) {
                let len = t.len(&txn);
                t.insert(&mut txn, len, more);
            }
            if let Some(n) = body.get("deleteFirst").and_then(Value::as_u64) {
                t.remove_range(&mut txn, 0, n as u32);
            }
            drop(txn);
            return full_state(&doc);
        }
        if let Some(b) = body.get("base64") {
            return ykeep_core::b64::decode(b.as_str().unwrap()).unwrap();
        }
        if let Some(s) = body.get("utf8") {
            return s.as_str().unwrap().as_bytes().to_vec();
        }
        if let Some(n) = body.get("zeros") {
            return vec![0; n.as_u64().unwrap() as usize];
        }
        if let Some(j) = body.get("json") {
            return serde_json::to_vec(&self.subst_json(j)).unwrap();
        }
        panic!("unknown body {body}");
    }

    /// The `t` text a secret load of `path` returns, or None on 404.
    async fn load_text(&self, path: &str) -> Option<String> {
        let request = Request::get(path)
            .header("authorization", format!("Bearer {SECRET}"))
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = self.send(request).await;
        if status == StatusCode::NOT_FOUND {
            return None;
        }
        assert_eq!(status, StatusCode::OK, "load for loadText");
        let doc = Doc::new();
        apply_to(&doc, &body).unwrap();
        let t = doc.get_or_insert_text("t");
        Some(t.get_string(&doc.transact()))
    }
}

fn full_state(doc: &Doc) -> Vec<u8> {
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

/// Matches `expected` (with `$number`-style matchers) as a subset of `actual`.
fn matches(expected: &Value, actual: Option<&Value>) -> bool {
    match (expected, actual) {
        (Value::String(m), a) if m.starts_with('$') => match m.as_str() {
            "$number" => a.is_some_and(Value::is_number),
            "$string" => a.is_some_and(Value::is_string),
            "$present" => a.is_some_and(|v| !v.is_null()),
            "$null" => a.is_some_and(Value::is_null),
            other => panic!("unknown matcher {other}"),
        },
        (Value::Object(e), Some(Value::Object(a))) => e.iter().all(|(k, v)| matches(v, a.get(k))),
        (e, Some(a)) => e == a,
        (_, None) => false,
    }
}

async fn run_case(file: &Path) {
    let case: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let name = case["name"].as_str().unwrap_or("?");
    let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
    check_known_fields("case", &case, &file_name);
    let mut run = Run::new().await;
    let mut kinds = Vec::new();
    if let Some(resources) = case["resources"].as_object() {
        for (symbol, kind) in resources {
            let request = Request::post(format!("/resources/{}", kind.as_str().unwrap()))
                .header("authorization", format!("Bearer {SECRET}"))
                .body(Body::from(serde_json::json!({"id": symbol}).to_string()))
                .unwrap();
            let (status, _, _) = run.send(request).await;
            assert_eq!(
                status,
                StatusCode::CREATED,
                "{name}: creating resource {symbol}"
            );
            run.vars.insert(symbol.clone(), symbol.clone());
            kinds.push((symbol.clone(), kind.as_str().unwrap().to_owned()));
        }
    }
    if let Some(tokens) = case["tokens"].as_object() {
        for (symbol, spec) in tokens {
            let token = run.token(spec);
            run.vars.insert(symbol.clone(), token);
        }
    }
    for (i, step) in case["steps"].as_array().unwrap().iter().enumerate() {
        let at = format!(
            "{} ({}), step {}",
            name,
            file.file_name().unwrap().to_string_lossy(),
            i + 1
        );
        check_known_fields("step", step, &at);
        check_known_fields("request", &step["request"], &at);
        check_known_fields("expect", &step["expect"], &at);
        let req = &step["request"];
        let path = run.subst(req["path"].as_str().unwrap());
        let mut builder = Request::builder()
            .method(req["method"].as_str().unwrap())
            .uri(&path);
        if let Some(auth) = run.auth(req.get("auth")) {
            builder = builder.header("authorization", auth);
        }
        if let Some(headers) = req.get("headers").and_then(Value::as_object) {
            for (k, v) in headers {
                builder = builder.header(k.as_str(), run.subst(v.as_str().unwrap()));
            }
        }
        let request = builder
            .body(Body::from(run.body(req.get("body"), i)))
            .unwrap();
        let (status, headers, body) = run.send(request).await;
        let expect = &step["expect"];
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        assert_eq!(
            status.as_u16() as u64,
            expect["status"].as_u64().unwrap(),
            "{at}: status; body {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
        if let Some(code) = expect.get("errorCode") {
            let got = json
                .as_ref()
                .and_then(|j| j.pointer("/error/code"))
                .cloned();
            match code {
                Value::Null => assert!(got.is_none(), "{at}: expected no error, got {got:?}"),
                c => assert_eq!(got.as_ref(), Some(c), "{at}: error code"),
            }
        }
        if let Some(e) = expect.get("json") {
            let e = run.subst_json(e);
            assert!(matches(&e, json.as_ref()), "{at}: json {e} not in {json:?}");
        }
        if let Some(e) = expect.get("headers").and_then(Value::as_object) {
            for (k, v) in e {
                let got = headers
                    .get(k.as_str())
                    .map(|h| Value::String(h.to_str().unwrap().into()));
                let v = run.subst_json(v);
                assert!(
                    matches(&v, got.as_ref()),
                    "{at}: header {k}: want {v}, got {got:?}"
                );
            }
        }
        if let Some(want) = expect.get("loadText") {
            let got = run.load_text(&path).await;
            assert_eq!(got.as_deref(), want.as_str(), "{at}: loadText");
        }
        if let Some(capture) = step.get("capture").and_then(Value::as_object) {
            for (var, from) in capture {
                let from = from.as_str().unwrap();
                if from == "body" {
                    run.bodies.insert(var.clone(), body.clone());
                } else if let Some(field) = from.strip_prefix("json.") {
                    let v = json
                        .as_ref()
                        .and_then(|j| j.get(field))
                        .and_then(Value::as_str);
                    run.vars.insert(
                        var.clone(),
                        v.unwrap_or_else(|| panic!("{at}: no {from}")).into(),
                    );
                } else if let Some(h) = from.strip_prefix("header.") {
                    let v = headers
                        .get(h)
                        .unwrap_or_else(|| panic!("{at}: no header {h}"));
                    run.vars
                        .insert(var.clone(), v.to_str().unwrap().trim_matches('"').into());
                } else {
                    panic!("{at}: unknown capture {from}");
                }
            }
        }
    }
    run.check_blob_files(&kinds, &format!("{name} ({file_name})"))
        .await;
}

#[tokio::test]
async fn every_contract_case_passes() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(case_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "expected the shared contract cases in {:?}",
        case_dir()
    );
    // Every case runs, each in its own task, so one report names every failing case.
    let mut failed = Vec::new();
    for file in &files {
        let f = file.clone();
        if tokio::spawn(async move { run_case(&f).await })
            .await
            .is_err()
        {
            failed.push(file.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(
        failed.is_empty(),
        "contract cases failed (see panics above): {failed:?}"
    );
    println!("{} contract cases passed", files.len());
}
