//! Typed configuration from one TOML file, with every error reported at once.
//!
//! The file is read into a spanned TOML tree and walked by hand, so that an
//! unknown key, a wrong type, a value out of range and a dangling reference
//! are all collected, each with its line and key path (`position[2].category`),
//! instead of stopping at the first. Only validated values leave this module.
//! It reads the config file and nothing else: no sockets, no database.

pub mod company;

mod access;
mod api;
mod authentication;
mod checks;
mod metrics;
mod reader;
mod recruiting;
mod relay;
mod server;
mod subsidiary;
#[cfg(test)]
mod tests;
mod tls;
mod webhooks;

pub use access::{DocumentCategory, DocumentsConfig, Right, Role, SENT, UNSORTED, User};
pub use api::ApiConfig;
pub use authentication::*;
pub use metrics::*;
pub use reader::{ConfigError, ConfigErrors};
pub use recruiting::*;
pub use relay::*;
pub use server::*;
pub use subsidiary::*;
pub use tls::*;
pub use webhooks::{EVENTS, Webhook, WebhookSecret, read_certificates};

use access::{check_access, read_document_categories, read_documents, read_roles, read_users};
use api::read_api;
use checks::cross_check;
use reader::*;
use webhooks::read_webhooks;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::mail::address::Address;

/// Where `jobmail` looks when neither `--config` nor `$JOBMAIL_CONFIG` says.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/jobmail/jobmail.toml";

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from.
    pub path: PathBuf,
    pub server: ServerConfig,
    pub subsidiaries: Vec<Subsidiary>,
    pub categories: Vec<Category>,
    pub positions: Vec<Position>,
    /// Where the template files are (`[templates] dir`), resolved.
    pub templates_dir: PathBuf,
    /// The languages the templates in `templates_dir` have (every
    /// template's variants, lowercased, sorted), read by [`load`]; empty
    /// from [`parse`], which reads no other file.
    pub template_languages: Vec<String>,
    pub relay: RelayConfig,
    pub authentication: AuthenticationConfig,
    pub acknowledgements: AcknowledgementsConfig,
    /// `[tls]`: STARTTLS, implicit TLS, networks that must use it; `None`:
    /// no TLS is offered.
    pub tls: Option<TlsConfig>,
    /// `[documents]`: the categories attachments get when they arrive.
    pub documents: DocumentsConfig,
    /// `[[document_category]]`, with `unsorted` and `sent` always there.
    pub document_categories: Vec<DocumentCategory>,
    pub roles: Vec<Role>,
    pub users: Vec<User>,
    /// `[api]`: the HTTP API; `None`: off.
    pub api: Option<ApiConfig>,
    /// `[metrics]`: where Prometheus scrapes; `None`: no metrics socket.
    pub metrics: Option<MetricsConfig>,
    /// `[[webhook]]`: the endpoints that get signed event deliveries.
    pub webhooks: Vec<Webhook>,
}

/// The config path a command uses: `--config`, else `$JOBMAIL_CONFIG`, else the default.
pub fn resolve_path(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("JOBMAIL_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        path: path.to_path_buf(),
        errors: vec![ConfigError {
            line: None,
            key: String::new(),
            message: format!("cannot read: {e}"),
        }],
    })?;
    let mut config = parse(&text, path)?;
    config.template_languages = template_languages(&config.templates_dir);
    Ok(config)
}

/// The languages of every template in `dir` that loads (errors are
/// `config check`'s and `template lint`'s to report), lowercased and sorted.
pub fn template_languages(dir: &Path) -> Vec<String> {
    let (templates, _) = crate::outbound::template::Templates::load(dir);
    let mut languages: Vec<String> = templates
        .templates
        .values()
        .flat_map(|t| t.variants.keys().map(|l| l.to_lowercase()))
        .collect();
    languages.sort();
    languages.dedup();
    languages
}

/// Validates config text; `path` names the file in errors and anchors relative paths.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
    let mut ctx = Ctx {
        text,
        errors: Vec::new(),
    };
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    for e in syntax_errors {
        let line = e.span().map(|s| ctx.line_of(&s));
        ctx.errors.push(ConfigError {
            line,
            key: String::new(),
            message: format!("TOML syntax: {}", e.message().trim()),
        });
    }
    // `--config jobmail.toml` has the parent "": relative paths are then
    // relative to the working directory, written as ".".
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let config = read_root(&mut ctx, root.get_ref(), path, &base_dir);
    if ctx.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors {
            path: path.to_path_buf(),
            errors: ctx.errors,
        })
    }
}

fn read_root(ctx: &mut Ctx, root_table: &DeTable, path: &Path, base_dir: &Path) -> Config {
    let mut root = Section::new("", root_table, None);
    let server = match root.take("server") {
        Some(v) => match v.get_ref() {
            DeValue::Table(t) => read_server(ctx, t, Some(v.span()), base_dir),
            _ => {
                ctx.error(Some(&v.span()), "server", "expected a table ([server])");
                read_server(ctx, &DeTable::new(), None, base_dir)
            }
        },
        None => read_server(ctx, &DeTable::new(), None, base_dir),
    };
    let mut templates_dir = base_dir.join("templates");
    if let Some(mut section) = table_section(ctx, &mut root, "templates") {
        if let Some(dir) = section.string(ctx, "dir") {
            templates_dir = base_dir.join(dir);
        }
        section.finish(ctx);
    }
    let relay = read_relay(ctx, &mut root);
    let authentication = read_authentication(ctx, &mut root);
    let acknowledgements = read_acknowledgements(ctx, &mut root);
    let tls = read_tls(ctx, &mut root, base_dir, &server.listen);
    let smtp: Vec<SocketAddr> = server
        .listen
        .iter()
        .chain(tls.iter().flat_map(|t| &t.implicit_listen))
        .copied()
        .collect();
    let metrics = read_metrics(ctx, &mut root, &smtp);
    let mut subsidiaries = Vec::new();
    for (i, table, span) in tables(ctx, &mut root, "subsidiary") {
        subsidiaries.push((
            i,
            span.clone(),
            read_subsidiary(ctx, i, table, span, base_dir),
        ));
    }
    let categories = read_categories(ctx, &mut root);
    let positions = read_positions(ctx, &mut root);
    let documents = read_documents(ctx, &mut root);
    let document_categories = read_document_categories(ctx, &mut root);
    let known: Vec<String> = document_categories
        .iter()
        .map(|(_, _, c)| c.id.clone())
        .collect();
    let roles = read_roles(ctx, &mut root, &known);
    let users = read_users(ctx, &mut root, base_dir);
    let api = read_api(ctx, &mut root, &server.listen);
    let webhooks = read_webhooks(ctx, &mut root, base_dir);
    root.finish(ctx);
    cross_check(ctx, &subsidiaries, &categories, &positions);
    check_access(
        ctx,
        &documents,
        &document_categories,
        &roles,
        &users,
        &subsidiaries,
    );
    Config {
        path: path.to_path_buf(),
        server,
        subsidiaries: subsidiaries.into_iter().map(|(_, _, s)| s).collect(),
        categories: categories.into_iter().map(|(_, _, c)| c).collect(),
        positions: positions.into_iter().map(|(_, _, _, p)| p).collect(),
        templates_dir,
        template_languages: Vec::new(),
        relay,
        authentication,
        acknowledgements,
        tls,
        documents,
        document_categories: document_categories.into_iter().map(|(_, _, c)| c).collect(),
        roles: roles.into_iter().map(|(_, _, r)| r).collect(),
        users: users.into_iter().map(|(_, _, u)| u).collect(),
        api,
        metrics,
        webhooks: webhooks.into_iter().map(|(_, _, w)| w).collect(),
    }
}
