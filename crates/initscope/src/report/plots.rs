//! SVG charts drawn with plotters: lines with optional bands, heat maps. Renderers only draw the
//! records they are given; they compute nothing but axis ranges.

use plotters::prelude::*;

/// One line, with an optional band (x, lo, hi) around it.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub band: Vec<(f64, f64, f64)>,
}

/// Chart size in pixels.
pub const WIDTH: u32 = 560;
pub const HEIGHT: u32 = 340;

/// Whether positive data spans more than two decades (then the y axis is logarithmic).
pub fn spans_decades(values: impl Iterator<Item = f64>) -> bool {
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for v in values.filter(|v| v.is_finite() && *v > 0.0) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    hi > 0.0 && lo.is_finite() && hi / lo > 100.0
}

fn color(i: usize) -> RGBColor {
    let c = Palette99::pick(i).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

fn finite(points: &[(f64, f64)], log_y: bool) -> Vec<(f64, f64)> {
    points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite() && (!log_y || *y > 0.0))
        .collect()
}

/// A line chart. `log_y` switches the y axis to log10 (non-positive points are dropped).
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let all: Vec<(f64, f64)> = series
            .iter()
            .flat_map(|s| {
                finite(&s.points, log_y)
                    .into_iter()
                    .chain(s.band.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]))
            })
            .filter(|(_, y)| y.is_finite() && (!log_y || *y > 0.0))
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
            x1 = x0 + 1.0;
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
        let draw = |root: &DrawingArea<SVGBackend, plotters::coord::Shift>| -> Result<(), Box<dyn std::error::Error>> {
            let mut builder = ChartBuilder::on(root);
            builder
                .caption(title, ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(36)
                .y_label_area_size(64);
            macro_rules! body {
                ($chart:expr) => {{
                    let mut chart = $chart;
                    chart
                        .configure_mesh()
                        .x_desc(x_label)
                        .y_desc(y_label)
                        .light_line_style(RGBColor(235, 235, 235))
                        .draw()?;
                    for (i, s) in series.iter().enumerate() {
                        let c = color(i);
                        if !s.band.is_empty() {
                            let mut poly: Vec<(f64, f64)> = s.band.iter().map(|&(x, _, hi)| (x, hi)).collect();
                            poly.extend(s.band.iter().rev().map(|&(x, lo, _)| (x, lo)));
                            let poly: Vec<(f64, f64)> = poly.into_iter().filter(|p| p.1.is_finite() && (!log_y || p.1 > 0.0)).collect();
                            chart.draw_series(std::iter::once(Polygon::new(poly, c.mix(0.18).filled())))?;
                        }
                        chart
                            .draw_series(LineSeries::new(finite(&s.points, log_y), c.stroke_width(2)))?
                            .label(s.name.clone())
                            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
                    }
                    if series.len() > 1 {
                        chart
                            .configure_series_labels()
                            .background_style(WHITE.mix(0.85))
                            .border_style(RGBColor(200, 200, 200))
                            .label_font(("sans-serif", 11))
                            .position(SeriesLabelPosition::UpperRight)
                            .draw()?;
                    }
                }};
            }
            if log_y {
                body!(builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale())?);
            } else {
                body!(builder.build_cartesian_2d(x0..x1, y0..y1)?);
            }
            root.present()?;
            Ok(())
        };
        let _ = draw(&root);
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

/// A labelled heat map of values (rows = y labels, columns = x labels), each cell printed.
pub fn heatmap(
    title: &str,
    x_name: &str,
    y_name: &str,
    x_labels: &[String],
    y_labels: &[String],
    values: &[Vec<Option<f64>>],
) -> String {
    let mut svg = String::new();
    {
        let cell_w = (420 / x_labels.len().max(1)).clamp(40, 120) as i32;
        let cell_h = (260 / y_labels.len().max(1)).clamp(22, 60) as i32;
        let (left, top) = (150i32, 40i32);
        let w = (left + cell_w * x_labels.len() as i32 + 20).max(300) as u32;
        let h = (top + cell_h * y_labels.len() as i32 + 70) as u32;
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
            let _ = root.draw(&text(&y_labels[i], 6, y + cell_h / 2 - 6, 11));
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
                let label = v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
                let _ = root.draw(&text(&label, x + 4, y + cell_h / 2 - 6, 11));
            }
        }
        let bottom = top + cell_h * y_labels.len() as i32;
        for (j, l) in x_labels.iter().enumerate() {
            let _ = root.draw(&text(l, left + cell_w * j as i32 + 2, bottom + 6, 10));
        }
        let _ = root.draw(&text(
            &format!("columns: {x_name}   rows: {y_name}"),
            left,
            bottom + 30,
            12,
        ));
        let _ = root.present();
    }
    svg
}

/// A weight matrix (rows = units) as a diverging heat map scaled by max |w|; identical rows
/// (copies) show as identical stripes.
pub fn matrix_map(title: &str, w: &crate::matrix::Matrix<f64>) -> String {
    let mut svg = String::new();
    {
        let (rows, cols) = w.shape();
        let cell = (360 / rows.max(cols).max(1)).clamp(3, 24) as i32;
        let (left, top) = (50i32, 34i32);
        let width = (left + cell * cols as i32 + 20).max(440) as u32;
        let height = (top + cell * rows as i32 + 40) as u32;
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let scale = w.as_slice().iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let _ = root.draw(&Text::new(
            title.to_string(),
            (8, 6),
            ("sans-serif", 14).into_font(),
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
            }
        }
        let note =
            format!("{rows} units x {cols} inputs, colour = w / max|w| (max|w| = {scale:.3e})");
        let _ = root.draw(&Text::new(
            note,
            (left, top + cell * rows as i32 + 10),
            ("sans-serif", 11).into_font(),
        ));
        let _ = root.draw(&Text::new(
            "unit".to_string(),
            (6, top),
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
        );
        assert!(svg.contains("<svg"));
        let w = Matrix::from_vec(2, 2, vec![nan, inf, -inf, 1.0]);
        assert!(matrix_map("w", &w).contains("<svg"));
    }
}
