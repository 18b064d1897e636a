//! Small, self-contained SVG charts for reports: line charts (ROC, precision–recall,
//! calibration), grouped bar charts (per-group rates, histograms) and a confusion
//! matrix. Text is left to the viewer's fonts, so nothing here needs system fonts —
//! the charts render the same from a bare container — and the files stay a few KB.

use std::fmt::Write;

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 56.0;
/// Colour-blind-safe palette (Okabe–Ito).
const COLOURS: [&str; 6] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
];
/// Points kept per curve; longer curves are thinned evenly (end points kept).
const MAX_POINTS: usize = 1000;

/// XML-escapes text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Starts an SVG; `extra` adds room below the plot area (for rotated labels).
fn open(out: &mut String, title: &str, extra: f64) {
    let height = HEIGHT + extra;
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/><text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
}

/// Labels longer than this are shortened (the full text stays as a tooltip).
const LABEL_CHARS: usize = 22;

fn px(x: f64, (lo, hi): (f64, f64)) -> f64 {
    LEFT + (x - lo) / (hi - lo).max(f64::MIN_POSITIVE) * (WIDTH - LEFT - RIGHT)
}

fn py(y: f64, (lo, hi): (f64, f64)) -> f64 {
    HEIGHT - BOTTOM - (y - lo) / (hi - lo).max(f64::MIN_POSITIVE) * (HEIGHT - TOP - BOTTOM)
}

/// Axes with five ticks each and their labels.
fn axes(out: &mut String, x: (f64, f64), y: (f64, f64), x_label: &str, y_label: &str) {
    for i in 0..=5 {
        let (tx, ty) = (
            x.0 + (x.1 - x.0) * i as f64 / 5.0,
            y.0 + (y.1 - y.0) * i as f64 / 5.0,
        );
        let _ = write!(
            out,
            r##"<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#eee"/><text x="{0}" y="{3}" text-anchor="middle">{4}</text><line x1="{5}" y1="{6}" x2="{7}" y2="{6}" stroke="#eee"/><text x="{8}" y="{9}" text-anchor="end">{10}</text>"##,
            px(tx, x),
            TOP,
            HEIGHT - BOTTOM,
            HEIGHT - BOTTOM + 16.0,
            tick(tx),
            LEFT,
            py(ty, y),
            WIDTH - RIGHT,
            LEFT - 6.0,
            py(ty, y) + 4.0,
            tick(ty)
        );
    }
    let _ = write!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none" stroke="#444"/><text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate(16 {}) rotate(-90)" text-anchor="middle">{}</text>"##,
        WIDTH - LEFT - RIGHT,
        HEIGHT - TOP - BOTTOM,
        (LEFT + WIDTH - RIGHT) / 2.0,
        HEIGHT - 14.0,
        escape(x_label),
        (TOP + HEIGHT - BOTTOM) / 2.0,
        escape(y_label)
    );
}

fn tick(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{:.2}", v)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

fn legend(out: &mut String, names: &[&str]) {
    for (i, name) in names.iter().enumerate() {
        let y = TOP + 14.0 + 16.0 * i as f64;
        let _ = write!(
            out,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            WIDTH - RIGHT - 150.0,
            y - 9.0,
            COLOURS[i % COLOURS.len()],
            WIDTH - RIGHT - 134.0,
            y,
            escape(name)
        );
    }
}

/// Evenly thinned points (first and last kept).
fn thin(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    if points.len() <= MAX_POINTS {
        return points.to_vec();
    }
    let step = (points.len() - 1) as f64 / (MAX_POINTS - 1) as f64;
    (0..MAX_POINTS)
        .map(|i| points[((i as f64 * step).round() as usize).min(points.len() - 1)])
        .collect()
}

/// One line of a line chart.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: &'a [(f64, f64)],
    /// Draw markers at the points (for a few points, like calibration bins).
    pub markers: bool,
}

/// A line chart on fixed axis ranges, with an optional dashed diagonal.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    x: (f64, f64),
    y: (f64, f64),
    series: &[Series<'_>],
    diagonal: bool,
) -> String {
    let mut out = String::new();
    open(&mut out, title, 0.0);
    axes(&mut out, x, y, x_label, y_label);
    if diagonal {
        let _ = write!(
            out,
            r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999" stroke-dasharray="4 4"/>"##,
            px(x.0, x),
            py(y.0, y),
            px(x.1, x),
            py(y.1, y)
        );
    }
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: String = thin(s.points)
            .iter()
            .map(|&(a, b)| format!("{:.1},{:.1} ", px(a, x), py(b, y)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.trim_end()
        );
        if s.markers {
            for &(a, b) in s.points {
                let _ = write!(
                    out,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                    px(a, x),
                    py(b, y)
                );
            }
        }
    }
    legend(&mut out, &series.iter().map(|s| s.name).collect::<Vec<_>>());
    out.push_str("</svg>\n");
    out
}

/// Grouped bars: one group of bars per category, one bar per series (`None` = no bar).
pub fn bar_chart(
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(&str, Vec<Option<f64>>)],
    y_max: f64,
) -> String {
    let mut out = String::new();
    // Many or long labels are rotated, with room made for them below the plot.
    let longest = categories
        .iter()
        .map(|c| c.chars().count().min(LABEL_CHARS))
        .max()
        .unwrap_or(0);
    let rotate = categories.len() > 6 || longest * categories.len() > 60;
    open(
        &mut out,
        title,
        if rotate { 6.0 * longest as f64 } else { 0.0 },
    );
    let y = (0.0, y_max.max(f64::MIN_POSITIVE));
    // Category axis: draw y grid and labels only.
    for i in 0..=5 {
        let ty = y.1 * i as f64 / 5.0;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{0}" x2="{1}" y2="{0}" stroke="#eee"/><text x="{2}" y="{3}" text-anchor="end">{4}</text>"##,
            py(ty, y),
            WIDTH - RIGHT,
            LEFT - 6.0,
            py(ty, y) + 4.0,
            tick(ty)
        );
    }
    let _ = write!(
        out,
        r#"<text transform="translate(16 {}) rotate(-90)" text-anchor="middle">{}</text>"#,
        (TOP + HEIGHT - BOTTOM) / 2.0,
        escape(y_label)
    );
    let slot = (WIDTH - LEFT - RIGHT) / categories.len().max(1) as f64;
    let bar = slot * 0.8 / series.len().max(1) as f64;
    for (c, category) in categories.iter().enumerate() {
        let x0 = LEFT + slot * c as f64 + slot * 0.1;
        for (s, (_, values)) in series.iter().enumerate() {
            if let Some(v) = values.get(c).copied().flatten() {
                let top = py(v.min(y.1), y);
                let _ = write!(
                    out,
                    r#"<rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
                    x0 + bar * s as f64,
                    bar,
                    (HEIGHT - BOTTOM - top).max(0.0),
                    COLOURS[s % COLOURS.len()]
                );
            }
        }
        let shown: String = if category.chars().count() > LABEL_CHARS {
            category
                .chars()
                .take(LABEL_CHARS - 1)
                .chain(['…'])
                .collect()
        } else {
            category.clone()
        };
        let (x, y) = (x0 + slot * 0.4, HEIGHT - BOTTOM + 14.0);
        let placement = if rotate {
            format!(r#"x="{x:.1}" y="{y}" text-anchor="end" transform="rotate(-40 {x:.1} {y})""#)
        } else {
            format!(r#"x="{x:.1}" y="{y}" text-anchor="middle""#)
        };
        let _ = write!(
            out,
            r#"<text {placement} font-size="10"><title>{}</title>{}</text>"#,
            escape(category),
            escape(&shown)
        );
    }
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="{0}" x2="{1}" y2="{0}" stroke="#444"/>"##,
        HEIGHT - BOTTOM,
        WIDTH - RIGHT
    );
    legend(&mut out, &series.iter().map(|s| s.0).collect::<Vec<_>>());
    out.push_str("</svg>\n");
    out
}

/// A 2×2 confusion matrix with counts and shares.
pub fn confusion_matrix(title: &str, tn: u64, fp: u64, fn_: u64, tp: u64) -> String {
    let mut out = String::new();
    open(&mut out, title, 0.0);
    let total = (tn + fp + fn_ + tp).max(1) as f64;
    let max = tn.max(fp).max(fn_).max(tp).max(1) as f64;
    let cell = 150.0;
    let (x0, y0) = ((WIDTH - 2.0 * cell) / 2.0 + 20.0, TOP + 40.0);
    for (row, (actual, cells)) in [("actual 0", [tn, fp]), ("actual 1", [fn_, tp])]
        .iter()
        .enumerate()
    {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end">{actual}</text>"#,
            x0 - 8.0,
            y0 + cell * (row as f64 + 0.5)
        );
        for (col, &count) in cells.iter().enumerate() {
            let shade = 255.0 - 180.0 * count as f64 / max;
            let _ = write!(
                out,
                r##"<rect x="{0}" y="{1}" width="{cell}" height="{cell}" fill="rgb({2:.0},{3:.0},255)" stroke="#444"/><text x="{4}" y="{5}" text-anchor="middle" font-size="18">{count}</text><text x="{4}" y="{6}" text-anchor="middle">{7:.1} %</text>"##,
                x0 + cell * col as f64,
                y0 + cell * row as f64,
                shade,
                shade,
                x0 + cell * (col as f64 + 0.5),
                y0 + cell * (row as f64 + 0.5),
                y0 + cell * (row as f64 + 0.5) + 20.0,
                100.0 * count as f64 / total
            );
        }
    }
    for (col, name) in ["predicted 0", "predicted 1"].iter().enumerate() {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">{name}</text>"#,
            x0 + cell * (col as f64 + 0.5),
            y0 - 8.0
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_small_escaped_svg() {
        let points: Vec<(f64, f64)> = (0..5000)
            .map(|i| (i as f64 / 4999.0, (i as f64 / 4999.0).sqrt()))
            .collect();
        let svg = line_chart(
            "ROC <test>",
            "FPR",
            "TPR",
            (0.0, 1.0),
            (0.0, 1.0),
            &[Series {
                name: "model",
                points: &points,
                markers: false,
            }],
            true,
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("ROC &lt;test&gt;"));
        assert!(
            svg.len() < 40_000,
            "thinned to {MAX_POINTS} points: {} bytes",
            svg.len()
        );
        let bars = bar_chart(
            "rates",
            "rate",
            &["a & b".into(), "c".into()],
            &[("selection", vec![Some(0.2), None])],
            1.0,
        );
        assert!(bars.contains("a &amp; b") && bars.matches("<rect x=").count() >= 2);
        let cm = confusion_matrix("confusion", 5, 1, 2, 3);
        assert!(cm.contains(">5<") && cm.contains("45.5 %"));
    }
}
