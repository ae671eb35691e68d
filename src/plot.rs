//! Self-contained SVG figures: line plots (optionally log-scaled, with confidence bands) and
//! diverging heat maps. No dependencies; the output opens in any browser.

use autodiff::Matrix;
use std::fmt::Write;

const PALETTE: [&str; 8] =
    ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
// Canvas size and margins (left, right, top, bottom) of a line plot, in pixels.
const W: f64 = 820.0;
const H: f64 = 440.0;
const L: f64 = 80.0;
const R: f64 = 290.0;
const T: f64 = 40.0;
const B: f64 = 55.0;

/// One curve of a [`LinePlot`].
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// `(x, y)` points; non-finite ones (and non-positive ones on log axes) are skipped.
    pub points: Vec<(f64, f64)>,
    /// Dashed instead of solid.
    pub dashed: bool,
    /// Optional `(x, lo, hi)` band drawn under the curve.
    pub band: Vec<(f64, f64, f64)>,
}

impl Series {
    /// A solid series.
    pub fn new(name: &str, points: Vec<(f64, f64)>) -> Self {
        Series { name: name.into(), points, ..Default::default() }
    }
    /// A dashed series.
    pub fn dashed(name: &str, points: Vec<(f64, f64)>) -> Self {
        Series { name: name.into(), points, dashed: true, ..Default::default() }
    }
}

/// A line plot.
#[derive(Clone, Debug, Default)]
pub struct LinePlot {
    /// Title.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// Log-scale x.
    pub log_x: bool,
    /// Log-scale y.
    pub log_y: bool,
    /// The curves.
    pub series: Vec<Series>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn nice_ticks(lo: f64, hi: f64, log: bool) -> Vec<f64> {
    if log {
        let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        let step = ((b - a) / 8).max(1);
        // Few decades: label 1, 2 and 5 of each decade so the axis is still readable.
        let mantissas: &[f64] = if b - a <= 2 { &[1.0, 2.0, 5.0] } else { &[1.0] };
        return (a..=b)
            .step_by(step as usize)
            .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|t| *t >= lo * 0.999 && *t <= hi * 1.001)
            .collect();
    }
    let span = (hi - lo).max(1e-300);
    let raw = span / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step =
        [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + 1e-9 * span {
        out.push(if t.abs() < 1e-12 * span { 0.0 } else { t });
        t += step;
    }
    out
}

fn fmt_tick(t: f64) -> String {
    if t == 0.0 {
        "0".into()
    } else if t.abs() >= 1e4 || t.abs() < 1e-2 {
        format!("{t:.0e}")
    } else {
        format!("{}", (t * 1e6).round() / 1e6)
    }
}

impl LinePlot {
    fn keep(&self, x: f64, y: f64) -> bool {
        x.is_finite() && y.is_finite() && (!self.log_x || x > 0.0) && (!self.log_y || y > 0.0)
    }

    /// The figure as an SVG document.
    pub fn to_svg(&self) -> String {
        let pts: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| {
                s.points
                    .iter()
                    .copied()
                    .chain(s.band.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]))
            })
            .filter(|&(x, y)| self.keep(x, y))
            .collect();
        let tr = |v: f64, log: bool| if log { v.log10() } else { v };
        let (mut x0, mut x1, mut y0, mut y1) =
            (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y) in &pts {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if pts.is_empty() {
            (x0, x1, y0, y1) = (1.0, 2.0, 1.0, 2.0);
        }
        if x1 <= x0 {
            x1 = x0 * 1.5 + 1.0;
        }
        if y1 <= y0 {
            y1 = if self.log_y { y0 * 10.0 } else { y0 + 1.0 };
        }
        // On a log axis, eight decades below the top are enough: lower values are drawn at the
        // bottom edge instead of squashing every curve into the top of the figure.
        if self.log_y {
            y0 = y0.max(y1 * 1e-8);
        }
        let (tx0, tx1, ty0, ty1) =
            (tr(x0, self.log_x), tr(x1, self.log_x), tr(y0, self.log_y), tr(y1, self.log_y));
        let px = |x: f64| L + (tr(x, self.log_x) - tx0) / (tx1 - tx0) * (W - L - R);
        let py = |y: f64| H - B - (tr(y.max(y0), self.log_y) - ty0) / (ty1 - ty0) * (H - T - B);
        let mut s = String::new();
        let _ = write!(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">");
        let _ = write!(s, "<rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"white\"/>");
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>",
            W / 2.0,
            escape(&self.title)
        );
        let _ = write!(
            s,
            "<rect x=\"{L}\" y=\"{T}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>",
            W - L - R,
            H - T - B
        );
        for t in nice_ticks(x0, x1, self.log_x) {
            let x = px(t);
            let _ = write!(s, "<line x1=\"{x:.1}\" y1=\"{T}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#ddd\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>", H - B, H - B + 16.0, fmt_tick(t));
        }
        for t in nice_ticks(y0, y1, self.log_y) {
            let y = py(t);
            let _ = write!(s, "<line x1=\"{L}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>", W - R, L - 6.0, y + 4.0, fmt_tick(t));
        }
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            (L + W - R) / 2.0,
            H - 12.0,
            escape(&self.x_label)
        );
        let _ = write!(s, "<text x=\"18\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {})\">{}</text>", (T + H - B) / 2.0, (T + H - B) / 2.0, escape(&self.y_label));
        for (i, series) in self.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let band: Vec<_> = series
                .band
                .iter()
                .filter(|&&(x, lo, hi)| self.keep(x, lo) && self.keep(x, hi))
                .collect();
            if !band.is_empty() {
                let upper = band.iter().map(|&&(x, _, hi)| format!("{:.1},{:.1}", px(x), py(hi)));
                let lower =
                    band.iter().rev().map(|&&(x, lo, _)| format!("{:.1},{:.1}", px(x), py(lo)));
                let _ = write!(s, "<polygon points=\"{}\" fill=\"{color}\" fill-opacity=\"0.18\" stroke=\"none\"/>", upper.chain(lower).collect::<Vec<_>>().join(" "));
            }
            let line: Vec<String> = series
                .points
                .iter()
                .filter(|&&(x, y)| self.keep(x, y))
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            let dash = if series.dashed { " stroke-dasharray=\"6 4\"" } else { "" };
            let _ = write!(s, "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>", line.join(" "));
            let ly = T + 14.0 + 20.0 * i as f64;
            let _ = write!(s, "<line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/><text x=\"{}\" y=\"{}\">{}</text>", W - R + 10.0, W - R + 34.0, W - R + 40.0, ly + 4.0, escape(&series.name));
        }
        s.push_str("</svg>\n");
        s
    }
}

/// A heat map of a matrix with a diverging blue–white–red scale symmetric around 0.
#[derive(Clone, Debug)]
pub struct Heatmap<'a> {
    /// Title.
    pub title: String,
    /// The matrix.
    pub matrix: &'a Matrix<f64>,
    /// Row/column indices where separators are drawn (e.g. layer block boundaries).
    pub separators: Vec<usize>,
}

/// The diverging color of `v ∈ [−1, 1]`: blue for −1, white for 0, red for +1.
pub fn diverging_color(v: f64) -> String {
    let v = v.clamp(-1.0, 1.0);
    let (r, g, b) = if v >= 0.0 {
        (255.0, 255.0 * (1.0 - v), 255.0 * (1.0 - v))
    } else {
        (255.0 * (1.0 + v), 255.0 * (1.0 + v), 255.0)
    };
    format!("#{:02x}{:02x}{:02x}", r.round() as u8, g.round() as u8, b.round() as u8)
}

impl Heatmap<'_> {
    /// The figure as an SVG document.
    pub fn to_svg(&self) -> String {
        let (rows, cols) = (self.matrix.rows(), self.matrix.cols());
        let size = 360.0;
        let cell = size / rows.max(cols).max(1) as f64;
        let scale = self.matrix.data().iter().fold(0.0_f64, |m, x| m.max(x.abs())).max(1e-300);
        let (ox, oy) = (20.0, 40.0);
        let mut s = String::new();
        let _ = write!(s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">", size + 120.0, size + 60.0);
        let _ = write!(
            s,
            "<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"white\"/>",
            size + 120.0,
            size + 60.0
        );
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"14\">{}</text>",
            ox + size / 2.0,
            escape(&self.title)
        );
        for i in 0..rows {
            for j in 0..cols {
                let _ = write!(
                    s,
                    "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"{}\"/>",
                    ox + j as f64 * cell,
                    oy + i as f64 * cell,
                    cell,
                    cell,
                    diverging_color(self.matrix[(i, j)] / scale)
                );
            }
        }
        for &k in &self.separators {
            let p = k as f64 * cell;
            let _ = write!(s, "<line x1=\"{:.1}\" y1=\"{oy}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#444\" stroke-width=\"0.8\"/>", ox + p, ox + p, oy + rows as f64 * cell);
            let _ = write!(s, "<line x1=\"{ox}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#444\" stroke-width=\"0.8\"/>", oy + p, ox + cols as f64 * cell, oy + p);
        }
        for k in 0..=20 {
            let v = 1.0 - k as f64 / 10.0;
            let _ = write!(
                s,
                "<rect x=\"{}\" y=\"{:.1}\" width=\"16\" height=\"{:.1}\" fill=\"{}\"/>",
                ox + size + 20.0,
                oy + k as f64 * size / 21.0,
                size / 21.0 + 0.5,
                diverging_color(v)
            );
        }
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\">{:.2e}</text><text x=\"{}\" y=\"{}\">{:.2e}</text>",
            ox + size + 40.0,
            oy + 10.0,
            scale,
            ox + size + 40.0,
            oy + size,
            -scale
        );
        s.push_str("</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_plot_has_one_polyline_per_series_and_skips_nonpositive_on_log_axes() {
        let plot = LinePlot {
            title: "t <1>".into(),
            x_label: "k".into(),
            y_label: "h".into(),
            log_x: false,
            log_y: true,
            series: vec![
                Series::new("a", vec![(0.0, 1.0), (1.0, 0.0), (2.0, 0.01)]),
                Series::dashed("b", vec![(0.0, 2.0), (2.0, 3.0)]),
            ],
        };
        let svg = plot.to_svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(
            svg.contains("t &lt;1&gt;") && svg.contains(">a</text>") && svg.contains(">b</text>")
        );
        let first = svg.split("<polyline points=\"").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(first.split(' ').count(), 2, "the y = 0 point must be skipped on a log axis");
    }

    #[test]
    fn heatmap_colors_are_symmetric_around_white() {
        let m = Matrix::from_vec(2, 2, vec![2.0, 0.0, -2.0, 1.0]).unwrap();
        let svg = Heatmap { title: "m".into(), matrix: &m, separators: vec![1] }.to_svg();
        assert_eq!(diverging_color(1.0), "#ff0000");
        assert_eq!(diverging_color(0.0), "#ffffff");
        assert_eq!(diverging_color(-1.0), "#0000ff");
        assert!(svg.contains("fill=\"#ff0000\"") && svg.contains("fill=\"#0000ff\""));
        // Background, one per cell, 21 color-bar steps.
        assert_eq!(svg.matches("<rect").count(), 1 + 4 + 21);
    }
}
