//! Static files and their cache headers: hashed files under `/pkg` are immutable for a year;
//! HTML is revalidated on every load.

use std::convert::Infallible;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::Request;

use axum::http::{HeaderValue, header};
use axum::response::Response;
use leptos::config::LeptosOptions;
use tower::Layer;
use tower_http::services::ServeDir;
use tower_http::set_header::{SetResponseHeader, SetResponseHeaderLayer};

const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");

/// The hashed wasm, JS and CSS (`/pkg/...`), cacheable forever. A release build ships each
/// with `.br` and `.gz` siblings compressed at the highest levels (`.ci/dist`), served to
/// browsers that accept them; the compression layer leaves those alone and compresses the rest.
pub fn pkg(options: &LeptosOptions) -> SetResponseHeader<ServeDir, HeaderValue> {
    let dir = Path::new(options.site_root.as_ref()).join(options.site_pkg_dir.as_ref());
    let files = ServeDir::new(dir).precompressed_br().precompressed_gzip();
    SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, IMMUTABLE).layer(files)
}

/// Other files of the site (favicon and the like), revalidated by the browser; anything else
/// goes to `not_found` (the app's 404 page).
pub fn public<H, F>(
    options: &LeptosOptions,
    not_found: H,
) -> SetResponseHeader<ServeDir<NotFound<H>>, HeaderValue>
where
    H: Fn(Request<Body>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let files = ServeDir::new(options.site_root.as_ref()).fallback(NotFound(not_found));
    SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, NO_CACHE).layer(files)
}

/// A render function as a tower service, for `ServeDir`'s fallback.
#[derive(Clone)]
pub struct NotFound<H>(H);

impl<H, F> tower::Service<Request<Body>> for NotFound<H>
where
    H: Fn(Request<Body>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let render = (self.0)(req);
        Box::pin(async move { Ok(render.await) })
    }
}

/// Marks HTML responses `no-cache` so a new release is picked up on the next load.
pub async fn html_no_cache(mut response: Response) -> Response {
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, NO_CACHE);
    }
    response
}
