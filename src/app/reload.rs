//! What a reload (SIGHUP) of a running daemon does with a new config:
//! which of its changes apply to the running daemon, which need a restart,
//! and the config it then serves (the new one, with what needs a restart
//! kept as it runs). Pure: the daemon reads the file, checks it
//! ([`crate::app::checks::serve_problems`]) and applies the plan.
//!
//! Applied at a reload: `[server]` but for its addresses and paths (limits,
//! timeouts, the host name), `[authentication]`, `[tls]` (the certificate
//! and key are read again even when the section is unchanged;
//! `require_from`, `handshake_timeout`), the company (subsidiaries,
//! aliases, positions, categories and their acknowledgements),
//! `[acknowledgements]`, `[relay]` and each subsidiary's upstream,
//! `[templates]`. Needing a restart: the sockets (`server.listen`,
//! `tls.implicit_listen`, `metrics.listen`) and the files the daemon holds
//! open or keeps its key in (`server.database`, `server.state_dir`).

use crate::config::Config;

/// A reload worked out: what to apply, what is kept until a restart.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The sections the new config changes that are applied now, in the
    /// config's order (`server`, `tls`, `subsidiary`, …).
    pub applied: Vec<&'static str>,
    /// One line per change that needs a restart, with the value kept:
    /// `server.listen changed (serving on 127.0.0.1:2525 until a restart)`.
    pub needs_restart: Vec<String>,
    /// What the daemon serves from now on.
    pub config: Config,
}

/// Plans the reload from `running` to `new` (both already valid).
pub fn plan(running: &Config, new: Config) -> Plan {
    let mut config = new;
    let mut needs_restart = Vec::new();
    let mut keep = |key: &str, running: String, new: String| {
        if running != new {
            needs_restart.push(format!(
                "{key} changed (kept as {running} until a restart; the config says {new})"
            ));
            true
        } else {
            false
        }
    };
    let addresses = |a: &[std::net::SocketAddr]| {
        let list: Vec<String> = a.iter().map(|a| a.to_string()).collect();
        format!("[{}]", list.join(", "))
    };
    if keep(
        "server.listen",
        addresses(&running.server.listen),
        addresses(&config.server.listen),
    ) {
        config.server.listen = running.server.listen.clone();
    }
    if keep(
        "server.database",
        running.server.database.display().to_string(),
        config.server.database.display().to_string(),
    ) {
        config.server.database = running.server.database.clone();
    }
    if keep(
        "server.state_dir",
        running.server.state_dir.display().to_string(),
        config.server.state_dir.display().to_string(),
    ) {
        config.server.state_dir = running.server.state_dir.clone();
    }
    let implicit = |c: &Config| {
        c.tls
            .as_ref()
            .map(|t| t.implicit_listen.clone())
            .unwrap_or_default()
    };
    let running_implicit = implicit(running);
    if keep(
        "tls.implicit_listen",
        addresses(&running_implicit),
        addresses(&implicit(&config)),
    ) {
        match (&mut config.tls, &running.tls) {
            // Sessions on the implicit-TLS sockets need a certificate: a
            // [tls] taken away while they listen stays until a restart.
            (None, Some(tls)) => config.tls = Some(tls.clone()),
            (Some(new), _) => new.implicit_listen = running_implicit,
            (None, None) => {}
        }
    }
    let metrics = |c: &Config| {
        c.metrics
            .as_ref()
            .map_or("off".to_string(), |m| m.listen.to_string())
    };
    if keep("metrics.listen", metrics(running), metrics(&config)) {
        config.metrics = running.metrics.clone();
    }

    // Compared as they print: every section is plain data in lists, so the
    // same config prints the same.
    let same =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") == format!("{b:?}");
    let sections: [(&'static str, bool); 10] = [
        ("server", same(&running.server, &config.server)),
        (
            "authentication",
            same(&running.authentication, &config.authentication),
        ),
        // The certificate and key files are read again at every reload.
        ("tls", config.tls.is_none() && running.tls.is_none()),
        (
            "acknowledgements",
            same(&running.acknowledgements, &config.acknowledgements),
        ),
        (
            "subsidiary",
            same(&running.subsidiaries, &config.subsidiaries),
        ),
        ("category", same(&running.categories, &config.categories)),
        ("position", same(&running.positions, &config.positions)),
        ("relay", same(&running.relay, &config.relay)),
        (
            "templates",
            running.templates_dir == config.templates_dir
                && running.template_languages == config.template_languages,
        ),
        ("metrics", running.metrics == config.metrics),
    ];
    let applied = sections
        .into_iter()
        .filter(|(_, same)| !same)
        .map(|(name, _)| name)
        .collect();
    Plan {
        applied,
        needs_restart,
        config,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(text: &str) -> Config {
        crate::config::parse(
            &format!(
                "{text}\n[[subsidiary]]\nid = \"acme\"\njobs_address = \"jobs@acme.example\"\n"
            ),
            Path::new("/etc/jobmail/jobmail.toml"),
        )
        .unwrap()
    }

    #[test]
    fn the_same_config_changes_nothing() {
        let running = config("[server]\nmax_recipients = 5");
        let plan = plan(&running, running.clone());
        assert!(plan.applied.is_empty(), "{:?}", plan.applied);
        assert!(plan.needs_restart.is_empty());
    }

    #[test]
    fn limits_apply_and_addresses_and_paths_wait_for_a_restart() {
        let running = config(
            "[server]\nlisten = [\"127.0.0.1:2525\"]\ndatabase = \"/var/lib/jobmail/a.db\"\nmax_recipients = 5",
        );
        let new = config(
            "[server]\nlisten = [\"0.0.0.0:25\"]\ndatabase = \"/srv/jobmail/b.db\"\nmax_recipients = 7\n[metrics]\nlisten = \"127.0.0.1:9125\"",
        );
        let plan = plan(&running, new);
        assert_eq!(plan.applied, ["server"]);
        assert_eq!(plan.config.server.max_recipients, 7);
        assert_eq!(plan.config.server.listen, running.server.listen);
        assert_eq!(plan.config.server.database, running.server.database);
        assert_eq!(plan.config.metrics, None);
        assert_eq!(plan.needs_restart.len(), 4, "{:?}", plan.needs_restart);
        assert_eq!(
            plan.needs_restart[0],
            "server.listen changed (kept as [127.0.0.1:2525] until a restart; the config says [0.0.0.0:25])"
        );
        assert!(plan.needs_restart[1].starts_with("server.database changed"));
        // state_dir follows the database by default.
        assert!(plan.needs_restart[2].starts_with("server.state_dir changed"));
        assert!(plan.needs_restart[3].starts_with("metrics.listen changed (kept as off"));
    }

    #[test]
    fn the_company_and_the_certificate_apply() {
        let running = config("");
        let mut new = config(
            "[tls]\ncertificate = \"/c.pem\"\nkey = \"/k.pem\"\nrequire_from = [\"10.0.0.0/8\"]",
        );
        new.subsidiaries[0].aliases =
            vec![crate::mail::address::Address::parse("karriere@acme.example").unwrap()];
        let plan = plan(&running, new);
        assert_eq!(plan.applied, ["tls", "subsidiary"]);
        assert!(plan.needs_restart.is_empty());
        // With [tls] as it was, its files are still read again.
        let running = plan.config.clone();
        assert_eq!(super::plan(&running, running.clone()).applied, ["tls"]);
    }

    #[test]
    fn implicit_tls_sockets_keep_their_certificate_until_a_restart() {
        let running = config(
            "[tls]\ncertificate = \"/c.pem\"\nkey = \"/k.pem\"\nimplicit_listen = [\"127.0.0.1:465\"]",
        );
        let plan = plan(&running, config(""));
        assert_eq!(plan.needs_restart.len(), 1, "{:?}", plan.needs_restart);
        assert!(plan.needs_restart[0].starts_with("tls.implicit_listen changed"));
        let tls = plan.config.tls.expect("kept");
        assert_eq!(tls.implicit_listen, ["127.0.0.1:465".parse().unwrap()]);
    }
}
