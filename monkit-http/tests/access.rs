//! Who may read the pages, checked from outside with a real HTTP client against a real server
//! on a loopback port: the bearer token, the Host names a loopback server answers (DNS
//! rebinding), the pages served, and the headers every page carries.

use monkit::settings::Vars;

/// (status, headers by lower-case name, body) of a GET with `headers`.
fn get(url: &str, headers: &[(&str, &str)]) -> (u16, Vec<(String, String)>, String) {
    let mut req = ureq::get(url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let r = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{url}: {e}"),
    };
    let hs = r
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = r.header(&n).unwrap_or("").to_owned();
            (n.to_ascii_lowercase(), v)
        })
        .collect();
    (r.status(), hs, r.into_string().unwrap())
}

fn header<'a>(hs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    hs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn serve(vars: &[(&str, &str)]) -> (monkit_http::Server, String) {
    let options =
        monkit_http::ServeOptions::from_vars(&Vars::from_pairs(vars.iter().copied())).unwrap();
    let reg = monkit::Registry::new();
    reg.scope("app").func("work").task(|| ());
    let s = monkit_http::serve_with(reg, "127.0.0.1:0", options).unwrap();
    let base = format!("http://{}", s.local_addr());
    (s, base)
}

#[test]
fn a_token_is_required_on_every_page_when_set() {
    let (_s, base) = serve(&[("MONKIT_HTTP_TOKEN", "s3cret-t0ken")]);
    for page in ["/", "/stats", "/metrics", "/funcs/json", "/nope"] {
        let (status, hs, _) = get(&format!("{base}{page}"), &[]);
        assert_eq!(status, 401, "{page}");
        assert_eq!(
            header(&hs, "www-authenticate"),
            Some("Bearer realm=\"monkit\"")
        );
        let (status, ..) = get(
            &format!("{base}{page}"),
            &[("Authorization", "Bearer wrong-token!")],
        );
        assert_eq!(status, 401, "{page} with a wrong token");
    }
    let (status, _, body) = get(
        &format!("{base}/stats"),
        &[("Authorization", "Bearer s3cret-t0ken")],
    );
    assert_eq!(status, 200);
    assert!(body.contains("name=work"), "{body}");
}

#[test]
fn a_loopback_server_answers_loopback_host_names_and_the_listed_ones() {
    let (s, base) = serve(&[("MONKIT_HTTP_ALLOWED_HOSTS", "monitor.internal")]);
    let port = s.local_addr().port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "monitor.internal".to_owned(),
        format!("monitor.internal:{port}"),
    ] {
        let (status, ..) = get(&format!("{base}/stats"), &[("Host", &host)]);
        assert_eq!(status, 200, "{host}");
    }
    // A page on evil.example whose name now resolves to 127.0.0.1 (DNS rebinding).
    let (status, _, body) = get(&format!("{base}/stats"), &[("Host", "evil.example")]);
    assert_eq!(status, 421, "{body}");
}

#[test]
fn a_scraping_port_serves_only_its_pages() {
    let (_s, base) = serve(&[("MONKIT_HTTP_PAGES", "metrics,stats")]);
    assert_eq!(get(&format!("{base}/metrics"), &[]).0, 200);
    assert_eq!(get(&format!("{base}/stats"), &[]).0, 200);
    for page in [
        "/",
        "/funcs",
        "/ps/json",
        "/trace/json?regex=.&timeout=1s",
        "/trace/sample?regex=.",
    ] {
        assert_eq!(get(&format!("{base}{page}"), &[]).0, 404, "{page}");
    }
    let e = monkit_http::ServeOptions::from_vars(&Vars::from_pairs([(
        "MONKIT_HTTP_PAGES",
        "metrics,secrets",
    )]))
    .unwrap_err();
    assert_eq!(e.setting, "MONKIT_HTTP_PAGES");
}

#[test]
fn every_page_says_nosniff_and_the_active_ones_carry_a_policy() {
    let (_s, base) = serve(&[]);
    for page in ["/", "/stats", "/metrics", "/funcs/dot", "/nope"] {
        let (_, hs, _) = get(&format!("{base}{page}"), &[]);
        assert_eq!(
            header(&hs, "x-content-type-options"),
            Some("nosniff"),
            "{page}"
        );
    }
    let (_, hs, _) = get(&format!("{base}/"), &[]);
    let csp = header(&hs, "content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let (_, hs, _) = get(&format!("{base}/stats"), &[]);
    assert_eq!(header(&hs, "content-security-policy"), None);
}
