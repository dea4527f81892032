//! Small HTTP helpers shared by the routes: JSON bodies in and out, NDJSON streams, cookies, query values, and
//! the security headers every API response carries (the static pages get theirs from `public/_headers`).

use futures::Stream;
use serde::de::DeserializeOwned;
use serde::Serialize;
use worker::{Headers, Method, Request, RequestInit, Response, Stub};

use crate::error::{ApiError, ApiResult};

/// Largest JSON request body we read; a larger one is refused before it is parsed.
pub const MAX_JSON_BODY: usize = 512 * 1024;

/// The policy of every API response: it is data, never a page, so it may load nothing, run nothing and be
/// framed by no one, even if a browser were talked into rendering it.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The headers of every API response (JSON, NDJSON, 204), the Durable Object's included, so every route and the
/// one error mapping get them from here: never cached, never MIME-sniffed, inert as a document.
fn api_headers(content_type: Option<&str>) -> Headers {
    let headers = Headers::new();
    if let Some(content_type) = content_type {
        let _ = headers.set("Content-Type", content_type);
    }
    let _ = headers.set("Cache-Control", "no-store");
    let _ = headers.set("X-Content-Type-Options", "nosniff");
    let _ = headers.set("Content-Security-Policy", API_CSP);
    headers
}

/// Calls a Durable Object: `method url` with an optional body. The URL's host is a label (a DO is reached through
/// its stub, not the network); its path and query are what the DO routes on.
pub async fn call_stub(
    stub: Stub,
    method: Method,
    url: &str,
    body: Option<String>,
) -> ApiResult<Response> {
    let mut init = RequestInit::new();
    init.with_method(method);
    if let Some(body) = body {
        init.with_body(Some(body.into()));
    }
    let request = Request::new_with_init(url, &init)?;
    Ok(stub.fetch_with_request(request).await?)
}

/// A JSON response with `status`.
pub fn json<T: Serialize>(status: u16, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).expect("response bodies serialize");
    Response::from_bytes(bytes)
        .expect("a byte body is always accepted")
        .with_status(status)
        .with_headers(api_headers(Some("application/json")))
}

/// A Markdown file to download as `filename` (a name we build: letters, digits, dashes, dots).
pub fn markdown_download(body: String, filename: &str) -> ApiResult<Response> {
    let headers = api_headers(Some("text/markdown; charset=utf-8"));
    headers.set(
        "Content-Disposition",
        &format!("attachment; filename=\"{filename}\""),
    )?;
    Ok(Response::ok(body)?.with_headers(headers))
}

/// A 204.
pub fn no_content() -> Response {
    Response::empty()
        .expect("an empty body is always accepted")
        .with_status(204)
        .with_headers(api_headers(None))
}

/// An NDJSON stream. Explicitly uncompressed: a gzipping proxy (and local dev) holds a compressed stream back
/// until it ends, which would turn live streaming into one late blob.
pub fn ndjson<S>(stream: S) -> ApiResult<Response>
where
    S: Stream<Item = Result<Vec<u8>, worker::Error>> + 'static,
{
    let headers = api_headers(Some("application/x-ndjson"));
    headers.set("Content-Encoding", "identity")?;
    headers.set("X-Accel-Buffering", "no")?;
    Ok(Response::from_stream(stream)?.with_headers(headers))
}

/// Reads and parses a JSON body, with a size limit and a clear message for each way it can be wrong.
pub async fn read_json<T: DeserializeOwned>(req: &mut Request) -> ApiResult<T> {
    if let Some(len) = req.headers().get("Content-Length")? {
        if len.parse::<usize>().map_or(true, |n| n > MAX_JSON_BODY) {
            return Err(ApiError::TooLarge(format!(
                "request body is over the {MAX_JSON_BODY}-byte limit"
            )));
        }
    }
    let bytes = req.bytes().await?;
    if bytes.len() > MAX_JSON_BODY {
        return Err(ApiError::TooLarge(format!(
            "request body is over the {MAX_JSON_BODY}-byte limit"
        )));
    }
    parse_json(&bytes)
}

/// Parses JSON, turning serde's error into a message fit for the client (it names the field, not our code).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("request body is empty".into()));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let kind = match e.classify() {
            serde_json::error::Category::Data => "invalid request",
            _ => "invalid JSON",
        };
        ApiError::BadRequest(format!("{kind}: {e}"))
    })
}

/// The value of cookie `name`.
pub fn cookie(req: &Request, name: &str) -> Option<String> {
    let header = req.headers().get("Cookie").ok()??;
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// A query parameter.
pub fn query_param(req: &Request, name: &str) -> ApiResult<Option<String>> {
    let url = req.url()?;
    Ok(url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned()))
}

/// The bearer token of the `Authorization` header.
pub fn bearer(req: &Request) -> Option<String> {
    let value = req.headers().get("Authorization").ok()??;
    value.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

/// The `after` query parameter of a resume: absent means 0; anything but a non-negative integer is a 400.
pub fn parse_after(req: &Request) -> ApiResult<u64> {
    match query_param(req, "after")? {
        None => Ok(0),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= (1u64 << 53))
            .ok_or_else(|| ApiError::BadRequest("after must be a non-negative integer".into())),
    }
}
