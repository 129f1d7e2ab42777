//! One webhook delivery on the wire: an HTTP/1.1 `POST` over a connection
//! of its own (TCP, and TLS for `https://` with the system's roots), by
//! hyper's client, all within one timeout. It answers with the status and
//! the start of the response body; it decides nothing about retries and
//! never logs a header or the body (the signature is in the headers).

// A delivery opens its own connection (tests/layering.rs lists this file).
#![allow(clippy::disallowed_types)]

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// How much of a receiver's answer is kept for `last_error`.
const KEPT_ANSWER_BYTES: usize = 200;

/// The roots the system trusts (as lettre reads them).
pub fn system_roots() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(error = %error, "webhooks: cannot read a system certificate");
    }
    if found.certs.is_empty() {
        tracing::warn!("webhooks: no system certificates found");
    }
    found.certs
}

/// The TLS settings of an endpoint's `https://` deliveries: TLS 1.2 and
/// 1.3 with ring, `roots` trusted (the system's, and its `ca_file`'s).
pub fn tls_settings(
    roots: impl IntoIterator<Item = rustls::pki_types::CertificateDer<'static>>,
) -> Arc<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    store.add_parsable_certificates(roots);
    let roots = store;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = match rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    {
        Ok(builder) => builder.with_root_certificates(roots).with_no_client_auth(),
        // ring offers both versions; this is not reached.
        Err(_) => rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    };
    Arc::new(config)
}

/// What the receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The first bytes of the response body, as text.
    pub body: String,
}

/// Posts `body` to `url` with `headers`; `Err` says why nothing was
/// answered (no connection, TLS, timeout, a broken response).
pub async fn post(
    url: &str,
    headers: &[(&str, String)],
    body: String,
    timeout: Duration,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Answer, String> {
    match tokio::time::timeout(timeout, exchange(url, headers, body, tls)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "no answer within {}",
            humantime::format_duration(timeout)
        )),
    }
}

async fn exchange(
    url: &str,
    headers: &[(&str, String)],
    body: String,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Answer, String> {
    let uri: http::Uri = url.parse().map_err(|_| format!("bad URL {url:?}"))?;
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().ok_or("the URL has no host")?;
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .unwrap_or_else(|| host.to_string());
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let mut request = http::Request::post(path)
        .header(http::header::HOST, authority)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(
            http::header::USER_AGENT,
            concat!("jobmail/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let tcp = tokio::net::TcpStream::connect((bare.as_str(), port))
        .await
        .map_err(|e| format!("cannot connect to {bare}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    if https {
        let name = rustls::pki_types::ServerName::try_from(bare.clone())
            .map_err(|_| format!("{bare:?} is not a TLS server name"))?;
        let stream = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {bare}: {e}"))?;
        send(stream, request).await
    } else {
        send(tcp, request).await
    }
}

async fn send<S>(stream: S, request: http::Request<Full<Bytes>>) -> Result<Answer, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    // The connection is driven beside the request, and ends with it.
    let driver = tokio::spawn(connection);
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let status = response.status().as_u16();
        // Only the start of the answer matters; a huge or broken body is not an error.
        let body = match Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(_) => Bytes::new(),
        };
        let text = String::from_utf8_lossy(&body[..body.len().min(KEPT_ANSWER_BYTES)])
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .trim()
            .to_string();
        Ok(Answer { status, body: text })
    }
    .await;
    driver.abort();
    result
}
