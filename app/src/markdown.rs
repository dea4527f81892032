//! Renders the assistant's markdown to HTML that is safe to set as `innerHTML`.
//!
//! The model's text is untrusted: raw HTML in it is shown as text, never parsed; links keep only http(s), mailto
//! and relative targets (no `javascript:`); images become plain links, so an answer cannot make the browser fetch
//! anything on its own.

use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag, TagEnd};

/// Markdown (CommonMark plus tables, strikethrough and task lists) to sanitized HTML.
pub fn render(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        })
        | Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::End(TagEnd::Image) => Event::End(TagEnd::Link),
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() + markdown.len() / 4);
    html::push_html(&mut out, events);
    out
}

/// Keeps a link target whose scheme is http, https or mailto, or that has none; anything else becomes empty.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    // Browsers ignore whitespace and control characters inside a scheme ("java\tscript:"), so compare without them.
    let normalized: String = url
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    let scheme_end = normalized.find(':');
    let path_start = normalized.find(['/', '?', '#']);
    let allowed = match (scheme_end, path_start) {
        (Some(colon), Some(path)) if path < colon => true,
        (Some(colon), _) => matches!(&normalized[..colon], "http" | "https" | "mailto"),
        (None, _) => true,
    };
    if allowed {
        url
    } else {
        CowStr::Borrowed("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_common_markdown() {
        let html = render("# Title\n\nSome **bold** and `code`.\n\n```rust\nfn main() {}\n```\n");
        assert!(html.contains("<h1>Title</h1>"));
        assert!(html.contains("<strong>bold</strong>"));
        assert!(html.contains("<code>code</code>"));
        assert!(html.contains("<pre><code class=\"language-rust\">fn main() {}\n</code></pre>"));
    }

    #[test]
    fn tables_and_task_lists() {
        let html = render("| a | b |\n|---|---|\n| 1 | 2 |\n\n- [x] done\n");
        assert!(html.contains("<table>"));
        assert!(html.contains("checkbox"));
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        for evil in [
            "<script>alert(1)</script>",
            "hello <script>alert(1)</script> world",
            "<img src=x onerror=alert(1)>",
            "<div>\n<script>alert(1)</script>\n</div>",
            "<iframe src=\"https://evil.example\"></iframe>",
        ] {
            let html = render(evil);
            assert!(!html.contains("<script"), "{evil} → {html}");
            assert!(!html.contains("<img"), "{evil} → {html}");
            assert!(!html.contains("<iframe"), "{evil} → {html}");
            assert!(!html.contains("<div"), "{evil} → {html}");
        }
        assert!(render("<script>alert(1)</script>").contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn html_inside_code_stays_code() {
        let html = render("```html\n<script>x</script>\n```");
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn dangerous_link_targets_are_dropped() {
        for evil in [
            "[x](javascript:alert(1))",
            "[x](JavaScript:alert(1))",
            "[x](java%09script:alert(1))",
            "<javascript:alert(1)>",
            "[x](data:text/html;base64,PHNjcmlwdD4=)",
            "[x](vbscript:msgbox)",
            "[x]: javascript:alert(1)\n\n[y][x]",
        ] {
            let html = render(evil);
            assert!(!html.to_lowercase().contains("script:"), "{evil} → {html}");
            assert!(!html.contains("data:"), "{evil} → {html}");
        }
    }

    #[test]
    fn ordinary_links_are_kept() {
        assert!(render("[docs](https://example.com/a?b=1#c)").contains("href=\"https://example.com/a?b=1#c\""));
        assert!(render("[rel](/s/abc)").contains("href=\"/s/abc\""));
        assert!(render("[here](#top)").contains("href=\"#top\""));
        assert!(render("[mail](mailto:a@b.c)").contains("href=\"mailto:a@b.c\""));
        assert!(render("[path](docs/a:b.md)").contains("href=\"docs/a:b.md\""));
    }

    #[test]
    fn images_become_links() {
        let html = render("![a cat](https://example.com/cat.png)");
        assert!(!html.contains("<img"));
        assert!(html.contains("<a href=\"https://example.com/cat.png\">a cat</a>"));
    }
}
