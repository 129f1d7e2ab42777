//! The page handlers of the web page: the inbox (filters, search, the
//! unassigned mail with assign in one action), a candidate, the candidate
//! list, a mail and its body frame, a document, and the settings. Each
//! maps a request to one `app` call and renders its answer in the frame
//! of `super`; it must not hold logic, SQL or access rules of its own.

use super::*;

#[derive(Debug, Deserialize, Default)]
pub(super) struct InboxQuery {
    lang: Option<String>,
    unassigned: Option<String>,
    before: Option<i64>,
    search: Option<String>,
    subsidiary: Option<String>,
    position: Option<String>,
    status: Option<String>,
    category: Option<String>,
}

/// Rows per inbox page.
const INBOX_PAGE: usize = 50;

/// A filter field as given: `None` when left empty.
fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The choices of the filter forms (inbox, candidates) from the config.
fn filter_choices(app: &crate::app::App) -> (Vec<Value>, Vec<Value>) {
    let positions = app
        .config
        .positions
        .iter()
        .map(|p| context! { id => p.id.clone(), title => p.title.clone() })
        .collect();
    let subsidiaries = app
        .config
        .subsidiaries
        .iter()
        .map(|s| context! { id => s.id.clone(), name => s.name.clone() })
        .collect();
    (positions, subsidiaries)
}

pub(super) async fn inbox(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<InboxQuery>,
) -> Response {
    let (app, caller, frame) = match signed_in(&shared, &headers, q.lang.as_deref()) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let unassigned = q
        .unassigned
        .as_deref()
        .is_some_and(|v| v == "1" || v == "true");
    let filter = crate::store::InboxFilter {
        limit: INBOX_PAGE,
        before: q.before,
        unassigned,
        search: given(&q.search),
        subsidiary: given(&q.subsidiary),
        position: given(&q.position),
        status: given(&q.status),
        category: given(&q.category),
        ..Default::default()
    };
    // The same filters, for the link to the older page.
    let mut older: Vec<(&str, String)> = Vec::new();
    if unassigned {
        older.push(("unassigned", "1".into()));
    }
    for (name, value) in [
        ("search", &filter.search),
        ("subsidiary", &filter.subsidiary),
        ("position", &filter.position),
        ("status", &filter.status),
        ("category", &filter.category),
    ] {
        if let Some(v) = value {
            older.push((name, v.clone()));
        }
    }
    let shown = filter.clone();
    let who = caller.clone();
    let entries = match call(&app, &frame, move |app| app.inbox_as(&who, &filter)).await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let older_href = (entries.len() == INBOX_PAGE)
        .then(|| entries.last().map(|e| e.id))
        .flatten()
        .map(|before| {
            older.push(("before", before.to_string()));
            format!(
                "/inbox?{}",
                serde_urlencoded::to_string(&older).unwrap_or_default()
            )
        });
    let (positions, subsidiaries) = filter_choices(&app);
    let categories: Vec<Value> = app
        .config
        .document_categories
        .iter()
        .filter(|c| caller.may_view(&c.id, &app.config))
        .map(|c| context! { id => c.id.clone(), name => c.name.clone() })
        .collect();
    frame.render(
        StatusCode::OK,
        "inbox.html",
        context! {
            page => "inbox", unassigned => unassigned,
            entries => Value::from(minijinja::value::Serde(&entries)), older_href => older_href,
            search => shown.search, subsidiary => shown.subsidiary, position => shown.position,
            status => shown.status, category => shown.category,
            positions => positions, subsidiaries => subsidiaries, categories => categories,
            statuses => crate::store::candidates::STATUSES,
            filtered => older.iter().any(|(k, _)| *k != "unassigned" && *k != "before"),
        },
    )
}

pub(super) async fn candidate(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<LangQuery>,
) -> Response {
    let (app, caller, frame) = match signed_in(&shared, &headers, q.lang.as_deref()) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let id = match path_id(&frame, &raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let may_manage = caller.has(crate::config::Right::ManageCandidates);
    let may_compose = caller.has(crate::config::Right::Compose);
    // Which controls to show; the app checks the role again on each change.
    let editable: Vec<Value> = app
        .config
        .document_categories
        .iter()
        .filter(|c| c.id != crate::config::SENT && caller.may_edit(&c.id, &app.config))
        .map(|c| context! { id => c.id.clone(), name => c.name.clone() })
        .collect();
    let may_edit = |category: &str| caller.may_edit(category, &app.config);
    let who = caller.clone();
    let found = call(&app, &frame, move |app| {
        let detail = app.candidate_as(&who, id)?;
        let documents = app.candidate_documents(&who, id)?;
        Ok((detail, documents))
    })
    .await;
    let (detail, documents) = match found {
        Ok(x) => x,
        Err(r) => return *r,
    };
    // Documents by category, in the config's order of categories.
    let mut by_category: BTreeMap<usize, (String, Vec<Value>)> = BTreeMap::new();
    for d in &documents {
        let (order, name) = app
            .config
            .document_categories
            .iter()
            .enumerate()
            .find(|(_, c)| c.id == d.document.category)
            .map(|(i, c)| (i, c.name.clone()))
            .unwrap_or((usize::MAX, d.document.category.clone()));
        let mime = d
            .document
            .content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        by_category
            .entry(order)
            .or_insert_with(|| (name, Vec::new()))
            .1
            .push(context! {
                id => d.document.id,
                filename => d.document.filename.clone(),
                category => d.document.category.clone(),
                editable => may_edit(&d.document.category),
                inline => crate::http::documents::INLINE.contains(&mime.as_str()),
                content_type => mime,
                size => d.document.size,
            });
    }
    let categories: Vec<Value> = by_category
        .into_values()
        .map(|(name, documents)| context! { name => name, documents => documents })
        .collect();
    let s = &detail.summary;
    let name = format!("{} {}", s.first_name, s.last_name)
        .trim()
        .to_string();
    let name = if name.is_empty() {
        text::words(frame.lang)["no_name"].to_string()
    } else {
        name
    };
    frame.render(
        StatusCode::OK,
        "candidate.html",
        context! {
            page => "candidate",
            name => name,
            c => Value::from(minijinja::value::Serde(&detail)),
            categories => categories,
            may_manage => may_manage,
            may_compose => may_compose,
            editable_categories => editable,
            statuses => crate::store::candidates::STATUSES,
        },
    )
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct MessageQuery {
    lang: Option<String>,
    images: Option<String>,
}

fn wants_images(q: &MessageQuery) -> bool {
    q.images.as_deref().is_some_and(|v| v == "1")
}

/// One mail: its envelope and headers, its attachments the user may see,
/// and its body: the text as text, or the HTML sanitised in a sandboxed
/// frame, remote images held back until asked for.
pub(super) async fn message(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<MessageQuery>,
) -> Response {
    let (app, caller, frame) = match signed_in(&shared, &headers, q.lang.as_deref()) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let id = match path_id(&frame, &raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let (detail, bodies) = match call(&app, &frame, move |app| {
        app.message_with_bodies_as(&caller, id)
    })
    .await
    {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let blocked = bodies
        .html
        .as_deref()
        .map(|h| body::sanitise(h, false).1)
        .unwrap_or(0);
    frame.render(
        StatusCode::OK,
        "message.html",
        context! {
            page => "message",
            m => Value::from(minijinja::value::Serde(&detail)),
            html => bodies.html.is_some(),
            text => bodies.text,
            blocked => blocked,
            images => wants_images(&q),
        },
    )
}

/// The sanitised HTML of one mail, as its frame loads it.
pub(super) async fn message_body(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<MessageQuery>,
) -> Response {
    let (app, caller, frame) = match signed_in(&shared, &headers, None) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let id = match path_id(&frame, &raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let (_, bodies) = match call(&app, &frame, move |app| {
        app.message_with_bodies_as(&caller, id)
    })
    .await
    {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let images = wants_images(&q);
    let (clean, _) = body::sanitise(bodies.html.as_deref().unwrap_or(""), images);
    let document = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
<link rel=\"stylesheet\" href=\"/assets/mail.css\"></head><body>{clean}</body></html>"
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                if images { MAIL_CSP_IMAGES } else { MAIL_CSP },
            ),
            (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
        ],
        document,
    )
        .into_response()
}

pub(super) async fn assign(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let (app, caller, frame, message) = match posted_to(&shared, &headers, &form, &raw) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let Some(candidate) = form
        .get("candidate")
        .and_then(|c| c.trim().parse::<i64>().ok())
    else {
        return frame.error(Error::Invalid("choose a candidate".into()));
    };
    match call(&app, &frame, move |app| {
        app.assign_as(&caller, message, candidate)
    })
    .await
    {
        Ok(done) => Redirect::to(&format!("/candidates/{}", done.candidate)).into_response(),
        Err(r) => *r,
    }
}

pub(super) async fn application_status(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let (app, caller, frame, application) = match posted_to(&shared, &headers, &form, &raw) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let status = form.get("status").cloned().unwrap_or_default();
    let back = form.get("candidate").and_then(|c| c.parse::<i64>().ok());
    match call(&app, &frame, move |app| {
        app.set_application_status_as(&caller, application, &status)
    })
    .await
    {
        Ok(()) => match back {
            Some(c) => Redirect::to(&format!("/candidates/{c}")).into_response(),
            None => Redirect::to("/inbox").into_response(),
        },
        Err(r) => *r,
    }
}

/// A document in its own tab: the API's download, with the session's user.
pub(super) async fn document(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Response {
    let (app, caller, frame) = match signed_in(&shared, &headers, None) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let id = match path_id(&frame, &raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match call(&app, &frame, move |app| app.document(&caller, id)).await {
        Ok((placed, bytes)) => crate::http::documents::document_response(&placed, bytes),
        Err(r) => *r,
    }
}

#[derive(Debug, Deserialize, Default)]
pub(super) struct CandidatesQuery {
    lang: Option<String>,
    search: Option<String>,
    position: Option<String>,
    status: Option<String>,
    subsidiary: Option<String>,
}

/// Rows of the candidates page.
const CANDIDATES_PAGE: usize = 200;

/// Candidates with an application as filtered (search, position, status,
/// subsidiary), among the user's subsidiaries; the chosen ones go to
/// compose together.
pub(super) async fn candidates(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<CandidatesQuery>,
) -> Response {
    let (app, caller, frame) = match signed_in(&shared, &headers, q.lang.as_deref()) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let (search, position, status, subsidiary) = (
        given(&q.search),
        given(&q.position),
        given(&q.status),
        given(&q.subsidiary),
    );
    let may_compose = caller.has(crate::config::Right::Compose);
    let (s2, p2, st2, sub2) = (
        search.clone(),
        position.clone(),
        status.clone(),
        subsidiary.clone(),
    );
    let list = match call(&app, &frame, move |app| {
        app.find_candidates_as(
            &caller,
            &crate::store::candidates::CandidateFilter {
                search: s2.as_deref(),
                position: p2.as_deref(),
                status: st2.as_deref(),
                subsidiary: sub2.as_deref(),
                limit: CANDIDATES_PAGE,
                ..Default::default()
            },
        )
    })
    .await
    {
        Ok(l) => l,
        Err(r) => return *r,
    };
    let (positions, subsidiaries) = filter_choices(&app);
    frame.render(
        StatusCode::OK,
        "candidates.html",
        context! {
            page => "candidates",
            list => Value::from(minijinja::value::Serde(&list)),
            search => search, position => position, status => status, subsidiary => subsidiary,
            positions => positions, subsidiaries => subsidiaries,
            statuses => crate::store::candidates::STATUSES,
            may_compose => may_compose,
        },
    )
}

/// The settings, read-only: what the config in force says.
pub(super) async fn settings(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    let (app, _, frame) = match signed_in(&shared, &headers, q.lang.as_deref()) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match call(&app, &frame, |app| app.settings()).await {
        Ok(s) => frame.render(
            StatusCode::OK,
            "settings.html",
            context! { page => "settings", s => Value::from(minijinja::value::Serde(&s)) },
        ),
        Err(r) => *r,
    }
}
