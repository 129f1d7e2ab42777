//! A mail's HTML made safe to show: ammonia keeps only harmless markup (no
//! script, style, form, frame, object or event handler; links open a new
//! tab with no referrer), and remote images are taken out unless asked
//! for, so that opening a mail tells no tracker it was read. Pure: text in,
//! text out.

use std::collections::HashSet;

/// The sanitised HTML, and how many remote images were held back.
pub fn sanitise(html: &str, remote_images: bool) -> (String, usize) {
    let blocked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = blocked.clone();
    let clean = ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer"))
        .set_tag_attribute_value("a", "target", "_blank")
        .url_schemes(HashSet::from(["http", "https", "mailto", "tel"]))
        .attribute_filter(move |element, attribute, value| {
            let remote = matches!(attribute, "src" | "srcset")
                && matches!(element, "img" | "source")
                && !remote_images;
            if remote {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                None
            } else {
                Some(value.into())
            }
        })
        .clean(html)
        .to_string();
    (clean, blocked.load(std::sync::atomic::Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_forms_styles_and_handlers_go_and_links_open_apart() {
        let hostile = r#"<p onclick="steal()">Hallo <b>Team</b></p>
<script>alert(1)</script><style>body{display:none}</style>
<form action="https://evil.example/"><input name=pw></form>
<iframe src="https://evil.example/"></iframe>
<a href="javascript:alert(1)">x</a><a href="https://portfolio.example/">Portfolio</a>
<img src="x" onerror="alert(1)"><div style="position:fixed">overlay</div>"#;
        let (clean, _) = sanitise(hostile, false);
        for gone in [
            "<script",
            "onclick",
            "<style",
            "<form",
            "<input",
            "<iframe",
            "javascript:",
            "onerror",
            "style=",
        ] {
            assert!(!clean.contains(gone), "{gone} in {clean}");
        }
        assert!(clean.contains("<b>Team</b>"));
        assert!(
            clean.contains(r#"<a href="https://portfolio.example/" target="_blank" rel="noopener noreferrer">Portfolio</a>"#),
            "{clean}"
        );
    }

    #[test]
    fn remote_images_wait_until_asked_for() {
        let html = r#"<img src="https://tracker.example/pixel.gif" alt="logo"><img srcset="https://cdn.example/a.png 2x">"#;
        let (held, blocked) = sanitise(html, false);
        // srcset is not kept at all; the one src is held back.
        assert_eq!(blocked, 1);
        assert!(
            !held.contains("tracker.example") && !held.contains("cdn.example"),
            "{held}"
        );
        assert!(held.contains(r#"alt="logo""#), "{held}");
        let (loaded, blocked) = sanitise(html, true);
        assert_eq!(blocked, 0);
        assert!(
            loaded.contains("https://tracker.example/pixel.gif"),
            "{loaded}"
        );
    }
}
