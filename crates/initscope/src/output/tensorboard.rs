//! TensorBoard event files, written by initscope itself.
//!
//! A file is a sequence of records, each
//! ```text
//! u64 length (little-endian) | u32 masked CRC32C of the length bytes | data | u32 masked CRC32C of data
//! ```
//! with masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8, and each record's data an `Event`
//! protobuf (tensorflow/core/util/event.proto): the first holds `file_version = "brain.Event:2"`,
//! the others a `Summary` of scalar values (`simple_value`) or histograms (`HistogramProto`).
//! The messages are declared here with prost's derive, field numbers as in TensorFlow's protos.
//!
//! The run's hyperparameters go in as TensorBoard's `hparams` summary API writes them
//! (`tensorboard.plugins.hparams.summary_v2.hparams`): at step 0 a value tagged
//! `_hparams_/session_start_info` whose metadata's plugin data (plugin_name "hparams") holds a
//! `tensorboard.hparams.HParamsPluginData` with a `SessionStartInfo` (the config's main fields,
//! the run id as the session group), and an empty float tensor. TensorBoard's HParams tab then
//! lists every run of a `--logdir` with its hyperparameters beside the last value of each scalar
//! (the final losses and accuracies).

use std::collections::BTreeMap;

use prost::Message;

use crate::config::{Batch, RunConfig};
use crate::records::{HistogramRecord, MetricRecord};

/// tensorflow.HistogramProto.
#[derive(Clone, PartialEq, Message)]
pub struct HistogramProto {
    #[prost(double, tag = "1")]
    pub min: f64,
    #[prost(double, tag = "2")]
    pub max: f64,
    #[prost(double, tag = "3")]
    pub num: f64,
    #[prost(double, tag = "4")]
    pub sum: f64,
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}

/// tensorflow.Summary.Value (only the fields initscope writes).
#[derive(Clone, PartialEq, Message)]
pub struct SummaryValue {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
    #[prost(message, optional, tag = "5")]
    pub histo: Option<HistogramProto>,
    #[prost(message, optional, tag = "8")]
    pub tensor: Option<TensorProto>,
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
}

/// tensorflow.TensorProto (dtype and shape only: the hparams plugin's empty tensor).
#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    /// tensorflow.DataType; 1 is DT_FLOAT.
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
}

/// tensorflow.TensorShapeProto.
#[derive(Clone, PartialEq, Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<TensorShapeDim>,
}

/// tensorflow.TensorShapeProto.Dim.
#[derive(Clone, PartialEq, Message)]
pub struct TensorShapeDim {
    #[prost(int64, tag = "1")]
    pub size: i64,
}

/// tensorflow.SummaryMetadata (the plugin data only).
#[derive(Clone, PartialEq, Message)]
pub struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

/// tensorflow.SummaryMetadata.PluginData.
#[derive(Clone, PartialEq, Message)]
pub struct PluginData {
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

/// tensorboard.hparams.HParamsPluginData (version 0, the session start only).
#[derive(Clone, PartialEq, Message)]
pub struct HParamsPluginData {
    #[prost(int32, tag = "1")]
    pub version: i32,
    #[prost(message, optional, tag = "3")]
    pub session_start_info: Option<SessionStartInfo>,
}

/// tensorboard.hparams.SessionStartInfo.
#[derive(Clone, PartialEq, Message)]
pub struct SessionStartInfo {
    #[prost(btree_map = "string, message", tag = "1")]
    pub hparams: BTreeMap<String, HParamValue>,
    #[prost(string, tag = "4")]
    pub group_name: String,
    #[prost(double, tag = "5")]
    pub start_time_secs: f64,
}

/// google.protobuf.Value (the kinds an hparam takes: number, string, bool).
#[derive(Clone, PartialEq, Message)]
pub struct HParamValue {
    #[prost(oneof = "HParamKind", tags = "2, 3, 4")]
    pub kind: Option<HParamKind>,
}

/// google.protobuf.Value's `kind`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HParamKind {
    #[prost(double, tag = "2")]
    Number(f64),
    #[prost(string, tag = "3")]
    Text(String),
    #[prost(bool, tag = "4")]
    Bool(bool),
}

/// The tag TensorBoard's hparams plugin reads a session's hyperparameters from.
pub const SESSION_START_INFO_TAG: &str = "_hparams_/session_start_info";

/// The hyperparameters shown in TensorBoard's HParams tab: the config's main fields, as written
/// on the command line (numbers as numbers).
pub fn hparams(cfg: &RunConfig) -> BTreeMap<String, HParamValue> {
    let text = |s: String| HParamValue {
        kind: Some(HParamKind::Text(s)),
    };
    let number = |x: f64| HParamValue {
        kind: Some(HParamKind::Number(x)),
    };
    let mut hparams = BTreeMap::from([
        ("data".to_string(), text(cfg.data.to_string())),
        ("arch".into(), text(cfg.arch_text())),
        ("act".into(), text(cfg.act_label())),
        ("init".into(), text(cfg.init_label())),
        ("bias_init".into(), text(cfg.bias_init_label())),
        ("loss".into(), text(cfg.loss.to_string())),
        ("optim".into(), text(cfg.optim.kind.to_string())),
        ("lr".into(), number(cfg.optim.lr)),
        ("weight_decay".into(), number(cfg.optim.weight_decay)),
        ("schedule".into(), text(cfg.schedule.spec())),
        (
            "batch".into(),
            text(match cfg.batch {
                Batch::Full => "full".into(),
                Batch::Size(b) => b.to_string(),
            }),
        ),
        ("steps".into(), number(cfg.steps as f64)),
        ("dropout".into(), number(cfg.dropout)),
        ("grad_noise".into(), number(cfg.grad_noise)),
        ("seed".into(), number(cfg.seed as f64)),
        ("precision".into(), text(cfg.precision.name().into())),
    ]);
    if let Some(net) = &cfg.net {
        hparams.insert("net".into(), text(net.canonical()));
    }
    hparams
}

/// The summary value TensorBoard's `hparams(hparams, trial_id, start_time_secs)` writes: the
/// session start of run `run_id` with the hyperparameters of `cfg`.
pub fn session_start_value(cfg: &RunConfig, run_id: &str, start_time_secs: f64) -> SummaryValue {
    let data = HParamsPluginData {
        version: 0,
        session_start_info: Some(SessionStartInfo {
            hparams: hparams(cfg),
            group_name: run_id.to_string(),
            start_time_secs,
        }),
    };
    SummaryValue {
        tag: SESSION_START_INFO_TAG.into(),
        simple_value: None,
        histo: None,
        // The plugin's NULL_TENSOR: an empty DT_FLOAT tensor of shape (0,).
        tensor: Some(TensorProto {
            dtype: 1,
            tensor_shape: Some(TensorShapeProto {
                dim: vec![TensorShapeDim { size: 0 }],
            }),
        }),
        metadata: Some(SummaryMetadata {
            plugin_data: Some(PluginData {
                plugin_name: "hparams".into(),
                content: data.encode_to_vec(),
            }),
        }),
    }
}

/// tensorflow.Summary.
#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// tensorflow.Event (file_version or summary).
#[derive(Clone, PartialEq, Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(string, optional, tag = "3")]
    pub file_version: Option<String>,
    #[prost(message, optional, tag = "5")]
    pub summary: Option<Summary>,
}

/// The masked CRC32C TensorBoard's record format uses.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let c = crc32c::crc32c(data);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Appends one framed record.
pub fn write_record(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
}

/// Reads framed records back, checking both CRCs (for tests and `merge`).
pub fn read_records(mut bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 12 {
            return Err("truncated record header".into());
        }
        let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if crc != masked_crc32c(&bytes[..8]) {
            return Err("length CRC mismatch".into());
        }
        if bytes.len() < 16 + len {
            return Err("truncated record".into());
        }
        let data = &bytes[12..12 + len];
        let dcrc = u32::from_le_bytes(bytes[12 + len..16 + len].try_into().expect("4 bytes"));
        if dcrc != masked_crc32c(data) {
            return Err("data CRC mismatch".into());
        }
        out.push(data.to_vec());
        bytes = &bytes[16 + len..];
    }
    Ok(out)
}

/// The tag of a metric: `train_loss`, or `layer2/grad_norm` for per-layer metrics.
pub fn tag(metric: &str, layer: Option<usize>) -> String {
    match layer {
        Some(l) => format!("layer{l}/{metric}"),
        None => metric.to_string(),
    }
}

/// The tag of a record: [`tag`], or `2.body.0.weight/tensor_norm` for a tensor outside the
/// linear layers.
pub fn record_tag(m: &MetricRecord) -> String {
    match &m.module {
        Some(path) => format!("{path}/{}", m.metric),
        None => tag(&m.metric, m.layer),
    }
}

/// A whole event file: the version record, the hyperparameters (`session`, from
/// [`session_start_value`]) when given, one event per step holding that step's scalars, then the
/// histograms. `wall_time` is the run's start time in seconds since the epoch (event times are
/// that plus the step, so files are reproducible given the start).
pub fn event_file(
    metrics: &[MetricRecord],
    histograms: &[HistogramRecord],
    wall_time: f64,
    session: Option<SummaryValue>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let version = Event {
        wall_time,
        step: 0,
        file_version: Some("brain.Event:2".into()),
        summary: None,
    };
    write_record(&mut out, &version.encode_to_vec());
    if let Some(value) = session {
        let e = Event {
            wall_time,
            step: 0,
            file_version: None,
            summary: Some(Summary { value: vec![value] }),
        };
        write_record(&mut out, &e.encode_to_vec());
    }
    let mut steps: Vec<usize> = metrics.iter().map(|m| m.step).collect();
    steps.sort_unstable();
    steps.dedup();
    for step in steps {
        let value = metrics
            .iter()
            .filter(|m| m.step == step && m.value.is_finite())
            .map(|m| SummaryValue {
                tag: record_tag(m),
                simple_value: Some(m.value as f32),
                ..Default::default()
            })
            .collect::<Vec<_>>();
        if value.is_empty() {
            continue;
        }
        let e = Event {
            wall_time: wall_time + step as f64 * 1e-3,
            step: step as i64,
            file_version: None,
            summary: Some(Summary { value }),
        };
        write_record(&mut out, &e.encode_to_vec());
    }
    for h in histograms {
        let e = Event {
            wall_time: wall_time + h.step as f64 * 1e-3,
            step: h.step as i64,
            file_version: None,
            summary: Some(Summary {
                value: vec![SummaryValue {
                    tag: tag(&h.name, Some(h.layer)),
                    histo: Some(HistogramProto {
                        min: h.min,
                        max: h.max,
                        num: h.num,
                        sum: h.sum,
                        sum_squares: h.sum_squares,
                        bucket_limit: h.bucket_limit.clone(),
                        bucket: h.bucket.clone(),
                    }),
                    ..Default::default()
                }],
            }),
        };
        write_record(&mut out, &e.encode_to_vec());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_and_masking_match_the_reference_values() {
        // CRC32C("123456789") = 0xE3069283 (the standard check value).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        // Masked as TensorFlow's crc32c::Mask: rotate right by 15, add 0xa282ead8.
        assert_eq!(masked_crc32c(b"123456789"), 0xC78A_B0E5);
    }

    #[test]
    fn records_round_trip_and_corruption_is_detected() {
        let mut out = Vec::new();
        write_record(&mut out, b"hello");
        write_record(&mut out, b"");
        assert_eq!(
            read_records(&out).unwrap(),
            vec![b"hello".to_vec(), Vec::new()]
        );
        out[14] ^= 1;
        assert!(read_records(&out).is_err());
    }

    #[test]
    fn event_file_holds_version_scalars_and_histograms() {
        let metrics = vec![
            MetricRecord {
                step: 0,
                metric: "train_loss".into(),
                layer: None,
                value: 0.7,
                module: None,
            },
            MetricRecord {
                step: 0,
                metric: "grad_norm".into(),
                layer: Some(1),
                value: 0.1,
                module: None,
            },
            MetricRecord {
                step: 5,
                metric: "train_loss".into(),
                layer: None,
                value: 0.5,
                module: None,
            },
        ];
        let hist = vec![HistogramRecord::new(
            0,
            1,
            "weights",
            &[0.0, 1.0, 2.0, 3.0],
            3,
        )];
        let bytes = event_file(&metrics, &hist, 1.0e9, None);
        let records = read_records(&bytes).unwrap();
        assert_eq!(records.len(), 4);
        let first = Event::decode(records[0].as_slice()).unwrap();
        assert_eq!(first.file_version.as_deref(), Some("brain.Event:2"));
        let e = Event::decode(records[1].as_slice()).unwrap();
        let tags: Vec<&str> = e
            .summary
            .as_ref()
            .unwrap()
            .value
            .iter()
            .map(|v| v.tag.as_str())
            .collect();
        assert_eq!(tags, ["train_loss", "layer1/grad_norm"]);
        let h = Event::decode(records[3].as_slice())
            .unwrap()
            .summary
            .unwrap()
            .value[0]
            .histo
            .clone()
            .unwrap();
        assert_eq!((h.num, h.min, h.max, h.sum), (4.0, 0.0, 3.0, 6.0));
        assert_eq!(h.bucket.iter().sum::<f64>(), 4.0);
    }

    #[test]
    fn hparams_are_written_as_the_plugin_reads_them() {
        let raw: crate::config::RawConfig =
            toml::from_str("data = \"xor\"\nact = \"relu\"\nlr = 0.05\nbatch = \"full\"").unwrap();
        let (cfg, _) = crate::config::validate(&raw).unwrap();
        let session = session_start_value(&cfg, "abc", 1.5e9);
        let bytes = event_file(&[], &[], 1.5e9, Some(session));
        let records = read_records(&bytes).unwrap();
        assert_eq!(records.len(), 2);
        let e = Event::decode(records[1].as_slice()).unwrap();
        assert_eq!(e.step, 0);
        let v = &e.summary.unwrap().value[0];
        assert_eq!(v.tag, "_hparams_/session_start_info");
        // TensorBoard's NULL_TENSOR, byte for byte: make_tensor_proto([], DT_FLOAT, shape=(0,)).
        assert_eq!(
            v.tensor.as_ref().unwrap().encode_to_vec(),
            [0x08, 0x01, 0x12, 0x02, 0x12, 0x00]
        );
        let plugin = v.metadata.as_ref().unwrap().plugin_data.as_ref().unwrap();
        assert_eq!(plugin.plugin_name, "hparams");
        let data = HParamsPluginData::decode(plugin.content.as_slice()).unwrap();
        assert_eq!(data.version, 0);
        let start = data.session_start_info.unwrap();
        assert_eq!(
            (start.group_name.as_str(), start.start_time_secs),
            ("abc", 1.5e9)
        );
        let get = |k: &str| start.hparams[k].kind.clone().unwrap();
        assert_eq!(get("act"), HParamKind::Text("relu".into()));
        assert_eq!(get("lr"), HParamKind::Number(0.05));
        assert_eq!(get("batch"), HParamKind::Text("full".into()));
        assert_eq!(get("init"), HParamKind::Text("pytorch".into()));
        assert_eq!(get("arch"), HParamKind::Text("2-16-16-2".into()));
        assert!(matches!(get("data"), HParamKind::Text(d) if d.starts_with("xor:")));
    }
}
