//! Sending one rendered delivery over its channel, and checking that a
//! channel is reachable (for `pomerium-jit doctor`).

use std::collections::HashMap;
use std::error::Error as _;
use std::time::Duration;

use aws_lc_rs::hmac;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use serde::Deserialize;
use url::Url;

use crate::config::{Channel, ChannelKind, Smtp, SmtpTls};

/// How long one send may take. Kept well under the claim hold.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a channel could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("channel `{channel}`: cannot read the CA certificate {path}: {error}")]
    CaFile {
        channel: String,
        path: String,
        error: String,
    },
    #[error("channel `{channel}`: {error}")]
    Smtp { channel: String, error: String },
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// The channels, ready to send.
#[derive(Debug, Clone)]
pub struct Sender {
    http: reqwest::Client,
    channels: HashMap<String, Ready>,
}

#[derive(Debug, Clone)]
enum Ready {
    Http {
        url: Url,
        secret: Option<Box<hmac::Key>>,
    },
    Mail {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: String,
    },
}

/// An email delivery's body, as rendered.
#[derive(Deserialize)]
struct Mail {
    subject: String,
    text: String,
}

impl Sender {
    pub fn new(channels: &[Channel]) -> Result<Self, SetupError> {
        let http = jit_http::client()
            .timeout(SEND_TIMEOUT)
            // A receiver's redirect is a misconfiguration, not a new address.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pomerium-jit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SetupError::Http(e.to_string()))?;
        let mut ready = HashMap::new();
        for ch in channels {
            let r = match &ch.kind {
                ChannelKind::Webhook { url, secret } => Ready::Http {
                    url: url.clone(),
                    secret: Some(Box::new(hmac::Key::new(
                        hmac::HMAC_SHA256,
                        secret.expose_secret().as_bytes(),
                    ))),
                },
                ChannelKind::Slack { url } => Ready::Http {
                    url: Url::parse(url.expose_secret())
                        .map_err(|e| SetupError::Http(e.to_string()))?,
                    secret: None,
                },
                ChannelKind::Email(smtp) => Ready::Mail {
                    transport: transport(&ch.name, smtp)?,
                    from: smtp.from.clone(),
                },
            };
            ready.insert(ch.name.clone(), r);
        }
        Ok(Self {
            http,
            channels: ready,
        })
    }

    /// Sends `body` over `channel` (to `recipient`, for mail) with the
    /// idempotency key `key`; a short reason if it failed.
    pub async fn send(
        &self,
        channel: &str,
        key: &str,
        recipient: &str,
        body: &str,
    ) -> Result<(), String> {
        let Some(ready) = self.channels.get(channel) else {
            return Err(format!(
                "no channel named `{channel}` is configured any more"
            ));
        };
        match ready {
            Ready::Http { url, secret } => {
                let mut req = self
                    .http
                    .post(url.clone())
                    .header("content-type", "application/json")
                    .header("idempotency-key", key);
                if let Some(secret) = secret {
                    let t = time::OffsetDateTime::now_utc().unix_timestamp();
                    req = req.header("x-jit-signature", signature(secret, t, body));
                }
                let answer = req
                    .body(body.to_owned())
                    .send()
                    .await
                    .map_err(|e| describe(&e))?;
                let status = answer.status();
                if status.is_success() {
                    Ok(())
                } else {
                    let text = answer.text().await.unwrap_or_default();
                    let text: String = text.chars().take(200).collect();
                    Err(format!("answered {status}: {text}"))
                }
            }
            Ready::Mail { transport, from } => {
                let mail: Mail = serde_json::from_str(body)
                    .map_err(|e| format!("the stored mail is unreadable ({e})"))?;
                let id: String = key
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                            c
                        } else {
                            '.'
                        }
                    })
                    .collect();
                let message = Message::builder()
                    .from(from.parse().map_err(|e| format!("from: {e}"))?)
                    .to(recipient
                        .parse()
                        .map_err(|e| format!("to `{recipient}`: {e}"))?)
                    .subject(mail.subject)
                    // Receivers and mail clients drop a repeat by this id.
                    .message_id(Some(format!("<{id}@pomerium-jit>")))
                    .header(ContentType::TEXT_PLAIN)
                    .body(mail.text)
                    .map_err(|e| e.to_string())?;
                transport
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Whether `channel` answers: an HTTP `HEAD` that gets any answer, or
    /// an SMTP connection that greets and takes `EHLO` and `NOOP`.
    pub async fn probe(&self, channel: &str) -> Result<String, String> {
        match self.channels.get(channel) {
            None => Err(format!("no channel named `{channel}`")),
            Some(Ready::Http { url, .. }) => {
                let answer = self
                    .http
                    .head(url.clone())
                    .send()
                    .await
                    .map_err(|e| describe(&e))?;
                Ok(format!(
                    "{} answered {}",
                    url.host_str().unwrap_or(""),
                    answer.status()
                ))
            }
            Some(Ready::Mail { transport, .. }) => match transport.test_connection().await {
                Ok(true) => Ok("the SMTP server greeted and took NOOP".into()),
                Ok(false) => Err("the SMTP server did not take NOOP".into()),
                Err(e) => Err(e.to_string()),
            },
        }
    }
}

/// `t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{body}">`: the `X-Jit-Signature`
/// header. Receivers recompute it with the shared secret and refuse old
/// timestamps, so a captured message cannot be replayed later.
pub fn signature(key: &hmac::Key, t: i64, body: &str) -> String {
    let tag = hmac::sign(key, format!("{t}.{body}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// An HTTP failure with its cause chain, without the URL (a Slack
/// webhook's URL is its secret).
fn describe(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}

fn transport(channel: &str, smtp: &Smtp) -> Result<AsyncSmtpTransport<Tokio1Executor>, SetupError> {
    let smtp_error = |e: lettre::transport::smtp::Error| SetupError::Smtp {
        channel: channel.to_owned(),
        error: e.to_string(),
    };
    let tls = match smtp.tls {
        SmtpTls::None => Tls::None,
        mode => {
            let mut params = TlsParameters::builder(smtp.host.clone());
            if let Some(path) = &smtp.ca_file {
                let ca_error = |error: String| SetupError::CaFile {
                    channel: channel.to_owned(),
                    path: path.display().to_string(),
                    error,
                };
                let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
                let cert = Certificate::from_pem(&pem).map_err(|e| ca_error(e.to_string()))?;
                params = params.add_root_certificate(cert);
            }
            let params = params.build_rustls().map_err(smtp_error)?;
            if mode == SmtpTls::Implicit {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(SEND_TIMEOUT));
    if let Some(user) = &smtp.username {
        let password = smtp
            .password
            .as_ref()
            .map(|p| p.expose_secret().to_owned())
            .unwrap_or_default();
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Computed independently: Python's hmac.new(b"secret",
        // b"1700000000.{}", hashlib.sha256).hexdigest(), as in the README.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"secret");
        assert_eq!(
            signature(&key, 1_700_000_000, "{}"),
            "t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }
}
