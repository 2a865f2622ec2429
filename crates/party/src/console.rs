//! The room's `tracing` events as lines on workerd's console (`console.log` / `console.error`),
//! which `wrangler tail` and Miniflare show.

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = log)]
    fn console_log(line: &str);
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(line: &str);
}

/// One formatted event, written to the console when dropped.
pub struct Line {
    error: bool,
    text: Vec<u8>,
}

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.text);
        let text = text.trim_end();
        if text.is_empty() {
            return;
        }
        if self.error {
            console_error(text);
        } else {
            console_log(text);
        }
    }
}

pub struct Console;

impl<'a> MakeWriter<'a> for Console {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line {
            error: false,
            text: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Line {
        Line {
            error: *meta.level() <= tracing::Level::WARN,
            text: Vec::new(),
        }
    }
}

/// Installs the console subscriber once (later calls do nothing).
pub fn install() {
    let _ = tracing_subscriber::fmt()
        .with_writer(Console)
        .without_time()
        .with_ansi(false)
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .try_init();
}
