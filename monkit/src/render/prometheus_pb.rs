//! The Prometheus protobuf exposition: length-delimited `io.prometheus.client.MetricFamily`
//! messages (prometheus/client_model's `metrics.proto`, proto2), with native histograms.
//!
//! The messages are declared here with prost's derive rather than generated from the
//! `.proto`, so building needs no `protoc`; field numbers and types follow `metrics.proto`.

use prost::Message;

#[derive(Clone, PartialEq, Message)]
struct LabelPair {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    value: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct Gauge {
    #[prost(double, optional, tag = "1")]
    value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
struct Counter {
    #[prost(double, optional, tag = "1")]
    value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
struct Quantile {
    #[prost(double, optional, tag = "1")]
    quantile: Option<f64>,
    #[prost(double, optional, tag = "2")]
    value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
struct Summary {
    #[prost(uint64, optional, tag = "1")]
    sample_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    quantile: Vec<Quantile>,
}

#[derive(Clone, PartialEq, Message)]
struct Timestamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

#[derive(Clone, PartialEq, Message)]
struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    label: Vec<LabelPair>,
    #[prost(double, optional, tag = "2")]
    value: Option<f64>,
    #[prost(message, optional, tag = "3")]
    timestamp: Option<Timestamp>,
}

#[derive(Clone, PartialEq, Message)]
struct Bucket {
    #[prost(uint64, optional, tag = "1")]
    cumulative_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    upper_bound: Option<f64>,
    #[prost(message, optional, tag = "3")]
    exemplar: Option<Exemplar>,
}

#[derive(Clone, PartialEq, Message)]
struct BucketSpan {
    #[prost(sint32, optional, tag = "1")]
    offset: Option<i32>,
    #[prost(uint32, optional, tag = "2")]
    length: Option<u32>,
}

#[derive(Clone, PartialEq, Message)]
struct Histogram {
    #[prost(uint64, optional, tag = "1")]
    sample_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    bucket: Vec<Bucket>,
    #[prost(sint32, optional, tag = "5")]
    schema: Option<i32>,
    #[prost(double, optional, tag = "6")]
    zero_threshold: Option<f64>,
    #[prost(uint64, optional, tag = "7")]
    zero_count: Option<u64>,
    #[prost(message, repeated, tag = "9")]
    negative_span: Vec<BucketSpan>,
    #[prost(sint64, repeated, packed = "false", tag = "10")]
    negative_delta: Vec<i64>,
    #[prost(message, repeated, tag = "12")]
    positive_span: Vec<BucketSpan>,
    #[prost(sint64, repeated, packed = "false", tag = "13")]
    positive_delta: Vec<i64>,
    #[prost(message, repeated, tag = "16")]
    exemplars: Vec<Exemplar>,
}

#[derive(Clone, PartialEq, Message)]
struct Metric {
    #[prost(message, repeated, tag = "1")]
    label: Vec<LabelPair>,
    #[prost(message, optional, tag = "2")]
    gauge: Option<Gauge>,
    #[prost(message, optional, tag = "3")]
    counter: Option<Counter>,
    #[prost(message, optional, tag = "4")]
    summary: Option<Summary>,
    #[prost(message, optional, tag = "7")]
    histogram: Option<Histogram>,
}

#[derive(Clone, PartialEq, Message)]
struct MetricFamily {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    help: Option<String>,
    #[prost(int32, optional, tag = "3")]
    r#type: Option<i32>,
    #[prost(message, repeated, tag = "4")]
    metric: Vec<Metric>,
}

/// A family's type, as `MetricType` numbers it.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Counter = 0,
    Gauge = 1,
    Summary = 2,
    Histogram = 4,
}

/// One labelled value, borrowed from the renderer's families.
pub(crate) enum Sample<'a> {
    Plain(f64),
    Summary {
        quantiles: &'a [(f64, f64)],
        sum: f64,
        count: u64,
    },
    Histogram {
        classic: &'a [(f64, u64)],
        native: &'a crate::stats::Histogram,
        exemplars: &'a [crate::stats::Exemplar],
    },
}

pub(crate) struct Family<'a> {
    pub(crate) name: String,
    pub(crate) help: &'a str,
    pub(crate) kind: Kind,
    pub(crate) metrics: Vec<(&'a [(String, String)], Sample<'a>)>,
}

/// Native buckets as spans of consecutive indices and count deltas.
fn spans(buckets: &[(i32, u64)]) -> (Vec<BucketSpan>, Vec<i64>) {
    let mut spans: Vec<BucketSpan> = Vec::new();
    let mut deltas = Vec::with_capacity(buckets.len());
    let (mut prev_key, mut prev_count) = (None::<i32>, 0i64);
    for &(k, n) in buckets {
        match prev_key {
            Some(p) if k == p + 1 => {
                if let Some(last) = spans.last_mut() {
                    last.length = Some(last.length.unwrap_or(0) + 1);
                }
            }
            Some(p) => spans.push(BucketSpan {
                offset: Some(k - p - 1),
                length: Some(1),
            }),
            None => spans.push(BucketSpan {
                offset: Some(k),
                length: Some(1),
            }),
        }
        deltas.push(n as i64 - prev_count);
        prev_count = n as i64;
        prev_key = Some(k);
    }
    (spans, deltas)
}

/// An exemplar as the exposition carries it: trace and span ids as labels.
fn exemplar(e: &crate::stats::Exemplar) -> Exemplar {
    let label = |name: &str, value: String| LabelPair {
        name: Some(name.to_owned()),
        value: Some(value),
    };
    Exemplar {
        label: vec![
            label("trace_id", format!("{:032x}", e.trace_id)),
            label("span_id", format!("{:016x}", e.span_id)),
        ],
        value: Some(e.value),
        timestamp: Some(Timestamp {
            seconds: (e.unix_nanos / 1_000_000_000) as i64,
            nanos: (e.unix_nanos % 1_000_000_000) as i32,
        }),
    }
}

fn histogram(
    classic: &[(f64, u64)],
    h: &crate::stats::Histogram,
    exemplars: &[crate::stats::Exemplar],
) -> Histogram {
    let (positive_span, positive_delta) = spans(&h.positive);
    let (negative_span, negative_delta) = spans(&h.negative);
    let mut below = f64::NEG_INFINITY;
    Histogram {
        sample_count: Some(h.count),
        sample_sum: Some(h.sum),
        bucket: classic
            .iter()
            .map(|&(le, n)| {
                let ex = crate::stats::in_bucket(exemplars, below, le).map(exemplar);
                below = le;
                Bucket {
                    cumulative_count: Some(n),
                    upper_bound: Some(le),
                    exemplar: ex,
                }
            })
            .collect(),
        schema: Some(crate::stats::Histogram::SCHEMA),
        zero_threshold: Some(crate::stats::Histogram::ZERO_THRESHOLD),
        zero_count: Some(h.zero_count),
        negative_span,
        negative_delta,
        positive_span,
        positive_delta,
        exemplars: exemplars.iter().map(exemplar).collect(),
    }
}

pub(crate) fn encode<'a>(families: impl Iterator<Item = Family<'a>>) -> Vec<u8> {
    let mut out = Vec::new();
    for f in families {
        let metric = f
            .metrics
            .iter()
            .map(|(labels, s)| {
                let mut m = Metric {
                    label: labels
                        .iter()
                        .map(|(k, v)| LabelPair {
                            name: Some(k.clone()),
                            value: Some(v.clone()),
                        })
                        .collect(),
                    ..Metric::default()
                };
                match s {
                    Sample::Plain(v) => match f.kind {
                        Kind::Counter => m.counter = Some(Counter { value: Some(*v) }),
                        _ => m.gauge = Some(Gauge { value: Some(*v) }),
                    },
                    Sample::Summary {
                        quantiles,
                        sum,
                        count,
                    } => {
                        m.summary = Some(Summary {
                            sample_count: Some(*count),
                            sample_sum: Some(*sum),
                            quantile: quantiles
                                .iter()
                                .map(|&(q, v)| Quantile {
                                    quantile: Some(q),
                                    value: Some(v),
                                })
                                .collect(),
                        })
                    }
                    Sample::Histogram {
                        classic,
                        native,
                        exemplars,
                    } => m.histogram = Some(histogram(classic, native, exemplars)),
                }
                m
            })
            .collect();
        let fam = MetricFamily {
            name: Some(f.name),
            help: Some(f.help.to_owned()),
            r#type: Some(f.kind as i32),
            metric,
        };
        // Encoding into a Vec cannot fail.
        let _ = fam.encode_length_delimited(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_deltas() {
        let (s, d) = spans(&[(-3, 2), (-2, 5), (4, 1), (5, 1), (9, 7)]);
        let s: Vec<(i32, u32)> = s
            .iter()
            .map(|s| (s.offset.unwrap(), s.length.unwrap()))
            .collect();
        assert_eq!(s, vec![(-3, 2), (5, 2), (3, 1)]);
        assert_eq!(d, vec![2, 3, -4, 0, 6]);
    }
}
