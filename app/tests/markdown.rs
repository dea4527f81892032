//! The markdown renderer against the CommonMark spec's examples, and against random documents for safety.

use std::collections::BTreeMap;

use html5gum::{Token, Tokenizer};
use serde::Deserialize;
use vf_app::highlight;
use vf_app::markdown;

fn render(text: &str) -> String {
    markdown::render(text, highlight::write)
}

/// One example of the spec (`tests/data/commonmark-spec.json`, see the README there).
#[derive(Deserialize)]
struct Example {
    markdown: String,
    html: String,
    example: u32,
    section: String,
}

/// Sections left out of the count: raw HTML is shown as text and images as links, by design.
const SECTIONS_BY_DESIGN: [&str; 3] = ["HTML blocks", "Raw HTML", "Images"];

/// Examples of other sections that differ by design, and why.
const EXAMPLES_BY_DESIGN: &[(u32, &str)] = &[
    (21, "raw HTML shown as text"),
    (31, "raw HTML shown as text"),
    (203, "raw HTML shown as text"),
    (310, "raw HTML (a comment) shown as text"),
    (311, "raw HTML (a comment) shown as text"),
    (346, "raw HTML shown as text"),
    (477, "raw HTML shown as text"),
    (478, "raw HTML shown as text"),
    (479, "raw HTML shown as text"),
    (493, "raw HTML shown as text"),
    (496, "raw HTML shown as text"),
    (526, "raw HTML shown as text"),
    (538, "raw HTML shown as text"),
    (645, "raw HTML shown as text"),
    (646, "raw HTML shown as text"),
    (519, "an image inside a link shows as its text"),
    (522, "an image is a link"),
    (533, "an image inside a link shows as its text"),
    (598, "link scheme `irc:` is not among http, https, mailto"),
    (600, "link scheme `a+b+c:` is not among http, https, mailto"),
    (
        601,
        "link scheme `made-up-scheme:` is not among http, https, mailto",
    ),
    (
        603,
        "link scheme `localhost:` is not among http, https, mailto",
    ),
    (604, "a bare URL is a link (GFM's autolink extension)"),
    (610, "a bare URL is a link (GFM's autolink extension)"),
    (613, "a bare URL is a link (GFM's autolink extension)"),
];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Each run of whitespace as one space, as `re.sub(r"\s+", " ", data)` does.
fn collapse_whitespace(data: &str) -> String {
    let mut out = String::with_capacity(data.len());
    for c in data.chars() {
        if !c.is_whitespace() {
            out.push(c);
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    out
}

fn is_block_tag(tag: &str) -> bool {
    [
        "article",
        "header",
        "aside",
        "hgroup",
        "blockquote",
        "hr",
        "iframe",
        "body",
        "li",
        "map",
        "button",
        "object",
        "canvas",
        "ol",
        "output",
        "colgroup",
        "p",
        "pre",
        "progress",
        "dd",
        "dl",
        "section",
        "div",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
        "video",
        "audio",
        "embed",
        "noscript",
        "svg",
        "math",
    ]
    .contains(&tag)
}

#[derive(PartialEq)]
enum Last {
    StartTag,
    EndTag,
    Other,
}

/// HTML normalized the way the spec's `test/normalize.py` does it: whitespace collapsed outside `<pre>` and
/// dropped around block tags, attributes sorted, character references decoded (then `<>&"` escaped again).
///
/// It also takes off what our writer adds by design around otherwise spec-equal HTML: the code block's wrapper
/// and copy button, and the `target`/`rel` of links (they open in a new tab).
fn normalize(html: &str) -> String {
    let mut out = String::new();
    let mut last = Last::Other;
    let mut last_tag = String::new();
    let mut in_pre = false;
    let mut in_copy_button = false;
    // For each open `div`: whether it is our code block wrapper.
    let mut divs = Vec::new();
    let mut data = String::new();
    let mut tokens = Tokenizer::new(html).flatten().peekable();
    while let Some(token) = tokens.next() {
        match token {
            Token::String(s) => {
                data.push_str(&text(&s));
                if matches!(tokens.peek(), Some(Token::String(_))) {
                    continue;
                }
                let mut chunk = std::mem::take(&mut data);
                if in_copy_button {
                    continue;
                }
                let after_tag = last != Last::Other;
                if after_tag && last_tag == "br" {
                    chunk = chunk.trim_start_matches('\n').to_string();
                }
                if !in_pre {
                    chunk = collapse_whitespace(&chunk);
                    if after_tag && is_block_tag(&last_tag) {
                        chunk = if last == Last::StartTag {
                            chunk.trim_start().to_string()
                        } else {
                            chunk.trim().to_string()
                        };
                    }
                }
                out.push_str(&escape(&chunk));
                last = Last::Other;
            }
            Token::StartTag(tag) => {
                let name = text(&tag.name);
                let attributes: BTreeMap<String, String> = tag
                    .attributes
                    .iter()
                    .map(|(k, v)| (text(k), text(v)))
                    .collect();
                let class = attributes.get("class").map(String::as_str);
                if name == "div" {
                    divs.push(class == Some("code-block"));
                    if class == Some("code-block") {
                        continue;
                    }
                }
                if name == "button" && class == Some("copy-code") {
                    in_copy_button = true;
                    continue;
                }
                if name == "pre" {
                    in_pre = true;
                }
                if is_block_tag(&name) {
                    out.truncate(out.trim_end().len());
                }
                out.push('<');
                out.push_str(&name);
                for (key, value) in &attributes {
                    if name == "a" && (key == "target" || key == "rel") {
                        continue;
                    }
                    out.push_str(&format!(" {key}=\"{}\"", escape(value)));
                }
                out.push('>');
                last = if tag.self_closing {
                    Last::EndTag
                } else {
                    Last::StartTag
                };
                last_tag = name;
            }
            Token::EndTag(tag) => {
                let name = text(&tag.name);
                if name == "div" && divs.pop() == Some(true) {
                    continue;
                }
                if name == "button" && in_copy_button {
                    in_copy_button = false;
                    continue;
                }
                if name == "pre" {
                    in_pre = false;
                } else if is_block_tag(&name) {
                    out.truncate(out.trim_end().len());
                }
                out.push_str(&format!("</{name}>"));
                last = Last::EndTag;
                last_tag = name;
            }
            Token::Comment(comment) => {
                out.push_str(&format!("<!--{}-->", text(&comment)));
                last = Last::Other;
            }
            Token::Doctype(_) | Token::Error(_) => {}
        }
    }
    out
}

#[test]
fn commonmark_spec_examples_render_as_the_spec_says() {
    let examples: Vec<Example> = serde_json::from_str(include_str!("data/commonmark-spec.json"))
        .expect("the spec's examples");
    assert!(examples.len() > 600, "{} examples", examples.len());
    let counted: Vec<&Example> = examples
        .iter()
        .filter(|e| !SECTIONS_BY_DESIGN.contains(&e.section.as_str()))
        .collect();
    let by_design = |e: &Example| EXAMPLES_BY_DESIGN.iter().any(|(n, _)| *n == e.example);
    let mut failures = Vec::new();
    let mut passed_by_design = Vec::new();
    for example in &counted {
        let matches = normalize(&render(&example.markdown)) == normalize(&example.html);
        if matches && by_design(example) {
            passed_by_design.push(example.example);
        } else if !matches && !by_design(example) {
            failures.push(example);
        }
    }
    for example in &failures {
        eprintln!(
            "example {} ({}):\n  markdown: {:?}\n  expected: {}\n  actual:   {}",
            example.example,
            example.section,
            example.markdown,
            normalize(&example.html),
            normalize(&render(&example.markdown))
        );
    }
    let judged = counted.len() - EXAMPLES_BY_DESIGN.len();
    let passed = judged - failures.len();
    eprintln!(
        "CommonMark spec: {passed} of {judged} examples match ({:.1}%), outside the sections {SECTIONS_BY_DESIGN:?} \
         and the {} examples that differ by design; {} of all {} counted examples match ({:.1}%)",
        100.0 * passed as f64 / judged as f64,
        EXAMPLES_BY_DESIGN.len(),
        passed,
        counted.len(),
        100.0 * passed as f64 / counted.len() as f64
    );
    assert!(
        passed_by_design.is_empty(),
        "listed as differing by design, but they match: {passed_by_design:?}"
    );
    assert!(passed * 100 >= judged * 99, "{passed} of {judged} match");
}

/// Whether an attribute of a tag is one our writer writes, with a value it writes.
fn is_known_attribute(tag: &str, key: &str, value: &str) -> bool {
    match (tag, key) {
        ("a", "href") => {
            // What a browser takes for the scheme: ASCII letters first, then letters, digits, `+`, `-`, `.`.
            let lower: String = value
                .chars()
                .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
                .collect::<String>()
                .to_ascii_lowercase();
            let scheme = lower.split(':').next().unwrap_or_default();
            let is_scheme = lower.contains(':')
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
            !is_scheme || ["http", "https", "mailto"].contains(&scheme)
        }
        ("a", "title") => true,
        ("a", "target") => value == "_blank",
        ("a", "rel") => value == "noopener noreferrer",
        ("a", "class") => value == "image-link",
        ("code", "class") => value.starts_with("language-"),
        ("span", "class") => value.starts_with("tok-") && !value.contains(' '),
        ("th" | "td", "class") => ["align-left", "align-center", "align-right"].contains(&value),
        ("ol", "start") => value.bytes().all(|b| b.is_ascii_digit()),
        ("input", "type") => value == "checkbox",
        ("input", "disabled" | "checked") => value.is_empty(),
        ("div", "class") => value == "code-block",
        ("button", "type") => value == "button",
        ("button", "class") => value == "copy-code",
        ("button", "aria-label") => value == "Copy code",
        ("p", "class") => value == "raw-html",
        _ => false,
    }
}

/// Random documents built from the pieces markdown and HTML are made of: rendering never panics, and every tag
/// and attribute in the output is one the writer writes, with a safe link target.
#[test]
fn random_documents_only_ever_yield_known_tags() {
    const PIECES: [&str; 44] = [
        "<",
        ">",
        "script",
        "img ",
        "onerror=",
        "[",
        "]",
        "(",
        ")",
        "*",
        "**",
        "_",
        "`",
        "```",
        "```rust\n",
        "\n",
        "\n\n",
        "|",
        "---",
        "> ",
        "- ",
        "1. ",
        "javascript:",
        "java\tscript:",
        "&colon;",
        "\"",
        "'",
        "!",
        "https://x.y",
        " ",
        "~~",
        "# ",
        "\\",
        "&",
        "é",
        "日本",
        "    ",
        "<!--",
        "-->",
        "[ ] ",
        "[x] ",
        ":-:",
        "<div>",
        "\t",
    ];
    const TAGS: [&str; 29] = [
        "p",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "em",
        "strong",
        "del",
        "code",
        "pre",
        "a",
        "ul",
        "ol",
        "li",
        "blockquote",
        "hr",
        "br",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "input",
        "span",
        "div",
        "button",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..4_000 {
        let mut doc = String::new();
        for _ in 0..(seed % 48) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            doc.push_str(PIECES[(seed % PIECES.len() as u64) as usize]);
        }
        let html = render(&doc);
        for token in Tokenizer::new(&html).flatten() {
            match token {
                Token::StartTag(tag) => {
                    let name = text(&tag.name);
                    assert!(
                        TAGS.contains(&name.as_str()),
                        "<{name}> from {doc:?} → {html}"
                    );
                    for (key, value) in &tag.attributes {
                        let (key, value) = (text(key), text(value));
                        assert!(
                            is_known_attribute(&name, &key, &value),
                            "<{name} {key}={value:?}> from {doc:?} → {html}"
                        );
                    }
                }
                Token::EndTag(tag) => {
                    let name = text(&tag.name);
                    assert!(
                        TAGS.contains(&name.as_str()),
                        "</{name}> from {doc:?} → {html}"
                    );
                }
                Token::Comment(_) | Token::Doctype(_) => panic!("{doc:?} → {html}"),
                Token::String(_) | Token::Error(_) => {}
            }
        }
    }
}
