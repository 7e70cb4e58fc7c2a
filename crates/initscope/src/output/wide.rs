//! Metrics in wide form: one row per step, one column per metric series, the columns named as
//! the TensorBoard event file names its scalars ([`record_tag`]: `train_loss`,
//! `layer2/grad_norm`, `2.body.0.weight/tensor_norm`), so a table reads like TensorBoard.
//!
//! ```text
//! long (metrics.csv)                       wide
//! step metric    layer value               step train_loss layer1/grad_norm
//! 0    train_loss       2.30               0    2.30       0.41
//! 0    grad_norm 1      0.41        ->     10   1.95       NaN
//! 10   train_loss       1.95
//! ```
//! A series has NaN at the steps where it was not recorded.

use std::collections::HashMap;

use crate::output::tensorboard::record_tag;
use crate::records::MetricRecord;

/// The wide table: `steps` ascending and distinct; `columns` in the order their first record
/// appears in the long form, each with one value per step.
#[derive(Clone, Debug, PartialEq)]
pub struct WideMetrics {
    pub steps: Vec<usize>,
    pub columns: Vec<(String, Vec<f64>)>,
}

/// Pivots the long records (any order) to [`WideMetrics`]: the value of column `tag` at row
/// `step` is the record with that tag and step (the last one, should a series repeat a step),
/// NaN where there is none.
pub fn wide_metrics(metrics: &[MetricRecord]) -> WideMetrics {
    let mut steps: Vec<usize> = metrics.iter().map(|m| m.step).collect();
    steps.sort_unstable();
    steps.dedup();
    let row: HashMap<usize, usize> = steps.iter().enumerate().map(|(i, &s)| (s, i)).collect();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut columns: Vec<(String, Vec<f64>)> = Vec::new();
    for m in metrics {
        let tag = record_tag(m);
        let c = match index.get(&tag) {
            Some(&c) => c,
            None => {
                index.insert(tag.clone(), columns.len());
                columns.push((tag, vec![f64::NAN; steps.len()]));
                columns.len() - 1
            }
        };
        columns[c].1[row[&m.step]] = m.value;
    }
    WideMetrics { steps, columns }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(step: usize, metric: &str, layer: Option<usize>, module: Option<&str>) -> MetricRecord {
        MetricRecord {
            step,
            metric: metric.into(),
            layer,
            module: module.map(Into::into),
            value: step as f64 + layer.unwrap_or(0) as f64 / 10.0,
        }
    }

    #[test]
    fn pivots_by_tensorboard_tag_with_nan_where_a_series_was_not_recorded() {
        let long = [
            rec(0, "train_loss", None, None),
            rec(0, "grad_norm", Some(1), None),
            rec(10, "train_loss", None, None),
            rec(5, "tensor_norm", None, Some("2.body.0.weight")),
        ];
        let w = wide_metrics(&long);
        assert_eq!(w.steps, [0, 5, 10]);
        let names: Vec<&str> = w.columns.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "train_loss",
                "layer1/grad_norm",
                "2.body.0.weight/tensor_norm"
            ]
        );
        assert_eq!(w.columns[0].1[0], 0.0);
        assert!(w.columns[0].1[1].is_nan());
        assert_eq!(w.columns[0].1[2], 10.0);
        assert_eq!(w.columns[1].1[0], 0.1);
        assert!(w.columns[1].1[1].is_nan() && w.columns[1].1[2].is_nan());
        assert_eq!(w.columns[2].1[1], 5.0);
        assert_eq!(
            wide_metrics(&[]),
            WideMetrics {
                steps: vec![],
                columns: vec![]
            }
        );
    }
}
