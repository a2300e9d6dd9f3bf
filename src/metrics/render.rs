//! The text exposition, rendered once for every scrape that waited while it was rendered.
//!
//! Rendering thousands of series takes milliseconds to tens of them, so `/metrics` renders on
//! a blocking thread (`spawn_blocking` in the API), never on the workers that run rounds. A
//! scrape reuses a rendering that *started after the scrape arrived*: it shows everything
//! that happened before the scrape, so sharing it is never stale, and concurrent scrapes (two
//! Prometheus servers, a curl) cost one render between them.

use std::sync::Mutex;
use std::time::Instant;

use axum::body::Bytes;
use prometheus::{Encoder, TextEncoder};

use super::Metrics;

/// The last rendering and when it started. The lock is held while rendering, so scrapes that
/// arrive meanwhile wait for it and take its result instead of rendering again.
#[derive(Default)]
pub(super) struct Cache(Mutex<Option<(Instant, Bytes)>>);

impl Metrics {
    /// The exposition in Prometheus text format, rendered now.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let families = self.0.registry.gather();
        if TextEncoder::new().encode(&families, &mut buf).is_err() {
            return String::new();
        }
        let mut text = String::from_utf8(buf).unwrap_or_default();
        // The per-watch families, written directly (most of the text at scale).
        self.0.watches.render(&mut text);
        text
    }

    /// The exposition for a scrape that arrived at `asked`: a rendering started after that
    /// instant if there is one, else a new one. Blocks while another rendering runs: call it
    /// from a blocking thread.
    pub fn render_since(&self, asked: Instant) -> Bytes {
        let mut last = self.0.rendered.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((started, text)) = last.as_ref() {
            if *started > asked {
                return text.clone();
            }
        }
        let started = Instant::now();
        let text = Bytes::from(self.render());
        *last = Some((started, text.clone()));
        text
    }
}
