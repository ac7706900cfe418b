//! The README's table of variables is the code's: every variable a library crate reads is
//! declared where it is read (`monkit::settings::declare!`), and the table between the
//! `settings-table` markers must list exactly those, with their types and defaults.
//! `MONKIT_BLESS=1 cargo test -p monkit-examples --test settings_table` rewrites it.

use monkit::settings::{declared, Var};

/// Every library crate, linked, so their declarations are collected.
fn link_every_crate() {
    let _ = (
        monkit_http::ServeOptions::from_env as fn() -> _,
        monkit_zipkin::Builder::from_env as fn() -> _,
        monkit_otlp::Builder::from_env as fn() -> _,
        monkit_graphite::Builder::from_env as fn() -> _,
    );
}

fn table(vars: &[Var]) -> String {
    let mut t =
        String::from("| variable | type | default | read by | sets |\n|---|---|---|---|---|\n");
    for v in vars {
        t.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            v.name,
            v.kind.word(),
            v.default,
            v.krate,
            v.about
        ));
    }
    t
}

#[test]
fn the_readme_table_lists_every_declared_variable() {
    link_every_crate();
    let vars: Vec<Var> = declared()
        .into_iter()
        .filter(|v| v.krate != "monkit-examples")
        .collect();
    for must in [
        "MONKIT_TAGS",
        "MONKIT_ZIPKIN_GZIP",
        "MONKIT_GRAPHITE_INTERVAL",
        "MONKIT_HTTP_IDLE_TIMEOUT",
        "MONKIT_TAIL_ERRORS",
        "OTEL_TRACES_SAMPLER",
    ] {
        assert!(
            vars.iter().any(|v| v.name == must),
            "{must} is not declared"
        );
    }
    let want = table(&vars);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let (start, end) = ("<!-- settings-table -->\n", "<!-- /settings-table -->");
    let a = readme
        .find(start)
        .expect("README has the settings-table markers")
        + start.len();
    let b = readme[a..].find(end).expect("the closing marker") + a;
    if readme[a..b] != want {
        if std::env::var("MONKIT_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(path, format!("{}{want}{}", &readme[..a], &readme[b..])).unwrap();
        } else {
            panic!("the README's settings table differs from the code's; it should be:\n{want}");
        }
    }
}

/// Every `MONKIT_*` or `OTEL_*` name in a library's source is declared: a variable read but
/// not in the table would be a setting nobody can find.
#[test]
fn every_variable_named_in_library_source_is_declared() {
    link_every_crate();
    let names: Vec<&str> = declared().iter().map(|v| v.name).collect();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut missing = Vec::new();
    for krate in std::fs::read_dir(root).unwrap().map(|e| e.unwrap().path()) {
        let src = krate.join("src");
        // The examples and the test support are not libraries a user configures.
        let not_a_library = krate.ends_with("examples") || krate.ends_with("testsupport");
        if !krate.join("Cargo.toml").exists() || !src.is_dir() || not_a_library {
            continue;
        }
        let mut stack = vec![src];
        while let Some(dir) = stack.pop() {
            for p in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let text = std::fs::read_to_string(&p).unwrap();
                for (i, _) in text.match_indices('"') {
                    let rest = &text[i + 1..];
                    let word: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    let is_var = (word.starts_with("MONKIT_") || word.starts_with("OTEL_"))
                        && rest[word.len()..].starts_with('"');
                    // The signal forms (`OTEL_EXPORTER_OTLP_TRACES_*`) are documented with the
                    // shared one.
                    let signal_form = word.contains("_TRACES_")
                        || word.contains("_METRICS_")
                        || word.contains("_LOGS_");
                    if is_var && !signal_form && !names.contains(&word.as_str()) {
                        missing.push(format!("{word} ({})", p.display()));
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "read but not declared: {missing:?}");
}
