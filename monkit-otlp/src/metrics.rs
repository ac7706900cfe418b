//! A registry's stats as an OTLP `ExportMetricsServiceRequest`: function calls by outcome as
//! monotonic Sums, running and highwater as Gauges, durations as ExponentialHistograms taken
//! from the native buckets one for one, every source as a Sum, Gauge or ExponentialHistogram,
//! tags as attributes.
//!
//! The core's buckets are Prometheus schema 6: key `k` holds `(2^((k-1)/64), 2^(k/64)]`. OTLP
//! scale 6 numbers its buckets from the lower bound, index `i` holding
//! `(2^(i/64), 2^((i+1)/64)]`: the same boundaries, index `k - 1`.

use crate::encode::kv;
use monkit::registry::Item;
use monkit::stats::{Exemplar, Histogram, Reading};
use monkit::Registry;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric, number_data_point,
    AggregationTemporality, Exemplar as OtlpExemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::collections::{BTreeMap, HashMap};

/// Sums and histograms since the start, or since the last push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Temporality {
    /// Totals since the process started (OTLP's and Prometheus's default).
    Cumulative,
    /// What changed since the previous push.
    Delta,
}

/// What the previous push sent, for delta temporality: by series.
#[derive(Default)]
pub(crate) struct Previous {
    sums: HashMap<String, f64>,
    hists: HashMap<String, (u64, f64, u64, BTreeMap<i32, u64>)>,
    at: u64,
}

/// Metrics by name, each with its data points.
#[derive(Default)]
struct Out {
    metrics: BTreeMap<String, Metric>,
}

impl Out {
    /// The metric `name`, made with `data` (no points yet) the first time.
    fn entry(
        &mut self,
        name: &str,
        unit: &str,
        help: &str,
        data: impl FnOnce() -> metric::Data,
    ) -> &mut metric::Data {
        let m = self
            .metrics
            .entry(name.to_owned())
            .or_insert_with(|| Metric {
                name: name.to_owned(),
                description: help.to_owned(),
                unit: unit.to_owned(),
                data: Some(data()),
                ..Metric::default()
            });
        m.data
            .get_or_insert_with(|| metric::Data::Gauge(Gauge::default()))
    }
}

fn attrs(scope: &str, tags: &monkit::stats::Tags, extra: &[(&str, &str)]) -> Vec<KeyValue> {
    let mut a = vec![kv("monkit.scope", scope)];
    for (k, v) in tags.iter() {
        a.push(kv(k, v));
    }
    for (k, v) in extra {
        a.push(kv(k, v));
    }
    a
}

/// A series' identity for the delta state: metric name and attributes.
fn key(name: &str, a: &[KeyValue]) -> String {
    let mut k = name.to_owned();
    for kv in a {
        k.push('\u{1f}');
        k.push_str(&kv.key);
        k.push('=');
        if let Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(v)) =
            kv.value.as_ref().and_then(|v| v.value.as_ref())
        {
            k.push_str(v);
        }
    }
    k
}

struct Ctx<'a> {
    temporality: Temporality,
    prev: &'a Previous,
    next: Previous,
    start: u64,
    now: u64,
}

impl Ctx<'_> {
    fn start_for_sums(&self) -> u64 {
        match self.temporality {
            Temporality::Cumulative => self.start,
            Temporality::Delta => self.prev.at.max(self.start),
        }
    }

    fn temporality(&self) -> i32 {
        match self.temporality {
            Temporality::Cumulative => AggregationTemporality::Cumulative as i32,
            Temporality::Delta => AggregationTemporality::Delta as i32,
        }
    }

    fn point(&self, a: Vec<KeyValue>, v: f64, start: u64) -> NumberDataPoint {
        NumberDataPoint {
            attributes: a,
            start_time_unix_nano: start,
            time_unix_nano: self.now,
            value: Some(number_data_point::Value::AsDouble(v)),
            ..NumberDataPoint::default()
        }
    }

    fn sum(
        &mut self,
        out: &mut Out,
        name: &str,
        unit: &str,
        help: &str,
        a: Vec<KeyValue>,
        total: f64,
    ) {
        let k = key(name, &a);
        self.next.sums.insert(k.clone(), total);
        let v = match self.temporality {
            Temporality::Cumulative => total,
            Temporality::Delta => total - self.prev.sums.get(&k).copied().unwrap_or(0.0),
        };
        let p = self.point(a, v, self.start_for_sums());
        let temporality = self.temporality();
        if let metric::Data::Sum(s) = out.entry(name, unit, help, || {
            metric::Data::Sum(Sum {
                data_points: Vec::new(),
                aggregation_temporality: temporality,
                is_monotonic: true,
            })
        }) {
            s.data_points.push(p);
        }
    }

    fn gauge(&self, out: &mut Out, name: &str, unit: &str, help: &str, a: Vec<KeyValue>, v: f64) {
        let p = self.point(a, v, 0);
        if let metric::Data::Gauge(g) = out.entry(name, unit, help, || {
            metric::Data::Gauge(Gauge {
                data_points: Vec::new(),
            })
        }) {
            g.data_points.push(p);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn histogram(
        &mut self,
        out: &mut Out,
        name: &str,
        unit: &str,
        help: &str,
        a: Vec<KeyValue>,
        h: &Histogram,
        exemplars: &[Exemplar],
    ) {
        let k = key(name, &a);
        let pos: BTreeMap<i32, u64> = h.positive.iter().copied().collect();
        self.next
            .hists
            .insert(k.clone(), (h.count, h.sum, h.zero_count, pos.clone()));
        let (count, sum, zero, pos) = match (self.temporality, self.prev.hists.get(&k)) {
            (Temporality::Delta, Some((c, s, z, p))) => (
                h.count.saturating_sub(*c),
                h.sum - s,
                h.zero_count.saturating_sub(*z),
                pos.iter()
                    .map(|(key, n)| (*key, n.saturating_sub(p.get(key).copied().unwrap_or(0))))
                    .collect(),
            ),
            _ => (h.count, h.sum, h.zero_count, pos),
        };
        let p = ExponentialHistogramDataPoint {
            attributes: a,
            start_time_unix_nano: self.start_for_sums(),
            time_unix_nano: self.now,
            count,
            sum: Some(sum),
            scale: Histogram::SCHEMA,
            zero_count: zero,
            zero_threshold: Histogram::ZERO_THRESHOLD,
            positive: Some(buckets(&pos)),
            negative: Some(buckets(&h.negative.iter().copied().collect())),
            exemplars: exemplars.iter().map(otlp_exemplar).collect(),
            ..ExponentialHistogramDataPoint::default()
        };
        let temporality = self.temporality();
        if let metric::Data::ExponentialHistogram(e) = out.entry(name, unit, help, || {
            metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: Vec::new(),
                aggregation_temporality: temporality,
            })
        }) {
            e.data_points.push(p);
        }
    }
}

/// Native buckets `(key, count)` as OTLP's: an offset (the first key less one) and a count for
/// every index from there.
fn buckets(by_key: &BTreeMap<i32, u64>) -> Buckets {
    let (Some((&first, _)), Some((&last, _))) = (by_key.first_key_value(), by_key.last_key_value())
    else {
        return Buckets::default();
    };
    let mut counts = vec![0u64; (last - first + 1) as usize];
    for (k, n) in by_key {
        counts[(k - first) as usize] = *n;
    }
    Buckets {
        offset: first - 1,
        bucket_counts: counts,
    }
}

fn otlp_exemplar(e: &Exemplar) -> OtlpExemplar {
    OtlpExemplar {
        time_unix_nano: e.unix_nanos,
        span_id: e.span_id.to_be_bytes().to_vec(),
        trace_id: e.trace_id.to_be_bytes().to_vec(),
        value: Some(exemplar::Value::AsDouble(e.value)),
        ..OtlpExemplar::default()
    }
}

/// Every stat of `registry` now, as one request for `resource`, and what it sends. `prev` holds
/// what the last request that went out sent (delta temporality sends the change since then);
/// the second value takes its place once this one has gone out, so a failed push loses nothing.
pub(crate) fn request(
    registry: &Registry,
    resource: &Resource,
    temporality: Temporality,
    prev: &Previous,
    start: u64,
    now: u64,
) -> (ExportMetricsServiceRequest, Previous) {
    let mut out = Out::default();
    let mut ctx = Ctx {
        temporality,
        prev,
        next: Previous::default(),
        start,
        now,
    };
    registry.read(|scope, item| match item {
        Item::Func(f, s) => {
            let name = [("name", f.name())];
            let base = || attrs(scope, f.tags(), &name);
            for (outcome, n) in [("success", s.successes), ("panic", s.panics)] {
                let mut a = base();
                a.push(kv("outcome", outcome));
                ctx.sum(
                    &mut out,
                    "monkit.function.calls",
                    "{call}",
                    "Calls of the function that ended, by outcome.",
                    a,
                    n as f64,
                );
            }
            for (kind, n) in &s.errors {
                let mut a = base();
                a.push(kv("outcome", "error"));
                a.push(kv("error.type", kind));
                ctx.sum(
                    &mut out,
                    "monkit.function.calls",
                    "{call}",
                    "Calls of the function that ended, by outcome.",
                    a,
                    *n as f64,
                );
            }
            ctx.gauge(
                &mut out,
                "monkit.function.running",
                "{call}",
                "Calls of the function running now.",
                base(),
                s.current as f64,
            );
            ctx.gauge(
                &mut out,
                "monkit.function.highwater",
                "{call}",
                "Most calls of the function running at once.",
                base(),
                s.highwater as f64,
            );
            for (kind, times, ex) in [
                ("success", &s.success_times, &s.success_exemplars),
                ("failure", &s.failure_times, &s.failure_exemplars),
            ] {
                let mut a = base();
                a.push(kv("kind", kind));
                ctx.histogram(
                    &mut out,
                    "monkit.function.duration",
                    "s",
                    "Duration of calls of the function, by outcome.",
                    a,
                    &times.histogram(),
                    ex,
                );
            }
            if let Some(p) = &s.polls {
                let sums = [
                    ("monkit.function.polls", "{poll}", "Polls of the function's async calls.", p.polls as f64),
                    ("monkit.function.slow_polls", "{poll}", "Polls longer than the slow-poll threshold: the worker thread was held that long.", p.slow_polls as f64),
                ];
                for (metric, unit, help, v) in sums {
                    ctx.sum(&mut out, metric, unit, help, base(), v);
                }
                ctx.gauge(
                    &mut out,
                    "monkit.function.max_poll",
                    "s",
                    "Longest poll of one of the function's async calls.",
                    base(),
                    p.max_poll_ns as f64 / 1e9,
                );
                for (kind, times) in [("success", &p.busy_success), ("failure", &p.busy_failure)] {
                    let mut a = base();
                    a.push(kv("kind", kind));
                    ctx.histogram(
                        &mut out,
                        "monkit.function.busy",
                        "s",
                        "Busy time of calls of the function (the sum of each call's polls), by outcome.",
                        a,
                        &times.histogram(),
                        &[],
                    );
                }
            }
        }
        Item::Source {
            name,
            tags,
            reading,
        } => {
            let a = || attrs(scope, tags, &[]);
            match reading {
                Reading::Meter { total, .. } => {
                    ctx.sum(&mut out, name, "", "A monkit meter.", a(), *total as f64)
                }
                Reading::Counter { value, .. } => {
                    ctx.gauge(&mut out, name, "", "A monkit counter.", a(), *value as f64)
                }
                Reading::Gauge(v) => ctx.gauge(&mut out, name, "", "A monkit gauge.", a(), *v),
                Reading::Values(s) | Reading::Histogram(s) => ctx.histogram(
                    &mut out,
                    name,
                    "",
                    "A monkit distribution.",
                    a(),
                    &s.histogram(),
                    &[],
                ),
                Reading::Durations(s) => ctx.histogram(
                    &mut out,
                    name,
                    "s",
                    "A monkit duration distribution.",
                    a(),
                    &s.histogram(),
                    &[],
                ),
                Reading::Bools { trues, falses, .. } => {
                    let mut t = a();
                    t.push(kv("value", "true"));
                    ctx.sum(
                        &mut out,
                        name,
                        "",
                        "Observations of a monkit boolean.",
                        t,
                        *trues as f64,
                    );
                    let mut f = a();
                    f.push(kv("value", "false"));
                    ctx.sum(
                        &mut out,
                        name,
                        "",
                        "Observations of a monkit boolean.",
                        f,
                        *falses as f64,
                    );
                }
                Reading::Raw(fields) => {
                    for (field, v) in fields {
                        ctx.gauge(
                            &mut out,
                            &format!("{name}.{field}"),
                            "",
                            "An aggregate of a monkit raw value.",
                            a(),
                            *v,
                        );
                    }
                }
                Reading::Custom(series) => {
                    for (k, field, v) in series {
                        let mut at = attrs(scope, &k.tags, &[]);
                        at.push(kv("field", field));
                        ctx.gauge(
                            &mut out,
                            &k.measurement,
                            "",
                            "A custom monkit source.",
                            at,
                            *v,
                        );
                    }
                }
                _ => {}
            }
        }
        _ => {}
    });
    ctx.next.at = now;
    let next = ctx.next;
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource.clone()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "monkit".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..InstrumentationScope::default()
                }),
                metrics: out.metrics.into_values().collect(),
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    };
    (req, next)
}
