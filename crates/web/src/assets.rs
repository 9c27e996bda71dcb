//! Static files, compiled into the binary (no CDN, nothing to deploy beside
//! it). Pages link them with a content hash in the query, so they can be
//! cached for a year and still change with a new release.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::WebError;
use crate::text::Escaped;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// Hex FNV-1a of the body: the cache-busting version.
    version: String,
    /// The version, quoted.
    etag: HeaderValue,
}

static ASSETS: LazyLock<[Asset; 2]> = LazyLock::new(|| {
    [
        asset(
            "app.css",
            "text/css; charset=utf-8",
            include_bytes!("../assets/app.css"),
        ),
        asset(
            "favicon.svg",
            "image/svg+xml",
            include_bytes!("../assets/favicon.svg"),
        ),
    ]
});

static CSS_HREF: LazyLock<Escaped> = LazyLock::new(|| href("app.css"));
static ICON_HREF: LazyLock<Escaped> = LazyLock::new(|| href("favicon.svg"));

fn asset(name: &'static str, content_type: &'static str, body: &'static [u8]) -> Asset {
    let version = format!("{:016x}", fnv1a(body));
    let etag = HeaderValue::try_from(format!("\"{version}\""))
        .expect("quoted hex is a valid header value");
    Asset {
        name,
        content_type,
        body,
        version,
        etag,
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn href(name: &str) -> Escaped {
    let asset = ASSETS
        .iter()
        .find(|a| a.name == name)
        .expect("a compiled-in asset");
    Escaped::new(&format!("/assets/{name}?v={}", asset.version))
}

pub(crate) fn css_href() -> &'static Escaped {
    &CSS_HREF
}

pub(crate) fn icon_href() -> &'static Escaped {
    &ICON_HREF
}

pub(crate) async fn serve(
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let asset = ASSETS
        .iter()
        .find(|a| a.name == file)
        .ok_or(WebError::NotFound)?;
    let etag = asset.etag.clone();
    let cache = (
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v == etag)
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag), cache]).into_response());
    }
    let content_type = HeaderValue::from_static(asset.content_type);
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::ETAG, etag),
            cache,
        ],
        asset.body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hrefs_carry_the_content_hash() {
        let css = css_href().to_string();
        assert!(css.starts_with("/assets/app.css?v="));
        assert_eq!(css.len(), "/assets/app.css?v=".len() + 16);
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
    }
}
