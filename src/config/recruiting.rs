//! `[[category]]` with its acknowledgement settings, `[[position]]`, and
//! `[acknowledgements]`.

#[allow(unused_imports)]
use super::*;

/// Limits over every category's acknowledgements (`[acknowledgements]`).
#[derive(Debug, Clone)]
pub struct AcknowledgementsConfig {
    /// Acknowledgements decided in any rolling hour, all addresses together.
    pub max_per_hour: u32,
}

#[derive(Debug, Clone)]
pub struct Category {
    pub id: String,
    pub name: String,
    /// Automatic acknowledgements of applications in this category.
    pub auto_reply: Option<AutoReply>,
}

/// `[category.auto_reply]`: which applications are acknowledged, with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoReply {
    /// Applications by e-mail (a new e-mail application found by the matcher).
    pub email: bool,
    /// Applications from the online form (`application add`).
    pub form: bool,
    /// A template marked `automatic = true`.
    pub template: String,
    /// A sender id of the application's subsidiary (`default`: its jobs address).
    pub sender: String,
    /// One acknowledgement per candidate and category within this period.
    pub period: Duration,
    /// At most this many automatic replies to one address per hour (a circuit breaker).
    pub max_per_hour: u32,
}

#[derive(Debug, Clone)]
pub struct Position {
    pub id: String,
    pub title: String,
    pub subsidiary: String,
    pub category: String,
    pub alias: Option<Address>,
}

/// Where a position's references are, for errors found after reading.
pub(super) struct PositionSpans {
    pub(super) subsidiary: Option<Range<usize>>,
    pub(super) category: Option<Range<usize>>,
    pub(super) alias: Option<Range<usize>>,
}

/// `[acknowledgements]`, or its defaults.
pub(super) fn read_acknowledgements(ctx: &mut Ctx, root: &mut Section) -> AcknowledgementsConfig {
    let mut acknowledgements = AcknowledgementsConfig { max_per_hour: 100 };
    if let Some(mut section) = table_section(ctx, root, "acknowledgements") {
        acknowledgements.max_per_hour =
            section.integer(ctx, "max_per_hour", 100, 1..1_000_001) as u32;
        section.finish(ctx);
    }
    acknowledgements
}

/// Every `[[category]]`, with its index and span.
pub(super) fn read_categories(
    ctx: &mut Ctx,
    root: &mut Section,
) -> Vec<(usize, Range<usize>, Category)> {
    let mut categories = Vec::new();
    for (i, table, span) in tables(ctx, root, "category") {
        let mut s = Section::new(format!("category[{i}]"), table, Some(span.clone()));
        let id = s.required_string(ctx, "id");
        let name = s.string(ctx, "name");
        let auto_reply = match s.take("auto_reply") {
            None => None,
            Some(v) => match v.get_ref() {
                DeValue::Table(t) => {
                    let key = format!("category[{i}].auto_reply");
                    let mut a = Section::new(key.clone(), t, Some(v.span()));
                    let email = a.boolean(ctx, "email", false);
                    let form = a.boolean(ctx, "form", false);
                    let template = a.required_string(ctx, "template");
                    let sender = a
                        .string(ctx, "sender")
                        .unwrap_or_else(|| DEFAULT_SENDER.to_string());
                    let secs = Duration::from_secs;
                    let period = a.duration(
                        ctx,
                        "period",
                        secs(30 * 86_400),
                        secs(0)..secs(366 * 86_400),
                    );
                    let max_per_hour = a.integer(ctx, "max_per_hour", 10, 1..10_001) as u32;
                    a.finish(ctx);
                    template.map(|template| AutoReply {
                        email,
                        form,
                        template,
                        sender,
                        period,
                        max_per_hour,
                    })
                }
                _ => {
                    ctx.error(
                        Some(&v.span()),
                        &format!("category[{i}].auto_reply"),
                        "expected a table ([category.auto_reply])",
                    );
                    None
                }
            },
        };
        s.finish(ctx);
        if let Some(id) = id {
            check_id(ctx, &id, &span, &format!("category[{i}].id"));
            categories.push((
                i,
                span,
                Category {
                    name: name.unwrap_or_else(|| id.clone()),
                    id,
                    auto_reply,
                },
            ));
        }
    }
    categories
}

/// Every `[[position]]`, with its index, span and the spans of its references.
pub(super) fn read_positions(
    ctx: &mut Ctx,
    root: &mut Section,
) -> Vec<(usize, Range<usize>, PositionSpans, Position)> {
    let mut positions = Vec::new();
    for (i, table, span) in tables(ctx, root, "position") {
        let mut s = Section::new(format!("position[{i}]"), table, Some(span.clone()));
        let id = s.required_string(ctx, "id");
        let title = s.required_string(ctx, "title");
        let subsidiary = s.required_string(ctx, "subsidiary");
        let category = s.required_string(ctx, "category");
        let alias = s.address(ctx, "alias", false);
        let spans = PositionSpans {
            subsidiary: s.span_of("subsidiary"),
            category: s.span_of("category"),
            alias: s.span_of("alias"),
        };
        s.finish(ctx);
        if let (Some(id), Some(title), Some(subsidiary), Some(category)) =
            (id, title, subsidiary, category)
        {
            check_id(ctx, &id, &span, &format!("position[{i}].id"));
            positions.push((
                i,
                span,
                spans,
                Position {
                    id,
                    title,
                    subsidiary,
                    category,
                    alias,
                },
            ));
        }
    }
    positions
}
