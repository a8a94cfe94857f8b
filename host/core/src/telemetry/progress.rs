//! Progress of long steps (compiling plugins at start-up, replaying a spill) on a terminal.
//!
//! A long step reports itself as ordinary `info` events carrying `step` and `of` fields
//! (`tracing::info!(step = 3, of = 7, plugin = "auth", "plugin loaded")`). When standard error
//! is not a terminal (a service manager, a pipe, a file) those are plain log lines like any
//! other. On a terminal, [`ProgressLayer`] draws them as one line rewritten in place
//! (`plugin loaded [3/7] plugin=auth`), ended when the step reaches its total, and the log
//! layer skips them ([`is_progress`]).

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};

/// Whether events of `meta` are progress reports (they have `step` and `of` fields).
pub fn is_progress(meta: &Metadata<'_>) -> bool {
    meta.is_event() && meta.fields().field("step").is_some() && meta.fields().field("of").is_some()
}

/// The progress line on screen, if one is open (drawn and not yet ended), shared by
/// [`ProgressLayer`] and the log lines' [`AroundProgress`] writer.
pub type OpenLine = Arc<Mutex<Option<String>>>;

/// Draws progress events on `W` (standard error in the binary) as one line rewritten in place.
#[derive(Debug)]
pub struct ProgressLayer<W> {
    out: W,
    open: OpenLine,
}

impl<W> ProgressLayer<W> {
    /// A layer drawing on `out`; `open` is shared with the log lines' [`AroundProgress`].
    pub fn new(out: W, open: OpenLine) -> Self {
        ProgressLayer { out, open }
    }
}

/// The log lines' writer while progress is drawn: a log line first erases an open progress
/// line, then the line is drawn again below it, so the two never run together.
#[derive(Debug, Clone)]
pub struct AroundProgress<W> {
    out: W,
    open: OpenLine,
}

impl<W> AroundProgress<W> {
    /// Log lines to `out`, around the progress line `open` tracks.
    pub fn new(out: W, open: OpenLine) -> Self {
        AroundProgress { out, open }
    }
}

impl<'a, W: MakeWriter<'a>> MakeWriter<'a> for AroundProgress<W> {
    type Writer = LogLine<W::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        LogLine {
            out: self.out.make_writer(),
            open: self.open.clone(),
            text: Vec::new(),
        }
    }
}

/// One log line, written out when dropped (the formatter writes a line in pieces).
pub struct LogLine<W: std::io::Write> {
    out: W,
    open: OpenLine,
    text: Vec<u8>,
}

impl<W: std::io::Write> std::io::Write for LogLine<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: std::io::Write> Drop for LogLine<W> {
    fn drop(&mut self) {
        let open = self.open.lock().ok().and_then(|o| o.clone());
        match open {
            Some(line) => {
                let _ = self.out.write_all(b"\r\x1b[2K");
                let _ = self.out.write_all(&self.text);
                let _ = self.out.write_all(line.as_bytes());
            }
            None => {
                let _ = self.out.write_all(&self.text);
            }
        }
        let _ = self.out.flush();
    }
}

impl<S: Subscriber, W: for<'a> MakeWriter<'a> + 'static> Layer<S> for ProgressLayer<W> {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if !is_progress(event.metadata()) {
            return;
        }
        let mut report = Report::default();
        event.record(&mut report);
        let done = report.step >= report.of;
        let line = report.line();
        let mut err = self.out.make_writer();
        // `\r` and "erase line": the next report draws over this one.
        let _ = write!(err, "\r\x1b[2K{line}");
        if done {
            let _ = writeln!(err);
        }
        let _ = err.flush();
        if let Ok(mut open) = self.open.lock() {
            *open = (!done).then_some(line);
        }
    }
}

/// What one progress event says.
#[derive(Debug, Default)]
struct Report {
    message: String,
    step: u64,
    of: u64,
    rest: String,
}

impl Report {
    /// `MESSAGE [STEP/OF] FIELD=VALUE ...`
    fn line(&self) -> String {
        format!("{} [{}/{}]{}", self.message, self.step, self.of, self.rest)
    }
}

impl Visit for Report {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "step" => self.step = value,
            "of" => self.of = value,
            name => {
                let _ = write!(self.rest, " {name}={value}");
            }
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, value.max(0) as u64);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    #[test]
    fn progress_events_redraw_one_line_and_end_it_at_the_total() {
        let buffer = Buffer::default();
        let open = OpenLine::default();
        let logs = tracing_subscriber::fmt::layer()
            .without_time()
            .with_ansi(false)
            .with_target(false)
            .with_level(false)
            .with_writer(AroundProgress::new(buffer.clone(), open.clone()))
            .with_filter(tracing_subscriber::filter::filter_fn(|m| !is_progress(m)));
        let subscriber = tracing_subscriber::registry()
            .with(logs)
            .with(ProgressLayer::new(buffer.clone(), open));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(step = 1u64, of = 2u64, plugin = "a", "plugin loaded");
            tracing::info!("a log line while the progress line is open");
            tracing::info!(step = 2u64, of = 2u64, plugin = %"b", "plugin loaded");
            tracing::info!("a log line after it ended");
        });
        let drawn = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            drawn,
            "\r\x1b[2Kplugin loaded [1/2] plugin=a\
             \r\x1b[2Ka log line while the progress line is open\nplugin loaded [1/2] plugin=a\
             \r\x1b[2Kplugin loaded [2/2] plugin=b\n\
             a log line after it ended\n"
        );
    }

    #[test]
    fn a_report_reads_message_step_total_and_the_other_fields() {
        let report = Report {
            message: "plugin loaded".into(),
            step: 3,
            of: 7,
            rest: " plugin=auth".into(),
        };
        assert_eq!(report.line(), "plugin loaded [3/7] plugin=auth");
    }
}
