//! The score chart, one layout drawn two ways: [`score_chart`] as SVG for browsers (the
//! dashboard) and [`score_png`] as a PNG for mail, since Gmail and Outlook draw no SVG.
//! Both are built from numbers and dates only; no text from a brief reaches them.

mod font;
mod png;
mod raster;
#[cfg(test)]
mod tests;

use tam_core::comms::ScorePoint;
use tam_core::{SignedDuration, Timestamp};

use raster::Canvas;

/// The name the review's HTML gives the chart image (`cid:health-chart`).
pub const CID: &str = "health-chart";

/// Width of the chart in pixels.
pub const WIDTH: u32 = 560;
/// Height of the chart in pixels.
pub const HEIGHT: u32 = 200;

/// The plot area; the margins hold the axis labels (left, bottom) and the threshold names
/// (right). Its height of 160 puts every score on a whole pixel per 5 points.
const LEFT: i32 = 30;
const RIGHT: i32 = 500;
const TOP: i32 = 16;
const BOTTOM: i32 = 176;

/// How many dates the x axis names (fewer when the period is too short for distinct dates).
const DATE_TICKS: i32 = 5;

/// The scores whose lines the chart draws: SPEC's green and red thresholds.
const GREEN_AT: u8 = 70;
const RED_AT: u8 = 40;

const BACKGROUND: u8 = 0;
const PLOT: u8 = 1;
const GRID: u8 = 2;
const TEXT: u8 = 3;
const RED: u8 = 4;
const GREEN: u8 = 5;
const SCORE: u8 = 6;
const PALETTE: [[u8; 3]; 7] = [
    [0xff, 0xff, 0xff],
    [0xf6, 0xf8, 0xfa],
    [0xd0, 0xd7, 0xde],
    [0x57, 0x60, 0x6a],
    [0xd1, 0x24, 0x2f],
    [0x2d, 0xa4, 0x4e],
    [0x1f, 0x6f, 0xeb],
];

fn hex(index: u8) -> String {
    let [r, g, b] = PALETTE[usize::from(index)];
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Where scores and instants land in the plot.
struct Frame {
    from: Timestamp,
    span: f64,
}

impl Frame {
    fn new(from: Timestamp, to: Timestamp) -> Frame {
        Frame { from, span: to.duration_since(from).as_secs_f64().max(1.0) }
    }

    fn x(&self, t: Timestamp) -> f64 {
        let fraction = (t.duration_since(self.from).as_secs_f64() / self.span).clamp(0.0, 1.0);
        f64::from(LEFT) + fraction * f64::from(RIGHT - LEFT)
    }

    fn y(score: u8) -> f64 {
        f64::from(BOTTOM) - f64::from(score.min(100)) / 100.0 * f64::from(BOTTOM - TOP)
    }
}

/// A date on the x axis: where, and its label (`Mar 01`).
#[derive(Debug, Clone, PartialEq)]
struct Tick {
    x: f64,
    label: String,
}

/// Evenly spaced instants across the period, each labelled with its (UTC) date; a date that
/// would repeat its neighbour's is left out.
fn date_ticks(from: Timestamp, to: Timestamp) -> Vec<Tick> {
    let frame = Frame::new(from, to);
    let span = to.duration_since(from).as_secs_f64().max(0.0);
    let mut ticks: Vec<Tick> = Vec::new();
    for i in 0..DATE_TICKS {
        let offset = SignedDuration::from_secs_f64(span * f64::from(i) / f64::from(DATE_TICKS - 1));
        let Ok(t) = from.checked_add(offset) else { continue };
        let label = t.strftime("%b %d").to_string();
        if ticks.last().is_none_or(|last| last.label != label) {
            ticks.push(Tick { x: frame.x(t), label });
        }
    }
    ticks
}

/// The left edge of a date label centred on `x`, kept inside the image.
fn date_label_left(tick: &Tick) -> i32 {
    let w = font::text_width(&tick.label);
    (tick.x.round() as i32 - w / 2).clamp(0, WIDTH as i32 - w)
}

/// The y-axis labels and the threshold lines with their names.
const Y_LABELS: [u8; 3] = [0, 50, 100];
const THRESHOLDS: [(u8, &str, u8); 2] = [(GREEN_AT, "70 green", GREEN), (RED_AT, "40 red", RED)];

/// The chart as a PNG of [`WIDTH`] x [`HEIGHT`]: the 0..100 band with its 40 and 70 lines
/// named, the period's dates below, one point per scan joined by a line.
pub fn score_png(history: &[ScorePoint], from: Timestamp, to: Timestamp) -> Vec<u8> {
    let canvas = raster(history, from, to);
    png::encode(WIDTH, HEIGHT, &PALETTE, &canvas.pixels)
}

fn raster(history: &[ScorePoint], from: Timestamp, to: Timestamp) -> Canvas {
    let frame = Frame::new(from, to);
    let mut c = Canvas::new(WIDTH as i32, HEIGHT as i32, BACKGROUND);
    c.fill(LEFT, TOP, RIGHT, BOTTOM, PLOT);
    let y = |score: u8| Frame::y(score).round() as i32;
    // Text glyphs are 7 pixels tall above the baseline: start 3 above a line to centre on it.
    for score in Y_LABELS {
        let label = score.to_string();
        c.text(LEFT - 5 - font::text_width(&label), y(score) - 3, &label, TEXT);
        c.hline(LEFT - 3, LEFT - 1, y(score), GRID, None);
    }
    c.hline(LEFT, RIGHT, y(50), GRID, Some((1, 3)));
    for (score, label, colour) in THRESHOLDS {
        c.hline(LEFT, RIGHT, y(score), colour, Some((4, 3)));
        c.text(RIGHT + 5, y(score) - 3, label, colour);
    }
    for edge in
        [(LEFT, TOP, RIGHT, TOP), (LEFT, BOTTOM, RIGHT, BOTTOM), (LEFT, TOP, LEFT, BOTTOM), (RIGHT, TOP, RIGHT, BOTTOM)]
    {
        c.fill(edge.0, edge.1, edge.2, edge.3, GRID);
    }
    for tick in date_ticks(from, to) {
        let x = tick.x.round() as i32;
        c.fill(x, BOTTOM + 1, x, BOTTOM + 3, GRID);
        c.text(date_label_left(&tick), BOTTOM + 6, &tick.label, TEXT);
    }
    let points: Vec<(i32, i32)> = history.iter().map(|p| (frame.x(p.as_of).round() as i32, y(p.score))).collect();
    for pair in points.windows(2) {
        c.line((pair[0].0, pair[0].1), (pair[1].0, pair[1].1), SCORE);
    }
    for &(x, y) in &points {
        c.dot(x, y, 3, SCORE);
    }
    c
}

/// The same chart as inline SVG, for a browser: the dashboard.
pub fn score_chart(history: &[ScorePoint], from: Timestamp, to: Timestamp) -> String {
    score_chart_noted(history, &[], from, to)
}

/// [`score_chart`] whose points each carry a note (`notes[i]` for `history[i]`): a page shows it
/// when the point is hovered or reached with the keyboard.
pub fn score_chart_noted(history: &[ScorePoint], notes: &[String], from: Timestamp, to: Timestamp) -> String {
    let frame = Frame::new(from, to);
    let (w, h) = (WIDTH, HEIGHT);
    let text = |x: f64, y: f64, anchor: &str, fill: &str, label: &str| {
        format!(r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" fill="{fill}">{label}</text>"#)
    };
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="Health score over the period" font-family="sans-serif" font-size="10"><rect width="{w}" height="{h}" fill="{bg}"/><rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="{plot}" stroke="{grid}"/>"#,
        bg = hex(BACKGROUND),
        plot = hex(PLOT),
        grid = hex(GRID),
        pw = RIGHT - LEFT,
        ph = BOTTOM - TOP,
    );
    for score in Y_LABELS {
        s.push_str(&text(f64::from(LEFT - 5), Frame::y(score) + 3.5, "end", &hex(TEXT), &score.to_string()));
    }
    s.push_str(&format!(
        r#"<line x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" stroke="{}" stroke-dasharray="1 3"/>"#,
        hex(GRID),
        y = Frame::y(50)
    ));
    for (score, label, colour) in THRESHOLDS {
        s.push_str(&format!(
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" stroke="{c}" stroke-dasharray="4 3"/>"#,
            c = hex(colour),
            y = Frame::y(score)
        ));
        s.push_str(&text(f64::from(RIGHT + 5), Frame::y(score) + 3.5, "start", &hex(colour), label));
    }
    for tick in date_ticks(from, to) {
        s.push_str(&format!(
            r#"<line x1="{x:.1}" y1="{BOTTOM}" x2="{x:.1}" y2="{}" stroke="{}"/>"#,
            BOTTOM + 3,
            hex(GRID),
            x = tick.x
        ));
        s.push_str(&text(tick.x, f64::from(BOTTOM + 14), "middle", &hex(TEXT), &tick.label));
    }
    let points: Vec<String> =
        history.iter().map(|p| format!("{:.1},{:.1}", frame.x(p.as_of), Frame::y(p.score))).collect();
    s.push_str(&format!(
        r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
        hex(SCORE),
        points.join(" ")
    ));
    for (i, p) in history.iter().enumerate() {
        let (x, y, fill) = (frame.x(p.as_of), Frame::y(p.score), hex(SCORE));
        match notes.get(i) {
            Some(note) => {
                let note = note.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
                s.push_str(&format!(
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{fill}" tabindex="0" aria-label="{note}"><title>{note}</title></circle>"#
                ));
            }
            None => s.push_str(&format!(r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{fill}"/>"#)),
        }
    }
    s.push_str("</svg>");
    s
}
