//! A Grafana dashboard of a registry's objectives (`/slo/dashboard`): per objective and
//! indicator its error budget left, its burn rates by window and its bad-event ratio, and the
//! covered functions' call rates and p99 latency, all from the series `/metrics` produces
//! (`monkit_slo_*`, `monkit_function_*`). Import it and pick the Prometheus data source.

use super::Report;
use serde_json::{json, Value};

/// `s` as a PromQL regex matching exactly it.
fn exactly(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `s` inside a PromQL double-quoted string.
fn lit(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn panel(id: usize, title: &str, expr: &str, legend: &str, unit: &str, x: u32, y: u32) -> Value {
    json!({
        "id": id,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": "A", "expr": expr, "legendFormat": legend}],
    })
}

/// The dashboard for `reports` ([`Registry::objectives`](crate::Registry::objectives)).
pub fn dashboard(reports: &[Report]) -> Value {
    let mut panels = Vec::new();
    let mut y = 0;
    for r in reports {
        let sel = format!("objective=\"{}\",sli=\"{}\"", lit(&r.name), r.sli.as_str());
        let what = format!("{} ({})", r.name, r.sli.as_str());
        let top = y;
        let mut add = |title: String, expr: String, legend: &str, unit: &str, x: u32, row: u32| {
            let id = panels.len() + 1;
            panels.push(panel(id, &title, &expr, legend, unit, x, top + row * 8));
        };
        add(
            format!("{what}: error budget left"),
            format!("monkit_slo_budget_remaining{{{sel}}}"),
            "{{instance}}",
            "percentunit",
            0,
            0,
        );
        add(
            format!("{what}: burn rate by window"),
            format!("monkit_slo_burn_rate{{{sel}}}"),
            "{{window}} {{instance}}",
            "none",
            12,
            0,
        );
        add(
            format!("{what}: bad ratio over 5m (target {:.3}%)", r.target * 100.0),
            format!(
                "sum(rate(monkit_slo_bad_events_total{{{sel}}}[5m])) / sum(rate(monkit_slo_events_total{{{sel}}}[5m]))"
            ),
            "bad ratio",
            "percentunit",
            0,
            1,
        );
        let names = r
            .functions
            .iter()
            .map(|f| exactly(f.split_once('.').map_or(f.as_str(), |(_, n)| n)))
            .collect::<Vec<_>>()
            .join("|");
        let funcs = format!("name=~\"{}\"", lit(&names));
        add(
            format!("{what}: covered functions, calls per second"),
            format!("sum by (scope, name) (rate(monkit_function_calls_total{{{funcs}}}[1m]))"),
            "{{scope}}.{{name}}",
            "reqps",
            12,
            1,
        );
        add(
            format!("{what}: covered functions, p99 latency of successes"),
            format!(
                "histogram_quantile(0.99, sum by (le, scope, name) (rate(monkit_function_duration_seconds_bucket{{{funcs},kind=\"success\"}}[1m])))"
            ),
            "{{scope}}.{{name}}",
            "s",
            0,
            2,
        );
        y += 24;
    }
    json!({
        "title": "monkit objectives",
        "uid": "monkit-slo",
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [{
            "name": "datasource",
            "type": "datasource",
            "query": "prometheus",
            "label": "Prometheus",
        }]},
        "panels": panels,
    })
}
