//! SVG charts drawn with plotters: lines with optional bands, heat maps. Renderers only draw the
//! records they are given; they compute nothing but axis ranges.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One line, with an optional band (x, lo, hi) around it and optional spikes: points drawn as a
/// stem from the bottom of the chart with a dot on top, for a mass that a line would hide (a
/// histogram whose values all sit in one bin).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub band: Vec<(f64, f64, f64)>,
    pub spikes: Vec<(f64, f64)>,
}

impl Series {
    /// A plain line.
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            band: Vec::new(),
            spikes: Vec::new(),
        }
    }
}

/// Chart size in pixels (the legend, when there is one, takes the right [`LEGEND_WIDTH`]).
pub const WIDTH: u32 = 660;
pub const HEIGHT: u32 = 340;
/// Width of the legend column right of the data.
pub const LEGEND_WIDTH: u32 = 190;

/// Whether positive data spans more than two decades (then the y axis is logarithmic).
pub fn spans_decades(values: impl Iterator<Item = f64>) -> bool {
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for v in values.filter(|v| v.is_finite() && *v > 0.0) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    hi > 0.0 && lo.is_finite() && hi / lo > 100.0
}

/// The Okabe-Ito palette (colour-blind safe), most legible on white first; series past the eighth
/// repeat a colour with a dashed line.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(230, 159, 0),   // orange
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(0, 0, 0),       // black
    RGBColor(190, 170, 0),   // yellow, darkened to read on white
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A tick label as a person writes it: integers without a decimal point ("100", not "100.0"),
/// at most three decimals in [1e-3, 1e4), otherwise a short exponent ("1e-5", never
/// "999999999e-5"). `zero` is the magnitude below which a value is printed as 0 (the rounding
/// noise of a linear axis around 0).
pub fn tick(v: f64, zero: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    if v == 0.0 || v.abs() <= zero {
        return "0".into();
    }
    if (1e-3..1e4).contains(&v.abs()) {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" {
            "0".into()
        } else {
            s.to_string()
        }
    } else {
        let s = format!("{v:.1e}");
        match s.split_once('e') {
            Some((m, e)) => format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.')),
            None => s,
        }
    }
}

/// The smallest multiple of half the power of ten below `x` that is at least `x` (39 -> 40,
/// 400 -> 400, 1499 -> 1500); `x` itself when it is not positive.
pub fn round_up(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return x;
    }
    let unit = 10f64.powf(x.log10().floor()) / 2.0;
    let unit = if unit >= 1.0 { unit } else { 1.0 };
    (x / unit).ceil() * unit
}

fn finite(points: &[(f64, f64)], log_y: bool) -> Vec<(f64, f64)> {
    points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite() && (!log_y || *y > 0.0))
        .collect()
}

/// The points of a line where its marker is drawn: the one nearest each of 8 evenly spaced x
/// positions (every point of a short line), so that markers spread along the x axis even where
/// the recording is denser at the start.
fn marker_points(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    if points.len() <= 8 {
        return points.to_vec();
    }
    let (lo, hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.0), b.max(p.0))
        });
    let mut out: Vec<(f64, f64)> = Vec::new();
    for k in 0..8 {
        let x = lo + (hi - lo) * k as f64 / 7.0;
        if let Some(p) = points
            .iter()
            .copied()
            .min_by(|a, b| (a.0 - x).abs().total_cmp(&(b.0 - x).abs()))
        {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// A line chart. `log_y` switches the y axis to log10 (non-positive points are dropped). Each
/// series has its own colour and marker shape; the legend sits right of the data.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> String {
    line_chart_marked(title, x_label, y_label, series, log_y, &[])
}

/// A [`line_chart`] with dashed grey vertical lines at the given x values, each labelled at the
/// top of the chart (e.g. where the recording cadence changes).
pub fn line_chart_marked(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
    vlines: &[(f64, String)],
) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let legend = series.len() > 1 || series.iter().any(|s| !s.spikes.is_empty());
        let (plot_area, legend_area) = if legend {
            root.split_horizontally(WIDTH - LEGEND_WIDTH)
        } else {
            root.split_horizontally(WIDTH)
        };
        let all: Vec<(f64, f64)> = series
            .iter()
            .flat_map(|s| {
                finite(&s.points, log_y)
                    .into_iter()
                    .chain(s.band.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]))
                    .chain(finite(&s.spikes, log_y))
            })
            .filter(|(x, y)| x.is_finite() && y.is_finite() && (!log_y || *y > 0.0))
            .collect();
        let (mut x0, mut x1) = all
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.0), b.max(p.0))
            });
        let (mut y0, mut y1) = all
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.1), b.max(p.1))
            });
        if all.is_empty() {
            (x0, x1, y0, y1) = (0.0, 1.0, if log_y { 0.1 } else { 0.0 }, 1.0);
        }
        if x1 <= x0 {
            // One x value (a histogram of a single value): centre it.
            x0 -= 0.5;
            x1 = x0 + 1.0;
        } else if x0 >= 0.0 && all.iter().all(|p| p.0.fract() == 0.0) {
            // Steps: end the axis on a round number so that its last tick is labelled (a
            // gradient recorded up to step 39 of 40 gets an axis to 40, not one ending at 35).
            x1 = round_up(x1);
        } else if series.iter().any(|s| !s.spikes.is_empty()) {
            // A spike at the edge of the data would sit on the axis line.
            let pad = (x1 - x0) * 0.04;
            x0 -= pad;
            x1 += pad;
        }
        if y1 <= y0 {
            let pad = if y0.abs() > 0.0 { y0.abs() * 0.1 } else { 1.0 };
            y1 = y0 + pad;
            if !log_y {
                y0 -= pad;
            }
        } else if !log_y {
            let pad = (y1 - y0) * 0.05;
            y0 -= pad;
            y1 += pad;
        }
        let x_zero = (x1 - x0) * 1e-9;
        let y_zero = if log_y { 0.0 } else { (y1 - y0) * 1e-9 };
        let x_fmt = move |v: &f64| tick(*v, x_zero);
        let y_fmt = move |v: &f64| tick(*v, y_zero);
        let spike_base = if log_y { y0 } else { y0.max(0.0).min(y1) };
        let draw = |area: &DrawingArea<SVGBackend, plotters::coord::Shift>| -> Result<(), Box<dyn std::error::Error>> {
            let mut builder = ChartBuilder::on(area);
            builder
                .caption(title, ("sans-serif", 16))
                .margin(8)
                .margin_right(28)
                .x_label_area_size(40)
                .y_label_area_size(70);
            macro_rules! body {
                ($chart:expr) => {{
                    let mut chart = $chart;
                    chart
                        .configure_mesh()
                        .x_desc(x_label)
                        .y_desc(y_label)
                        .x_labels(8)
                        .y_labels(8)
                        .x_label_formatter(&x_fmt)
                        .y_label_formatter(&y_fmt)
                        .light_line_style(RGBColor(238, 238, 238))
                        .draw()?;
                    for (x, text) in vlines.iter().filter(|(x, _)| x.is_finite() && *x > x0 && *x < x1) {
                        let grey = RGBColor(110, 110, 110);
                        chart.draw_series(DashedLineSeries::new(vec![(*x, y0), (*x, y1)], 4, 4, grey.stroke_width(1)))?;
                        chart.draw_series(std::iter::once(Text::new(
                            text.clone(),
                            (*x, y1),
                            ("sans-serif", 10).into_font().color(&grey),
                        )))?;
                    }
                    for (i, s) in series.iter().enumerate() {
                        let c = color(i);
                        if !s.band.is_empty() {
                            let mut poly: Vec<(f64, f64)> = s.band.iter().map(|&(x, _, hi)| (x, hi)).collect();
                            poly.extend(s.band.iter().rev().map(|&(x, lo, _)| (x, lo)));
                            let poly: Vec<(f64, f64)> = poly.into_iter().filter(|p| p.1.is_finite() && (!log_y || p.1 > 0.0)).collect();
                            chart.draw_series(std::iter::once(Polygon::new(poly, c.mix(0.18).filled())))?;
                        }
                        let pts = finite(&s.points, log_y);
                        if i >= PALETTE.len() {
                            chart.draw_series(DashedLineSeries::new(pts.clone(), 6, 4, c.stroke_width(2)))?;
                        } else {
                            chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
                        }
                        let marks = marker_points(&pts);
                        match i % 4 {
                            0 => { chart.draw_series(marks.iter().map(|&p| Circle::new(p, 3, c.filled())))?; }
                            1 => { chart.draw_series(marks.iter().map(|&p| TriangleMarker::new(p, 4, c.filled())))?; }
                            2 => { chart.draw_series(marks.iter().map(|&p| Cross::new(p, 4, c.stroke_width(2))))?; }
                            _ => { chart.draw_series(marks.iter().map(|&p| Circle::new(p, 3, c.stroke_width(2))))?; }
                        }
                        // Earlier series draw wider spikes, so a later one on the same bin leaves
                        // them visible on both sides.
                        let wider = 2 * (series.len() - 1 - i).min(3) as u32;
                        for &(x, y) in &finite(&s.spikes, log_y) {
                            chart.draw_series(std::iter::once(PathElement::new(vec![(x, spike_base), (x, y)], c.stroke_width(3 + wider))))?;
                            chart.draw_series(std::iter::once(Circle::new((x, y), 4 + wider, c.filled())))?;
                        }
                    }
                }};
            }
            if log_y {
                body!(builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale())?);
            } else {
                body!(builder.build_cartesian_2d(x0..x1, y0..y1)?);
            }
            Ok(())
        };
        let _ = draw(&plot_area);
        if legend {
            for (i, s) in series.iter().enumerate() {
                let c = color(i);
                let y = 40 + 18 * i as i32;
                let _ =
                    legend_area.draw(&PathElement::new(vec![(2, y), (26, y)], c.stroke_width(2)));
                let _ = match i % 4 {
                    0 => legend_area.draw(&Circle::new((14, y), 3, c.filled())),
                    1 => legend_area.draw(&TriangleMarker::new((14, y), 4, c.filled())),
                    2 => legend_area.draw(&Cross::new((14, y), 4, c.stroke_width(2))),
                    _ => legend_area.draw(&Circle::new((14, y), 3, c.stroke_width(2))),
                };
                let _ = legend_area.draw(&Text::new(
                    s.name.clone(),
                    (32, y - 6),
                    ("sans-serif", 11).into_font(),
                ));
            }
        }
        let _ = root.present();
    }
    svg
}

/// A diverging blue-white-red colour for v in [-1, 1].
fn diverging(v: f64) -> RGBColor {
    let v = v.clamp(-1.0, 1.0);
    let (r, g, b) = if v >= 0.0 {
        (1.0, 1.0 - v, 1.0 - v)
    } else {
        (1.0 + v, 1.0 + v, 1.0)
    };
    RGBColor((r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8)
}

/// A sequential white-to-blue colour for t in [0, 1].
fn sequential(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    RGBColor(
        (255.0 - 200.0 * t) as u8,
        (255.0 - 130.0 * t) as u8,
        (255.0 - 40.0 * t) as u8,
    )
}

/// Text of `size` px centred on its anchor point.
fn centred(size: i32) -> TextStyle<'static> {
    TextStyle::from(("sans-serif", size).into_font()).pos(Pos::new(HPos::Center, VPos::Center))
}

/// A labelled heat map of values (rows = y labels, columns = x labels), each cell printed in its
/// centre; sized to fill a plot column (about 560 px).
pub fn heatmap(
    title: &str,
    x_name: &str,
    y_name: &str,
    x_labels: &[String],
    y_labels: &[String],
    values: &[Vec<Option<f64>>],
    label: &dyn Fn(f64) -> String,
) -> String {
    let mut svg = String::new();
    {
        let (left, top) = (130i32, 40i32);
        let cell_w = (400 / x_labels.len().max(1)).clamp(56, 140) as i32;
        let cell_h = (320 / y_labels.len().max(1)).clamp(28, 60) as i32;
        let w = (left + cell_w * x_labels.len() as i32 + 20).max(560) as u32;
        let h = (top + cell_h * y_labels.len() as i32 + 60) as u32;
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let flat: Vec<f64> = values
            .iter()
            .flatten()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        let (lo, hi) = flat
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let text = |s: &str, x: i32, y: i32, size: i32| {
            Text::new(s.to_string(), (x, y), ("sans-serif", size).into_font())
        };
        let _ = root.draw(&text(title, 10, 8, 16));
        for (i, row) in values.iter().enumerate() {
            let y = top + cell_h * i as i32;
            let _ = root.draw(&Text::new(
                y_labels[i].clone(),
                (6, y + cell_h / 2),
                centred(13).pos(Pos::new(HPos::Left, VPos::Center)),
            ));
            for (j, v) in row.iter().enumerate() {
                let x = left + cell_w * j as i32;
                let t = match v {
                    Some(v) if hi > lo => (v - lo) / (hi - lo),
                    Some(_) => 0.5,
                    None => 0.0,
                };
                let fill = if v.is_some() {
                    sequential(t)
                } else {
                    RGBColor(240, 240, 240)
                };
                let _ = root.draw(&Rectangle::new(
                    [(x, y), (x + cell_w, y + cell_h)],
                    fill.filled(),
                ));
                let _ = root.draw(&Rectangle::new(
                    [(x, y), (x + cell_w, y + cell_h)],
                    RGBColor(255, 255, 255).stroke_width(1),
                ));
                let label = v.map(label).unwrap_or_else(|| "-".into());
                // Dark cells get white text.
                let ink = if v.is_some() && t > 0.6 { WHITE } else { BLACK };
                let _ = root.draw(&Text::new(
                    label,
                    (x + cell_w / 2, y + cell_h / 2),
                    centred(13).color(&ink),
                ));
            }
        }
        let bottom = top + cell_h * y_labels.len() as i32;
        for (j, l) in x_labels.iter().enumerate() {
            let _ = root.draw(&Text::new(
                l.clone(),
                (left + cell_w * j as i32 + cell_w / 2, bottom + 12),
                centred(13),
            ));
        }
        let _ = root.draw(&text(
            &format!("columns: {x_name}   rows: {y_name}"),
            left,
            bottom + 32,
            12,
        ));
        let _ = root.present();
    }
    svg
}

/// A weight matrix (rows = units) as a small diverging heat map scaled by max |w|, titled
/// `title`; identical rows (copies) show as identical stripes, and an all-zero matrix as a grid
/// of outlined white cells that says so.
pub fn matrix_map(title: &str, w: &crate::matrix::Matrix<f64>) -> String {
    let mut svg = String::new();
    {
        let (rows, cols) = w.shape();
        let cell = (192 / rows.max(cols).max(1)).clamp(2, 16) as i32;
        let (left, top) = (8i32, 26i32);
        let (w_px, h_px) = (cell * cols as i32, cell * rows as i32);
        let width = (left + w_px + 8).max(260) as u32;
        let height = (top + h_px + 36) as u32;
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let scale = w.as_slice().iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let _ = root.draw(&Text::new(
            title.to_string(),
            (left, 6),
            ("sans-serif", 13).into_font(),
        ));
        for i in 0..rows {
            for j in 0..cols {
                let v = if scale > 0.0 {
                    w.get(i, j) / scale
                } else {
                    0.0
                };
                let (x, y) = (left + cell * j as i32, top + cell * i as i32);
                let _ = root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    diverging(v).filled(),
                ));
                if scale == 0.0 && cell >= 3 {
                    // White cells with a grey outline: a grid of zeros, not an empty picture.
                    let _ = root.draw(&Rectangle::new(
                        [(x, y), (x + cell, y + cell)],
                        RGBColor(215, 215, 215).stroke_width(1),
                    ));
                }
            }
        }
        if scale == 0.0 {
            let _ = root.draw(&Rectangle::new(
                [(left, top), (left + w_px, top + h_px)],
                RGBColor(120, 120, 120).stroke_width(1),
            ));
            let _ = root.draw(&Rectangle::new(
                [
                    (left + w_px / 2 - 70, top + h_px / 2 - 11),
                    (left + w_px / 2 + 70, top + h_px / 2 + 11),
                ],
                WHITE.filled(),
            ));
            let _ = root.draw(&Text::new(
                "every weight is 0".to_string(),
                (left + w_px / 2, top + h_px / 2),
                centred(14).color(&RGBColor(60, 60, 60)),
            ));
        }
        let note = if scale == 0.0 {
            format!("{rows} units x {cols} inputs, all exactly 0")
        } else {
            format!("{rows} units x {cols} inputs, max|w| = {scale:.3e}")
        };
        let _ = root.draw(&Text::new(
            note,
            (left, top + h_px + 10),
            ("sans-serif", 11).into_font(),
        ));
        let _ = root.present();
    }
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::Matrix;

    /// Charts of nothing but non-finite values draw (empty) instead of panicking.
    #[test]
    fn non_finite_data_draws_without_panicking() {
        let (nan, inf) = (f64::NAN, f64::INFINITY);
        let series = [Series {
            name: "diverged".into(),
            points: vec![(0.0, nan), (1.0, inf), (nan, 1.0), (2.0, -inf)],
            band: vec![(0.0, nan, inf), (1.0, -inf, nan)],
            spikes: vec![(nan, 1.0), (0.0, inf)],
        }];
        for log in [false, true] {
            assert!(line_chart("t", "x", "y", &series, log).contains("<svg"));
        }
        assert!(!spans_decades([nan, inf, 1.0].into_iter()));
        let labels = vec!["a".to_string(), "b".to_string()];
        let svg = heatmap(
            "t",
            "x",
            "y",
            &labels,
            &labels,
            &[vec![None, Some(nan)], vec![Some(inf), Some(1.0)]],
            &|v| format!("{v:.1}"),
        );
        assert!(svg.contains("<svg"));
        let w = Matrix::from_vec(2, 2, vec![nan, inf, -inf, 1.0]);
        assert!(matrix_map("w", &w).contains("<svg"));
    }

    /// The text of every `<text>` element of an SVG.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| t.split_once('>'))
            .filter_map(|(_, t)| t.split_once("</text>"))
            .map(|(t, _)| t.trim().to_string())
            .collect()
    }

    /// Step ticks are integers, log ticks short exponents, and rounding noise around 0 reads 0.
    #[test]
    fn tick_labels_read_as_a_person_writes_them() {
        assert_eq!(tick(0.0, 0.0), "0");
        assert_eq!(tick(100.0, 0.0), "100");
        assert_eq!(tick(400.0, 0.0), "400");
        assert_eq!(tick(2.5, 0.0), "2.5");
        assert_eq!(tick(0.999_999_999_9, 0.0), "1");
        assert_eq!(tick(9.999_999_99e-6, 0.0), "1e-5");
        assert_eq!(tick(1e-7, 0.0), "1e-7");
        assert_eq!(tick(2.5e-8, 0.0), "2.5e-8");
        assert_eq!(tick(20000.0, 0.0), "2e4");
        assert_eq!(tick(5.5e-17, 1e-9), "0");
        assert_eq!(tick(-0.2, 0.0), "-0.2");
        assert_eq!(round_up(39.0), 40.0);
        assert_eq!(round_up(400.0), 400.0);
        assert_eq!(round_up(1499.0), 1500.0);
        assert_eq!(round_up(3.0), 3.0);
        assert_eq!(round_up(0.0), 0.0);
    }

    /// A line chart uses the Okabe-Ito colours, its legend sits right of the data, and a
    /// step axis from 0 to 400 is labelled with integers up to its last tick.
    #[test]
    fn line_charts_have_integer_steps_an_outside_legend_and_safe_colours() {
        let series: Vec<Series> = (0..3)
            .map(|i| {
                Series::line(
                    format!("init-{i}"),
                    (0..=400)
                        .step_by(10)
                        .map(|s| (s as f64, 1.0 + i as f64 + s as f64 / 400.0))
                        .collect(),
                )
            })
            .collect();
        let svg = line_chart("t", "step", "loss", &series, false);
        let labels = texts(&svg);
        assert!(
            labels.iter().any(|t| t == "100") && labels.iter().any(|t| t == "400"),
            "{labels:?}"
        );
        assert!(!labels.iter().any(|t| t.ends_with(".0")), "{labels:?}");
        assert!(
            svg.contains("#0072B2") || svg.contains("#0072b2"),
            "Okabe-Ito blue"
        );
        // The legend text starts right of the plotting area.
        let legend_x: i32 = svg
            .split("<text")
            .find(|t| t.contains(">\ninit-0\n<") || t.contains(">init-0<"))
            .and_then(|t| t.split("x=\"").nth(1))
            .and_then(|t| t.split('"').next())
            .and_then(|x| x.parse().ok())
            .expect("legend text");
        assert!(legend_x > (WIDTH - LEGEND_WIDTH) as i32, "{legend_x}");
        let log = line_chart(
            "t",
            "step",
            "g",
            &[Series::line("a", vec![(0.0, 1e-7), (1.0, 1.0)])],
            true,
        );
        let log = texts(&log);
        assert!(log.iter().any(|t| t == "1e-5"), "{log:?}");
        assert!(!log.iter().any(|t| t.contains("99999")), "{log:?}");
    }

    /// An all-zero weight matrix says so instead of drawing an empty white square.
    #[test]
    fn an_all_zero_matrix_reads_as_zero() {
        let svg = matrix_map("w", &Matrix::from_vec(2, 3, vec![0.0; 6]));
        assert!(svg.contains("every weight is 0"), "{svg}");
        assert!(svg.contains("all exactly 0"), "{svg}");
    }
}
