//! Checks across sections, after each was read: ids unique, references
//! resolved, acknowledgements signed, every inbound address owned once.

#[allow(unused_imports)]
use super::*;

/// Every cross-section error, at once.
pub(super) fn cross_check(
    ctx: &mut Ctx,
    subsidiaries: &[(usize, Range<usize>, Subsidiary)],
    categories: &[(usize, Range<usize>, Category)],
    positions: &[(usize, Range<usize>, PositionSpans, Position)],
) {
    if subsidiaries.is_empty() {
        ctx.error(
            None,
            "subsidiary",
            "at least one [[subsidiary]] with a jobs_address is required",
        );
    }
    duplicates(
        ctx,
        "subsidiary",
        subsidiaries.iter().map(|(i, s, x)| (*i, s, &x.id)),
    );
    duplicates(
        ctx,
        "category",
        categories.iter().map(|(i, s, x)| (*i, s, &x.id)),
    );
    duplicates(
        ctx,
        "position",
        positions.iter().map(|(i, s, _, x)| (*i, s, &x.id)),
    );

    let subsidiary_ids: HashSet<&str> =
        subsidiaries.iter().map(|(_, _, s)| s.id.as_str()).collect();
    let category_ids: HashSet<&str> = categories.iter().map(|(_, _, c)| c.id.as_str()).collect();
    for (i, _, spans, p) in positions {
        if !subsidiary_ids.contains(p.subsidiary.as_str()) {
            ctx.error(
                spans.subsidiary.as_ref(),
                &format!("position[{i}].subsidiary"),
                format!("no [[subsidiary]] has id {:?}", p.subsidiary),
            );
        }
        if !category_ids.contains(p.category.as_str()) {
            ctx.error(
                spans.category.as_ref(),
                &format!("position[{i}].category"),
                format!("no [[category]] has id {:?}", p.category),
            );
        }
    }

    // An acknowledgement goes out from a sender with a signature, in every
    // subsidiary that has positions in the category.
    for (i, span, c) in categories {
        let Some(auto) = &c.auto_reply else { continue };
        for (_, _, s) in subsidiaries {
            if !positions
                .iter()
                .any(|(_, _, _, p)| p.category == c.id && p.subsidiary == s.id)
            {
                continue;
            }
            match s.sender(&auto.sender) {
                None => ctx.error(
                    Some(span),
                    &format!("category[{i}].auto_reply.sender"),
                    format!("subsidiary {:?} has no sender {:?}", s.id, auto.sender),
                ),
                Some(sender) if sender.signature.as_deref().is_none_or(|x| x.trim().is_empty()) => ctx.error(
                    Some(span),
                    &format!("category[{i}].auto_reply.sender"),
                    format!("sender {:?} of subsidiary {:?} has no signature: acknowledgements must be signed", auto.sender, s.id),
                ),
                Some(_) => {}
            }
        }
    }

    // Every inbound address must lead to one place only.
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    let mut claim = |ctx: &mut Ctx, addr: &Address, key: String, span: &Range<usize>| {
        if let Some(previous) = owners.get(&addr.key()) {
            ctx.error(
                Some(span),
                &key,
                format!("address {addr} is already used by {previous}"),
            );
        } else {
            owners.insert(addr.key(), key);
        }
    };
    for (i, span, s) in subsidiaries {
        claim(
            ctx,
            &s.jobs_address,
            format!("subsidiary[{i}].jobs_address"),
            span,
        );
        for (j, alias) in s.aliases.iter().enumerate() {
            claim(ctx, alias, format!("subsidiary[{i}].aliases[{j}]"), span);
        }
    }
    for (i, span, spans, p) in positions {
        if let Some(alias) = &p.alias {
            let span = spans.alias.as_ref().unwrap_or(span);
            claim(ctx, alias, format!("position[{i}].alias"), span);
            let owner = subsidiaries.iter().find(|(_, _, s)| s.id == p.subsidiary);
            if let Some((_, _, s)) = owner
                && !s.domains.iter().any(|d| d == alias.domain())
            {
                ctx.error(
                    Some(span),
                    &format!("position[{i}].alias"),
                    format!(
                        "{alias} is not in a domain of subsidiary {:?} ({})",
                        s.id,
                        s.domains.join(", ")
                    ),
                );
            }
        }
    }
}
