//! Slack's request signature: `X-Slack-Signature: v0=<hex HMAC-SHA256>` over
//! `v0:{X-Slack-Request-Timestamp}:{raw body}` with the app's signing secret.
//! Checked over the raw bytes before anything is parsed; the timestamp must
//! be within [`WINDOW`] of this clock either way, and a signature already
//! accepted in that window is refused ([`Replays`]).

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::{constant_time, hmac};
use axum::http::{HeaderMap, HeaderName};

/// How far a request's timestamp may be from this clock, either way.
pub(crate) const WINDOW: i64 = 5 * 60;
/// Signatures remembered at most; past this, within one window, requests
/// are refused rather than a remembered one forgotten.
const REMEMBERED: usize = 10_000;

const TIMESTAMP: HeaderName = HeaderName::from_static("x-slack-request-timestamp");
const SIGNATURE: HeaderName = HeaderName::from_static("x-slack-signature");

/// Why a request does not come from Slack, as far as this app can tell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    #[error("no X-Slack-Request-Timestamp header (or more than one)")]
    NoTimestamp,
    #[error("no X-Slack-Signature header (or more than one)")]
    NoSignature,
    #[error("X-Slack-Request-Timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("X-Slack-Signature is not v0= and 64 hex digits")]
    BadSignature,
    #[error("the request was signed {0} s ago, more than 5 minutes")]
    TooOld(i64),
    #[error("the request is dated {0} s ahead of this clock, more than 5 minutes")]
    InFuture(i64),
    #[error("the signature does not match (another signing secret, or a changed body)")]
    Mismatch,
    #[error("this signed request was already received: a replay")]
    Replayed,
    #[error("too many Slack requests within 5 minutes to remember them all")]
    Full,
}

/// The app's signing secret, as an HMAC key.
pub(crate) struct SigningKey(hmac::Key);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(REDACTED)")
    }
}

/// A request whose signature checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Signed {
    timestamp: i64,
    signature: [u8; 32],
}

impl SigningKey {
    pub(crate) fn new(secret: &[u8]) -> SigningKey {
        SigningKey(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// Checks the headers and the raw body against this key at `now` (Unix
    /// seconds).
    pub(crate) fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Signed, Refused> {
        let timestamp = single(headers, &TIMESTAMP).ok_or(Refused::NoTimestamp)?;
        let signature = single(headers, &SIGNATURE).ok_or(Refused::NoSignature)?;
        let seconds: i64 = std::str::from_utf8(timestamp)
            .ok()
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse().ok())
            .ok_or(Refused::BadTimestamp)?;
        let signature = parse_signature(signature).ok_or(Refused::BadSignature)?;
        match now.saturating_sub(seconds) {
            age if age > WINDOW => return Err(Refused::TooOld(age)),
            age if age < -WINDOW => return Err(Refused::InFuture(-age)),
            _ => {}
        }
        let mut mac = hmac::Context::with_key(&self.0);
        mac.update(b"v0:");
        mac.update(timestamp);
        mac.update(b":");
        mac.update(body);
        constant_time::verify_slices_are_equal(mac.sign().as_ref(), &signature)
            .map_err(|_| Refused::Mismatch)?;
        Ok(Signed {
            timestamp: seconds,
            signature,
        })
    }

    /// The `X-Slack-Signature` value for `timestamp` and `body`, as Slack
    /// computes it; for tests.
    #[cfg(test)]
    pub(crate) fn sign(&self, timestamp: &str, body: &[u8]) -> String {
        let mut mac = hmac::Context::with_key(&self.0);
        mac.update(format!("v0:{timestamp}:").as_bytes());
        mac.update(body);
        let hex: String = mac
            .sign()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("v0={hex}")
    }
}

/// The value of a header sent exactly once.
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a [u8]> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    values.next().is_none().then_some(value.as_bytes())
}

fn parse_signature(raw: &[u8]) -> Option<[u8; 32]> {
    let hex = raw.strip_prefix(b"v0=")?;
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let digit = |c: u8| char::from(c).to_digit(16);
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

/// The signatures accepted within the last window, so each is accepted
/// once. In memory: with several replicas, a replay could reach another
/// replica within the window (decisions are idempotent per approver, so it
/// changes nothing twice).
#[derive(Debug, Default)]
pub(crate) struct Replays(Mutex<HashMap<[u8; 32], i64>>);

impl Replays {
    /// Remembers `signed` at `now`, or refuses it if it was seen before (or
    /// if the window already holds [`REMEMBERED`] others).
    pub(crate) fn first_time(&self, signed: Signed, now: i64) -> Result<(), Refused> {
        self.first_time_within(signed, now, REMEMBERED)
    }

    fn first_time_within(&self, signed: Signed, now: i64, cap: usize) -> Result<(), Refused> {
        let mut seen = self.0.lock().expect("replay set lock");
        if seen.contains_key(&signed.signature) {
            return Err(Refused::Replayed);
        }
        if seen.len() >= cap {
            // Anything dated before the window can no longer pass `verify`.
            seen.retain(|_, at| *at >= now - WINDOW);
            if seen.len() >= cap {
                return Err(Refused::Full);
            }
        }
        seen.insert(signed.signature, signed.timestamp);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const NOW: i64 = 1_700_000_000;
    const BODY: &[u8] = b"payload=%7B%22type%22%3A%22block_actions%22%7D";

    fn key() -> SigningKey {
        SigningKey::new(b"8f742231b10e8888abcd99yyyzzz85a5")
    }

    fn headers(timestamp: &str, signature: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(TIMESTAMP, HeaderValue::from_str(timestamp).unwrap());
        h.insert(SIGNATURE, HeaderValue::from_str(signature).unwrap());
        h
    }

    fn signed_at(at: i64, body: &[u8]) -> HeaderMap {
        let ts = at.to_string();
        headers(&ts, &key().sign(&ts, body))
    }

    #[test]
    fn slacks_documented_example_verifies() {
        // The example of Slack's "Verifying requests from Slack" guide.
        let key = SigningKey::new(b"8f742231b10e8888abcd99yyyzzz85a5");
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let h = headers(
            "1531420618",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        );
        assert!(key.verify(&h, body, 1_531_420_618 + 10).is_ok());
    }

    #[test]
    fn a_good_signature_verifies() {
        let signed = key().verify(&signed_at(NOW, BODY), BODY, NOW).unwrap();
        assert_eq!(signed.timestamp, NOW);
    }

    #[test]
    fn forged_or_changed_requests_do_not() {
        let h = signed_at(NOW, BODY);
        let other = SigningKey::new(b"another secret");
        assert_eq!(other.verify(&h, BODY, NOW), Err(Refused::Mismatch));
        let mut changed = BODY.to_vec();
        changed.push(b'x');
        assert_eq!(key().verify(&h, &changed, NOW), Err(Refused::Mismatch));
        // Another timestamp with the old signature.
        let sig = h.get(SIGNATURE).unwrap().to_str().unwrap().to_owned();
        let moved = headers(&(NOW + 1).to_string(), &sig);
        assert_eq!(key().verify(&moved, BODY, NOW), Err(Refused::Mismatch));
        // One flipped digit.
        let flipped = format!(
            "{}{}",
            &sig[..sig.len() - 1],
            if sig.ends_with('0') { '1' } else { '0' }
        );
        let forged = headers(&NOW.to_string(), &flipped);
        assert_eq!(key().verify(&forged, BODY, NOW), Err(Refused::Mismatch));
    }

    #[test]
    fn missing_or_garbled_headers_are_refused() {
        let good = signed_at(NOW, BODY);
        let sig = good.get(SIGNATURE).unwrap().to_str().unwrap().to_owned();
        let ts = NOW.to_string();
        let mut h = good.clone();
        h.remove(TIMESTAMP);
        assert_eq!(key().verify(&h, BODY, NOW), Err(Refused::NoTimestamp));
        let mut h = good.clone();
        h.remove(SIGNATURE);
        assert_eq!(key().verify(&h, BODY, NOW), Err(Refused::NoSignature));
        let mut h = good.clone();
        h.append(SIGNATURE, HeaderValue::from_str(&sig).unwrap());
        assert_eq!(key().verify(&h, BODY, NOW), Err(Refused::NoSignature));
        for bad_ts in [
            "",
            "-5",
            "+1700000000",
            "1.7e9",
            "soon",
            "99999999999999999999",
        ] {
            let h = headers(bad_ts, &sig);
            assert_eq!(
                key().verify(&h, BODY, NOW),
                Err(Refused::BadTimestamp),
                "{bad_ts}"
            );
        }
        for bad_sig in [
            sig.trim_start_matches("v0="),
            &sig.replace("v0=", "v1="),
            &sig[..sig.len() - 2],
            &format!("{sig}00"),
            &format!("v0={}", "g".repeat(64)),
            &sig.to_uppercase(),
        ] {
            let h = headers(&ts, bad_sig);
            assert_eq!(
                key().verify(&h, BODY, NOW),
                Err(Refused::BadSignature),
                "{bad_sig}"
            );
        }
    }

    #[test]
    fn the_timestamp_must_be_within_five_minutes_either_way() {
        for skew in [-WINDOW, -60, 0, 60, WINDOW] {
            let h = signed_at(NOW + skew, BODY);
            assert!(key().verify(&h, BODY, NOW).is_ok(), "{skew}");
        }
        let h = signed_at(NOW - 6 * 60, BODY);
        assert_eq!(key().verify(&h, BODY, NOW), Err(Refused::TooOld(360)));
        let h = signed_at(NOW + 6 * 60, BODY);
        assert_eq!(key().verify(&h, BODY, NOW), Err(Refused::InFuture(360)));
        let h = signed_at(0, BODY);
        assert_eq!(key().verify(&h, BODY, NOW), Err(Refused::TooOld(NOW)));
    }

    #[test]
    fn a_signature_is_accepted_once() {
        let replays = Replays::default();
        let first = key().verify(&signed_at(NOW, BODY), BODY, NOW).unwrap();
        assert_eq!(replays.first_time(first, NOW), Ok(()));
        let again = key().verify(&signed_at(NOW, BODY), BODY, NOW + 1).unwrap();
        assert_eq!(replays.first_time(again, NOW + 1), Err(Refused::Replayed));
        // Another request (another second) is not a replay.
        let next = key()
            .verify(&signed_at(NOW + 1, BODY), BODY, NOW + 1)
            .unwrap();
        assert_eq!(replays.first_time(next, NOW + 1), Ok(()));
    }

    #[test]
    fn the_replay_set_is_bounded_and_forgets_only_what_verify_refuses_anyway() {
        let replays = Replays::default();
        let at = |t: i64, body: &[u8]| key().verify(&signed_at(t, body), body, t).unwrap();
        replays.first_time_within(at(NOW, b"a"), NOW, 2).unwrap();
        replays
            .first_time_within(at(NOW + 1, b"b"), NOW + 1, 2)
            .unwrap();
        // Full, and both still within the window: refused, nothing forgotten.
        assert_eq!(
            replays.first_time_within(at(NOW + 2, b"c"), NOW + 2, 2),
            Err(Refused::Full)
        );
        // Once the first is past the window, it makes room.
        let later = NOW + WINDOW + 1;
        replays
            .first_time_within(at(later, b"d"), later, 2)
            .unwrap();
        assert_eq!(
            replays.first_time_within(at(NOW + 1, b"b"), later, 2),
            Err(Refused::Replayed)
        );
    }
}
