//! The identity metrics: JWKS fetches by result and refused assertions by
//! reason, each label from a fixed set (never a claim's value).

use crate::VerifyError;
use crate::jwks::JwksError;

/// One JWKS fetch ended: `None` when it succeeded.
pub(crate) fn jwks_fetched(error: Option<&JwksError>) {
    let label = error.map_or("ok", jwks_label);
    metrics::counter!("pomerium_jit_jwks_fetches_total", "result" => label).increment(1);
}

pub(crate) fn refused(error: &VerifyError) {
    metrics::counter!("pomerium_jit_assertion_failures_total", "reason" => verify_label(error))
        .increment(1);
}

fn jwks_label(error: &JwksError) -> &'static str {
    match error {
        JwksError::Timeout => "timeout",
        JwksError::Request(_) => "unreachable",
        JwksError::Status(_) => "http_status",
        JwksError::TooLarge { .. } => "too_large",
        JwksError::NotAKeySet => "not_a_key_set",
        JwksError::NoUsableKeys { .. } => "no_usable_keys",
    }
}

fn verify_label(error: &VerifyError) -> &'static str {
    match error {
        VerifyError::TooLong { .. } => "too_long",
        VerifyError::Malformed(_) => "malformed",
        VerifyError::AlgorithmNotAllowed(_) => "algorithm_not_allowed",
        VerifyError::CriticalHeader => "critical_header",
        VerifyError::KeyInHeader(_) => "key_in_header",
        VerifyError::MissingKeyId => "missing_key_id",
        VerifyError::UnknownKeyId => "unknown_key_id",
        VerifyError::KeysUnavailable => "keys_unavailable",
        VerifyError::AlgorithmMismatch { .. } => "algorithm_mismatch",
        VerifyError::BadSignature => "bad_signature",
        VerifyError::MissingClaim(_) => "missing_claim",
        VerifyError::InvalidClaim(_) => "invalid_claim",
        VerifyError::Expired => "expired",
        VerifyError::NotYetValid => "not_yet_valid",
        VerifyError::IssuedInFuture => "issued_in_future",
        VerifyError::WrongAudience => "wrong_audience",
        VerifyError::WrongIssuer => "wrong_issuer",
        VerifyError::MissingEmail => "missing_email",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_the_kind_not_the_detail() {
        assert_eq!(
            verify_label(&VerifyError::AlgorithmNotAllowed("HS256".into())),
            "algorithm_not_allowed"
        );
        assert_eq!(verify_label(&VerifyError::Expired), "expired");
        assert_eq!(
            jwks_label(&JwksError::Status(reqwest::StatusCode::BAD_GATEWAY)),
            "http_status"
        );
        assert_eq!(
            jwks_label(&JwksError::NoUsableKeys { skipped: 3 }),
            "no_usable_keys"
        );
    }
}
