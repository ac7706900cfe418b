//! Tail sampling over OTLP: with head sampling off, whole traces go out when their root ran
//! long or some span failed, and only those; decoded by the official OpenTelemetry classes.

use monkit_testsupport::otlp;
use monkit_testsupport::peers;
use monkit_testsupport::sink;
use monkit_testsupport::totals;

use otlp::decode;

use monkit::export::Sampler;
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;
use totals::total;

#[test]
fn slow_or_failed_traces_go_out_whole_and_only_they() {
    if !peers::have_python(
        &["opentelemetry.proto.collector.trace.v1.trace_service_pb2"],
        "opentelemetry-proto (pip)",
    ) {
        return;
    }
    let s = sink::sink("/v1/traces");
    let reg = monkit::Registry::new();
    let exporter = monkit_otlp::Builder::new(&s.url)
        .sampler(Sampler::Never)
        .tail_sampling(Some(Duration::from_millis(25)), true)
        .batch(64, Duration::from_millis(20))
        .install(&reg)
        .unwrap();
    let scope = reg.scope("tail");
    let (root, child) = (scope.func("root"), scope.func("child"));
    let mut wanted = HashSet::new();
    for i in 0..12 {
        let g = root.guard();
        let trace = monkit::current_span().unwrap().trace_id();
        match i {
            3 => {
                // Slow: the root runs past the threshold.
                child.task(|| ());
                std::thread::sleep(Duration::from_millis(30));
                wanted.insert(trace);
            }
            7 => {
                // Fast, but a child failed.
                child.guard().fail("refused");
                wanted.insert(trace);
            }
            _ => child.task(|| ()),
        }
        drop(g);
    }
    assert!(exporter.flush(Duration::from_secs(10)));
    let spans: Vec<Value> = s
        .got
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(h, b)| decode(h, b))
        .collect();
    let traces: HashSet<u128> = spans
        .iter()
        .map(|sp| u128::from_str_radix(sp["trace_id"].as_str().unwrap(), 16).unwrap())
        .collect();
    assert_eq!(traces, wanted, "exactly the slow and the failed trace");
    assert_eq!(spans.len(), 4, "each whole: root and child");
    assert_eq!(total(&reg, "tail_kept"), 2.0);
    assert_eq!(total(&reg, "tail_dropped"), 10.0);
    exporter.shutdown(Duration::from_secs(5));
}

#[test]
fn the_variables_set_it_and_bad_values_are_named() {
    let base = monkit_exporter::Pipeline::new("t", "http://127.0.0.1:1/");
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        monkit::settings::Vars::from_pairs(pairs.iter().copied())
    };
    assert!(base
        .clone()
        .tail_from_vars(&vars(&[
            ("MONKIT_TAIL_MIN_DURATION", "250ms"),
            ("MONKIT_TAIL_ERRORS", "1")
        ]))
        .is_ok());
    let e = base
        .clone()
        .tail_from_vars(&vars(&[("MONKIT_TAIL_MIN_DURATION", "soon")]))
        .unwrap_err();
    assert_eq!(e.setting, "MONKIT_TAIL_MIN_DURATION");
    let e = base
        .tail_from_vars(&vars(&[("MONKIT_TAIL_ERRORS", "maybe")]))
        .unwrap_err();
    assert_eq!(e.setting, "MONKIT_TAIL_ERRORS");
}
