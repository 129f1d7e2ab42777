//! The web page's words in German and English: one table of `(key,
//! English, German)`, the language of a request (`?lang=`, then the
//! `jobmail_lang` cookie, then `Accept-Language`; English when none says
//! German), and the map the templates read as `t`. Pure: no I/O.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, header};

/// A language of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }

    pub fn parse(text: &str) -> Option<Lang> {
        match text.trim().to_ascii_lowercase().get(..2)? {
            "en" => Some(Lang::En),
            "de" => Some(Lang::De),
            _ => None,
        }
    }
}

/// The request's language: `asked` (`?lang=`), else the cookie, else the
/// first of `Accept-Language` we have.
pub fn language(headers: &HeaderMap, asked: Option<&str>) -> Lang {
    if let Some(lang) = asked.and_then(Lang::parse) {
        return lang;
    }
    if let Some(lang) = super::session::cookie(headers, "jobmail_lang").and_then(Lang::parse) {
        return lang;
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|part| Lang::parse(part.split(';').next()?))
        })
        .unwrap_or(Lang::En)
}

const WORDS: &[(&str, &str, &str)] = &[
    ("product", "jobmail", "jobmail"),
    ("sign_in", "Sign in", "Anmelden"),
    ("sign_out", "Sign out", "Abmelden"),
    ("token", "Your access token", "Ihr Zugangstoken"),
    (
        "token_help",
        "The token of your [[user]] in the jobmail config (a file in config/tokens/ in the example).",
        "Das Token Ihres [[user]] in der jobmail-Konfiguration (im Beispiel eine Datei in config/tokens/).",
    ),
    (
        "bad_token",
        "This token is not known.",
        "Dieses Token ist unbekannt.",
    ),
    ("signed_in_as", "Signed in as", "Angemeldet als"),
    ("inbox", "Inbox", "Posteingang"),
    ("unassigned", "Unassigned", "Nicht zugeordnet"),
    ("all_mail", "All mail", "Alle Mails"),
    ("received", "Received", "Eingang"),
    ("from", "From", "Von"),
    ("subject", "Subject", "Betreff"),
    ("candidate", "Candidate", "Kandidat:in"),
    ("reason", "Match", "Zuordnung"),
    ("attachments", "Attachments", "Anhänge"),
    ("suggested", "Suggested", "Vorschläge"),
    ("assign", "Assign", "Zuordnen"),
    (
        "assign_to",
        "Assign to candidate",
        "Zuordnen zu Kandidat:in",
    ),
    (
        "candidate_number",
        "candidate number (from the list of candidates)",
        "Kandidat:innen-Nr. (aus der Liste der Kandidat:innen)",
    ),
    ("no_mail", "No mail here.", "Keine Mails."),
    ("older", "Older", "Ältere"),
    ("no_subject", "(no subject)", "(kein Betreff)"),
    ("no_name", "(no name)", "(kein Name)"),
    ("addresses", "Addresses", "Adressen"),
    ("gender", "Gender", "Geschlecht"),
    ("language", "Language", "Sprache"),
    ("applications", "Applications", "Bewerbungen"),
    ("position", "Position", "Stelle"),
    ("general", "general application", "Initiativbewerbung"),
    ("subsidiary", "Subsidiary", "Gesellschaft"),
    ("source", "Source", "Quelle"),
    ("status", "Status", "Status"),
    ("change_status", "Change", "Ändern"),
    ("acknowledgement", "Acknowledgement", "Eingangsbestätigung"),
    ("thread", "Messages", "Nachrichten"),
    ("inbound", "received", "empfangen"),
    ("outbound", "sent", "gesendet"),
    ("documents", "Documents", "Dokumente"),
    (
        "no_documents",
        "No documents you may see.",
        "Keine Dokumente, die Sie sehen dürfen.",
    ),
    ("opens_new_tab", "opens in a new tab", "öffnet in neuem Tab"),
    ("downloads", "download", "Download"),
    ("error", "Something went wrong", "Etwas ist schiefgegangen"),
    (
        "not_found",
        "Not found, or not yours to see.",
        "Nicht gefunden, oder nicht für Sie sichtbar.",
    ),
    (
        "forbidden",
        "Your role may not do this.",
        "Ihre Rolle darf das nicht.",
    ),
    (
        "csrf",
        "This form is out of date; open the page again and retry.",
        "Dieses Formular ist veraltet; öffnen Sie die Seite neu und versuchen Sie es noch einmal.",
    ),
    ("back", "Back", "Zurück"),
    ("bytes", "bytes", "Bytes"),
    ("to", "To", "An"),
    ("mail_body", "Message", "Nachricht"),
    (
        "no_body",
        "This mail has no text.",
        "Diese Mail hat keinen Text.",
    ),
    (
        "images_held",
        "Remote images are not loaded, so the sender cannot tell you read this.",
        "Externe Bilder sind nicht geladen, damit der Absender nicht erfährt, dass Sie dies gelesen haben.",
    ),
    ("load_images", "Load remote images", "Externe Bilder laden"),
    ("compose", "Write", "Schreiben"),
    ("template", "Template", "Vorlage"),
    (
        "candidates_language",
        "The candidate's language",
        "Sprache der Kandidat:in",
    ),
    ("sender", "From", "Absender"),
    (
        "new_files",
        "New files (choose or drop here)",
        "Neue Dateien (auswählen oder hierher ziehen)",
    ),
    (
        "drop_hint",
        "Up to 10 MB per mail in all.",
        "Zusammen höchstens 10 MB pro Mail.",
    ),
    (
        "reuse",
        "Send again from the thread:",
        "Aus dem Verlauf erneut senden:",
    ),
    (
        "schedule",
        "Send at (empty: now)",
        "Senden am (leer: sofort)",
    ),
    (
        "schedule_hint",
        "Scheduled mail can be cancelled in the queue until it goes.",
        "Geplante Mails lassen sich in der Warteschlange stornieren, bis sie gesendet sind.",
    ),
    ("send", "Send", "Senden"),
    ("preview", "Preview", "Vorschau"),
    (
        "suppressed",
        "suppressed: would be skipped",
        "gesperrt: würde übersprungen",
    ),
    (
        "sent_title",
        "Sent to the outbox",
        "In den Postausgang gelegt",
    ),
    (
        "queued",
        "Queued: the relay sends it now.",
        "Eingereiht: das Relay sendet jetzt.",
    ),
    ("scheduled_for", "Scheduled for", "Geplant für"),
    ("batch", "batch", "Stapel"),
    ("skipped", "skipped", "übersprungen"),
    ("queue", "Queue", "Warteschlange"),
    ("states", "States", "Zustände"),
    ("all_states", "All", "Alle"),
    (
        "paused_upstreams",
        "Paused upstreams",
        "Pausierte Upstreams",
    ),
    ("until", "until", "bis"),
    (
        "queue_empty",
        "Nothing in the queue here.",
        "Hier ist nichts in der Warteschlange.",
    ),
    ("attempts", "Attempts", "Versuche"),
    ("next_attempt", "Next / at", "Nächster / am"),
    ("last_reply", "Last reply", "Letzte Antwort"),
    ("actions", "Actions", "Aktionen"),
    ("held", "held", "angehalten"),
    ("action_retry", "Retry now", "Jetzt erneut"),
    ("action_hold", "Hold", "Anhalten"),
    ("action_release", "Release", "Freigeben"),
    ("action_cancel", "Cancel", "Stornieren"),
    ("settings", "Settings", "Einstellungen"),
    (
        "settings_hint",
        "As the config file says; changed there and with `jobmail reload`.",
        "Wie in der Konfigurationsdatei; geändert wird dort, dann `jobmail reload`.",
    ),
    ("time_zone", "Time zone", "Zeitzone"),
    (
        "subsidiaries",
        "Subsidiaries and senders",
        "Gesellschaften und Absender",
    ),
    ("jobs_address", "Jobs address", "Bewerbungsadresse"),
    ("senders", "Senders", "Absender"),
    ("templates", "Templates", "Vorlagen"),
    ("languages", "Languages", "Sprachen"),
    ("check", "Check", "Prüfung"),
    ("check_ok", "fine", "in Ordnung"),
    ("automatic", "automatic", "automatisch"),
    (
        "acknowledgements",
        "Acknowledgements per category",
        "Eingangsbestätigungen je Kategorie",
    ),
    ("category", "Category", "Kategorie"),
    ("email", "E-mail", "E-Mail"),
    ("form", "Form", "Formular"),
    ("period", "Once per", "Einmal je"),
    ("per_hour", "At most per hour", "Höchstens je Stunde"),
    (
        "no_acknowledgements",
        "no acknowledgements",
        "keine Eingangsbestätigungen",
    ),
    ("yes", "yes", "ja"),
    ("no", "no", "nein"),
    (
        "document_categories",
        "Document categories",
        "Dokumentkategorien",
    ),
    (
        "rules",
        "Filed by (file names, types)",
        "Zugeordnet nach (Dateinamen, Typen)",
    ),
    ("sensitive", "sensitive", "vertraulich"),
    ("roles", "Roles", "Rollen"),
    ("role", "Role", "Rolle"),
    ("view", "Sees", "Sieht"),
    ("edit", "Changes", "Ändert"),
    ("rights", "Rights", "Rechte"),
    ("candidates_nav", "Candidates", "Kandidat:innen"),
    ("candidates", "candidates", "Kandidat:innen"),
    ("search", "Name or address", "Name oder Adresse"),
    ("filter", "Filter", "Filtern"),
    ("state_scheduled", "scheduled", "geplant"),
    ("state_queued", "queued", "in der Warteschlange"),
    ("state_sending", "sending", "wird gesendet"),
    ("state_sent", "sent", "gesendet"),
    ("state_deferred", "deferred", "zurückgestellt"),
    ("state_failed", "failed", "fehlgeschlagen"),
    ("state_cancelled", "cancelled", "storniert"),
    ("state_bounced", "bounced", "unzustellbar"),
    (
        "upstream_reply",
        "The upstream replied",
        "Der Server antwortete",
    ),
    (
        "bounce_diagnostic",
        "Bounce report",
        "Unzustellbarkeitsbericht",
    ),
    ("next_try", "next try", "nächster Versuch"),
    (
        "search_mail",
        "Subject, sender or candidate",
        "Betreff, Absender oder Kandidat:in",
    ),
    ("any", "any", "alle"),
    ("clear_filters", "Clear filters", "Filter zurücksetzen"),
    (
        "no_mail_filtered",
        "No mail matches these filters.",
        "Keine Mail passt zu diesen Filtern.",
    ),
    (
        "no_candidates",
        "No candidate matches.",
        "Keine Kandidat:in passt.",
    ),
    ("choose", "Choose", "Auswählen"),
    ("since", "Since", "Seit"),
    (
        "write_to_chosen",
        "Write to the chosen ones",
        "An die Ausgewählten schreiben",
    ),
    (
        "preview_of_first",
        "The preview shows the mail of the first; each gets their own, in their own language.",
        "Die Vorschau zeigt die Mail an die erste Person; jede bekommt ihre eigene, in ihrer Sprache.",
    ),
    ("move", "Move", "Verschieben"),
    (
        "upload",
        "Add documents (choose or drop here)",
        "Dokumente hinzufügen (auswählen oder hierher ziehen)",
    ),
    (
        "by_rules",
        "As the rules file them",
        "Wie die Regeln sie einordnen",
    ),
    ("upload_button", "Upload", "Hochladen"),
    // Values, looked up by name (`t["status_" ~ a.status]`).
    ("status_new", "new", "neu"),
    ("status_in-review", "in review", "in Prüfung"),
    ("status_interview", "interview", "Gespräch"),
    ("status_offer", "offer", "Angebot"),
    ("status_hired", "hired", "eingestellt"),
    ("status_rejected", "rejected", "abgelehnt"),
    ("status_withdrawn", "withdrawn", "zurückgezogen"),
    ("gender_female", "female", "weiblich"),
    ("gender_male", "male", "männlich"),
    ("gender_diverse", "diverse", "divers"),
    ("gender_unknown", "unknown", "unbekannt"),
    ("source_email", "e-mail", "E-Mail"),
    ("source_form", "online form", "Online-Formular"),
    ("confidence_certain", "certain", "sicher"),
    ("confidence_high", "high", "hoch"),
    ("confidence_medium", "medium", "mittel"),
    ("confidence_low", "low", "gering"),
    ("confidence_new", "new", "neu"),
    ("confidence_none", "none", "keine"),
    ("decision_pending", "pending", "ausstehend"),
    ("decision_queued", "sent", "gesendet"),
    ("decision_suppressed", "not sent", "nicht gesendet"),
    ("decision_failed", "failed", "fehlgeschlagen"),
    ("reason_reply-token", "reply token", "Antwort-Token"),
    (
        "reason_in-reply-to",
        "reply in the thread",
        "Antwort im Verlauf",
    ),
    (
        "reason_references",
        "thread (references)",
        "Verlauf (Verweise)",
    ),
    ("reason_subject-tag", "subject tag", "Betreff-Kennung"),
    ("reason_sender", "known sender", "bekannter Absender"),
    (
        "reason_original-sender",
        "original sender",
        "ursprünglicher Absender",
    ),
    (
        "reason_forwarded-author",
        "forwarded by a colleague",
        "von Kolleg:in weitergeleitet",
    ),
    (
        "reason_new-application",
        "new application",
        "neue Bewerbung",
    ),
    (
        "reason_conflict",
        "conflicting evidence",
        "widersprüchliche Hinweise",
    ),
    (
        "reason_ambiguous-sender",
        "address of several candidates",
        "Adresse mehrerer Kandidat:innen",
    ),
    (
        "reason_forward-author-unknown",
        "forward, author unknown",
        "Weiterleitung, Verfasser:in unbekannt",
    ),
    ("reason_colleague", "from a colleague", "von Kolleg:in"),
    (
        "reason_unknown-author",
        "author unknown",
        "Verfasser:in unbekannt",
    ),
    ("reason_automatic", "automatic mail", "automatische Mail"),
    ("reason_manual", "assigned by hand", "von Hand zugeordnet"),
    ("reason_bounce", "bounce", "Unzustellbarkeitsbericht"),
    (
        "reason_unverified-report",
        "unverified report",
        "ungeprüfter Bericht",
    ),
    (
        "reason_legacy-subject-tag",
        "old subject tag",
        "alte Betreff-Kennung",
    ),
    (
        "reason_unauthenticated-sender",
        "sender not authenticated",
        "Absender nicht bestätigt",
    ),
];

/// The words of `lang`, for the templates (`{{ t.inbox }}`).
pub fn words(lang: Lang) -> BTreeMap<&'static str, &'static str> {
    WORDS
        .iter()
        .map(|(key, en, de)| (*key, if lang == Lang::De { *de } else { *en }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// The kinds of value the templates look up by name, and every value of
    /// each (the word test checks each is in the table).
    const VALUE_WORDS: &[(&str, &[&str])] = &[
        ("status", &crate::store::candidates::STATUSES),
        ("gender", &["female", "male", "diverse", "unknown"]),
        ("source", &["email", "form"]),
        (
            "confidence",
            &["certain", "high", "medium", "low", "new", "none"],
        ),
        ("decision", &["pending", "queued", "suppressed", "failed"]),
    ];

    #[test]
    fn the_language_is_asked_then_the_cookie_then_the_browsers() {
        let mut h = HeaderMap::new();
        assert_eq!(language(&h, None), Lang::En);
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("fr-CH, de-DE;q=0.8, en;q=0.5"),
        );
        assert_eq!(language(&h, None), Lang::De);
        h.insert(header::COOKIE, HeaderValue::from_static("jobmail_lang=en"));
        assert_eq!(language(&h, None), Lang::En);
        assert_eq!(language(&h, Some("de")), Lang::De);
        assert_eq!(language(&h, Some("xx")), Lang::En);
    }

    #[test]
    fn every_word_a_template_asks_for_is_there() {
        let templates = [
            include_str!("templates/layout.html"),
            include_str!("templates/sign_in.html"),
            include_str!("templates/error.html"),
            include_str!("templates/inbox.html"),
            include_str!("templates/candidate.html"),
            include_str!("templates/candidates.html"),
            include_str!("templates/message.html"),
            include_str!("templates/preview.html"),
            include_str!("templates/compose.html"),
            include_str!("templates/sent.html"),
            include_str!("templates/queue.html"),
            include_str!("templates/settings.html"),
        ];
        let known = words(Lang::En);
        let mut missing = Vec::new();
        for text in templates {
            for (i, _) in text.match_indices("t.") {
                let before = text[..i].chars().last().unwrap_or(' ');
                if before.is_alphanumeric() || before == '_' {
                    continue;
                }
                let key: String = text[i + 2..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !key.is_empty() && !known.contains_key(key.as_str()) {
                    missing.push(key);
                }
            }
        }
        for (kind, values) in VALUE_WORDS {
            for value in *values {
                let key = format!("{kind}_{value}");
                if !known.contains_key(key.as_str()) {
                    missing.push(key);
                }
            }
        }
        for reason in crate::matcher::Reason::ALL {
            let key = format!("reason_{}", reason.as_str());
            if !known.contains_key(key.as_str()) {
                missing.push(key);
            }
        }
        // Looked up by name: `t["state_" ~ state]`.
        for state in crate::store::outbox::STATES {
            let key = format!("state_{state}");
            if !known.contains_key(key.as_str()) {
                missing.push(key);
            }
        }
        for action in ["retry", "hold", "release", "cancel"] {
            let key = format!("action_{action}");
            if !known.contains_key(key.as_str()) {
                missing.push(key);
            }
        }
        assert!(missing.is_empty(), "words no table has: {missing:?}");
    }

    #[test]
    fn every_word_has_both_languages_and_one_key() {
        let mut keys: Vec<&str> = WORDS.iter().map(|w| w.0).collect();
        keys.sort();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "a key twice");
        assert!(
            WORDS
                .iter()
                .all(|(_, en, de)| !en.is_empty() && !de.is_empty())
        );
    }
}
