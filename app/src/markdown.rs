//! The assistant's markdown as HTML safe for `innerHTML`: pulldown-cmark parses, our writer writes every tag.

use linkify::{LinkFinder, LinkKind};
use pulldown_cmark::{Alignment, CodeBlockKind, Event, LinkType, Options, Parser, Tag, TagEnd};
use pulldown_cmark_escape::{escape_href, escape_html};

/// Link schemes an answer may point at. Anything else (`javascript:`, `data:`, `file:`, an app's own handler)
/// keeps its text but loses its target.
const SAFE_SCHEMES: [&str; 3] = ["http", "https", "mailto"];

/// Writes a code block's code, given its language, as HTML (escaped, and highlighted where it can).
pub type Highlighter = fn(code: &str, language: &str, out: &mut String);

/// Markdown (CommonMark with GFM tables, task lists, strikethrough and bare URLs as links) to sanitized HTML; code
/// blocks are written by `highlight`.
///
/// Safe by construction: pulldown-cmark only parses, and the writer below writes each tag and attribute of the
/// output itself. Raw HTML in the answer is shown as text, link targets keep only the schemes above (or none),
/// images become links (an answer cannot make the browser fetch anything), and tables are aligned with classes, so
/// the Content-Security-Policy needs no inline styles. A fence left open (an answer still streaming) is, as
/// CommonMark says, a code block to the end of the text.
pub fn render(markdown: &str, highlight: Highlighter) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS | Options::ENABLE_STRIKETHROUGH;
    let mut writer = Writer {
        out: String::with_capacity(markdown.len() + markdown.len() / 4 + 16),
        highlight,
        alignments: Vec::new(),
        in_table_head: false,
        column: 0,
        links: 0,
        untitled_image: None,
        code: None,
        prose: String::new(),
    };
    for event in Parser::new_ext(markdown, options) {
        writer.event(event);
    }
    writer.flush_prose();
    writer.out
}

/// How much of a streaming answer's markdown is finished blocks: the length up to the last blank line after which a
/// new top-level block has begun, outside any fenced code. Rendered once, that part stays as it is while the rest
/// of the answer streams in (see `MessageView`): later text cannot change it, but in rare cases the whole text
/// renders otherwise (a list made loose by a blank line, a link definition further down), so a finished answer
/// is rendered whole once more. A blank line followed by an indented line, a list item or a closing fence is not a
/// boundary: what follows may still belong to the block before. Grows with the text, never shrinks.
pub fn finished_blocks_len(markdown: &str) -> usize {
    let mut finished = 0;
    // The fence character and length of the code block open at this point, if any.
    let mut fence: Option<(u8, usize)> = None;
    let mut blank_before = false;
    let mut offset = 0;
    for line in markdown.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim_start_matches(' ');
        let indent = line.len() - trimmed.len();
        let marker = trimmed.bytes().next().filter(|b| *b == b'`' || *b == b'~');
        let run = marker.map_or(0, |m| trimmed.bytes().take_while(|b| *b == m).count());
        match fence {
            Some((char, length)) => {
                let closes = indent < 4
                    && marker == Some(char)
                    && run >= length
                    && trimmed[run..].trim().is_empty();
                if closes {
                    fence = None;
                }
                blank_before = false;
                continue;
            }
            None if indent < 4 && run >= 3 => {
                if blank_before && start > 0 {
                    finished = start;
                }
                fence = marker.map(|m| (m, run));
                blank_before = false;
                continue;
            }
            None => {}
        }
        if line.trim().is_empty() {
            blank_before = true;
            continue;
        }
        let starts_block = indent == 0 && !is_list_item(trimmed);
        if blank_before && starts_block {
            finished = start;
        }
        blank_before = false;
    }
    finished
}

/// Whether a line starts a list item (`- `, `* `, `+ `, `1. `, `1) `).
fn is_list_item(line: &str) -> bool {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    let rest = &line.as_bytes()[digits..];
    let marker = matches!(
        (digits, rest.first()),
        (0, Some(b'-' | b'*' | b'+')) | (1..=9, Some(b'.' | b')'))
    );
    marker && matches!(rest.get(1), None | Some(b' ' | b'\t' | b'\n' | b'\r'))
}

/// The HTML written so far and what it is inside of.
struct Writer {
    out: String,
    highlight: Highlighter,
    /// Column alignments of the table being written.
    alignments: Vec<Alignment>,
    /// Whether the table's head row is being written (its cells are `th`).
    in_table_head: bool,
    /// Column of the next table cell.
    column: usize,
    /// Links and images open. Only the outermost is written as a link; nested ones show as their text.
    links: usize,
    /// The target of an image link that has shown no text yet: it shows its address instead.
    untitled_image: Option<String>,
    /// The fenced or indented code block being collected: its language and its text.
    code: Option<(String, String)>,
    /// Text not yet written: the parser may cut a run of text in pieces (at `_`, `*`, `[`…), and a bare URL is
    /// found in the whole run.
    prose: String,
}

impl Writer {
    fn event(&mut self, event: Event) {
        if let Some((_, code)) = &mut self.code {
            match event {
                Event::End(TagEnd::CodeBlock) => self.code_block_end(),
                Event::Text(text) => code.push_str(&text),
                _ => {}
            }
            return;
        }
        if let Event::Text(text) = &event {
            self.prose.push_str(text);
            return;
        }
        self.flush_prose();
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Html(text) | Event::InlineHtml(text) => self.text(&text),
            Event::Code(text) => {
                self.out.push_str("<code>");
                self.text(&text);
                self.out.push_str("</code>");
            }
            Event::SoftBreak => self.out.push('\n'),
            Event::HardBreak => self.out.push_str("<br />\n"),
            Event::Rule => {
                self.fresh_line();
                self.out.push_str("<hr />\n");
            }
            Event::TaskListMarker(checked) => self.out.push_str(if checked {
                "<input type=\"checkbox\" disabled checked> "
            } else {
                "<input type=\"checkbox\" disabled> "
            }),
            // Math and footnotes are not enabled; their events never come.
            _ => {}
        }
    }

    /// Writes the text run collected so far, its bare http(s) URLs as links (unless it is inside a link already).
    fn flush_prose(&mut self) {
        let prose = std::mem::take(&mut self.prose);
        if prose.is_empty() {
            return;
        }
        if self.links > 0 {
            self.text(&prose);
            return;
        }
        let mut finder = LinkFinder::new();
        finder.kinds(&[LinkKind::Url]);
        for span in finder.spans(&prose) {
            let url = span.as_str();
            if span.kind().is_some() && is_safe_url(url) {
                self.link_start(url, "", "");
                self.text(url);
                self.end(TagEnd::Link);
            } else {
                self.text(url);
            }
        }
    }

    /// Model text, escaped. Raw HTML comes here too, so it shows as the text it is.
    fn text(&mut self, text: &str) {
        if !text.is_empty() {
            self.untitled_image = None;
        }
        escape_into(&mut self.out, text);
    }

    /// Block tags start on a line of their own, as in the spec's HTML.
    fn fresh_line(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with('\n') {
            self.out.push('\n');
        }
    }

    fn start(&mut self, tag: Tag) {
        if matches!(
            tag,
            Tag::Paragraph
                | Tag::Heading { .. }
                | Tag::BlockQuote(_)
                | Tag::CodeBlock(_)
                | Tag::HtmlBlock
                | Tag::List(_)
                | Tag::Table(_)
        ) {
            self.fresh_line();
        }
        let out = &mut self.out;
        match tag {
            Tag::Paragraph => out.push_str("<p>"),
            Tag::Heading { level, .. } => {
                out.push('<');
                out.push_str(&level.to_string());
                out.push('>');
            }
            Tag::BlockQuote(_) => out.push_str("<blockquote>\n"),
            Tag::CodeBlock(kind) => {
                let language = match kind {
                    CodeBlockKind::Fenced(info) => info
                        .split_ascii_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                self.code = Some((language, String::new()));
            }
            Tag::HtmlBlock => out.push_str("<p class=\"raw-html\">"),
            Tag::List(Some(1)) => out.push_str("<ol>\n"),
            Tag::List(Some(start)) => {
                out.push_str("<ol start=\"");
                out.push_str(&start.to_string());
                out.push_str("\">\n");
            }
            Tag::List(None) => out.push_str("<ul>\n"),
            Tag::Item => out.push_str("<li>"),
            Tag::Table(alignments) => {
                self.alignments = alignments;
                out.push_str("<table>\n");
            }
            Tag::TableHead => {
                self.in_table_head = true;
                self.column = 0;
                out.push_str("<thead>\n<tr>");
            }
            Tag::TableRow => {
                self.column = 0;
                out.push_str("<tr>");
            }
            Tag::TableCell => {
                out.push_str(if self.in_table_head { "<th" } else { "<td" });
                out.push_str(match self.alignments.get(self.column) {
                    Some(Alignment::Left) => " class=\"align-left\">",
                    Some(Alignment::Center) => " class=\"align-center\">",
                    Some(Alignment::Right) => " class=\"align-right\">",
                    Some(Alignment::None) | None => ">",
                });
            }
            Tag::Emphasis => out.push_str("<em>"),
            Tag::Strong => out.push_str("<strong>"),
            Tag::Strikethrough => out.push_str("<del>"),
            Tag::Link {
                link_type,
                dest_url,
                title,
                ..
            } => {
                let mailto = if link_type == LinkType::Email {
                    "mailto:"
                } else {
                    ""
                };
                self.link_start(&format!("{mailto}{dest_url}"), &title, "");
            }
            Tag::Image {
                dest_url, title, ..
            } => {
                if self.links == 0 {
                    self.untitled_image = Some(dest_url.to_string());
                }
                self.link_start(&dest_url, &title, " class=\"image-link\"");
            }
            // Footnotes, definition lists, super/subscript and metadata are not enabled.
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        let out = &mut self.out;
        match tag {
            TagEnd::Paragraph => out.push_str("</p>\n"),
            TagEnd::Heading(level) => {
                out.push_str("</");
                out.push_str(&level.to_string());
                out.push_str(">\n");
            }
            TagEnd::BlockQuote(_) => out.push_str("</blockquote>\n"),
            TagEnd::HtmlBlock => {
                if out.ends_with('\n') {
                    out.pop();
                }
                out.push_str("</p>\n");
            }
            TagEnd::List(true) => out.push_str("</ol>\n"),
            TagEnd::List(false) => out.push_str("</ul>\n"),
            TagEnd::Item => out.push_str("</li>\n"),
            TagEnd::Table => out.push_str("</tbody>\n</table>\n"),
            TagEnd::TableHead => {
                self.in_table_head = false;
                out.push_str("</tr>\n</thead>\n<tbody>\n");
            }
            TagEnd::TableRow => out.push_str("</tr>\n"),
            TagEnd::TableCell => {
                out.push_str(if self.in_table_head { "</th>" } else { "</td>" });
                self.column += 1;
            }
            TagEnd::Emphasis => out.push_str("</em>"),
            TagEnd::Strong => out.push_str("</strong>"),
            TagEnd::Strikethrough => out.push_str("</del>"),
            TagEnd::Link | TagEnd::Image => {
                self.links -= 1;
                if self.links == 0 {
                    if let Some(url) = self.untitled_image.take() {
                        escape_into(&mut self.out, &url);
                    }
                    self.out.push_str("</a>");
                }
            }
            _ => {}
        }
    }

    /// Opens a link (an image is one too) unless one is open already: HTML links cannot nest.
    fn link_start(&mut self, url: &str, title: &str, class: &str) {
        self.links += 1;
        if self.links > 1 {
            return;
        }
        let out = &mut self.out;
        out.push_str("<a href=\"");
        if is_safe_url(url) {
            // Writing to a String cannot fail.
            let _ = escape_href(&mut *out, url);
        }
        out.push('"');
        if !title.is_empty() {
            out.push_str(" title=\"");
            escape_into(out, title);
            out.push('"');
        }
        out.push_str(class);
        out.push_str(" target=\"_blank\" rel=\"noopener noreferrer\">");
    }

    /// A code block with its copy button (labelled by the stylesheet, so the text of the answer stays the answer's):
    /// highlighted when its language is one we know, plain otherwise.
    fn code_block_end(&mut self) {
        let Some((language, code)) = self.code.take() else {
            return;
        };
        let out = &mut self.out;
        out.push_str(
            "<div class=\"code-block\"><button type=\"button\" class=\"copy-code\" \
             aria-label=\"Copy code\"></button><pre><code",
        );
        if !language.is_empty() {
            out.push_str(" class=\"language-");
            escape_into(out, &language);
            out.push('"');
        }
        out.push('>');
        (self.highlight)(&code, &language, out);
        out.push_str("</code></pre></div>\n");
    }
}

/// Escapes text for an element's content or a double-quoted attribute.
pub(crate) fn escape_into(out: &mut String, text: &str) {
    // Writing to a String cannot fail.
    let _ = escape_html(out, text);
}

/// Whether a link target has one of the safe schemes, or none (a relative link).
fn is_safe_url(url: &str) -> bool {
    // Browsers skip whitespace and control characters inside a scheme ("java\tscript:"), so compare without them.
    let normalized: String = url
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    let Some((scheme, _)) = normalized.split_once(':') else {
        return true;
    };
    // Text before a colon is a scheme only when it is spelled like one (a letter, then letters, digits, `+-.`);
    // otherwise a browser takes the whole target for a relative path (`docs/a:b.md`, `foo):`).
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    !is_scheme || SAFE_SCHEMES.contains(&scheme)
}

#[cfg(test)]
mod tests {
    use crate::highlight;

    fn render(markdown: &str) -> String {
        super::render(markdown, highlight::write)
    }

    const LINK: &str = "target=\"_blank\" rel=\"noopener noreferrer\"";
    const COPY: &str = "<div class=\"code-block\"><button type=\"button\" class=\"copy-code\" \
                        aria-label=\"Copy code\"></button>";

    #[test]
    fn paragraphs_headings_and_emphasis() {
        assert_eq!(
            render("# Title\n\nSome **bold**, *em*, ***both***, ~~gone~~ and `code`.\nNext line."),
            "<h1>Title</h1>\n<p>Some <strong>bold</strong>, <em>em</em>, <em><strong>both</strong></em>, \
             <del>gone</del> and <code>code</code>.\nNext line.</p>\n"
        );
        assert_eq!(render("a  \nb"), "<p>a<br />\nb</p>\n");
        assert_eq!(
            render("call my_var_name and 2 * 3 * 4"),
            "<p>call my_var_name and 2 * 3 * 4</p>\n"
        );
    }

    #[test]
    fn code_blocks_are_highlighted_and_copyable() {
        assert_eq!(
            render("```rust\nlet x = \"<hi>\";\n```\nafter"),
            format!(
                "{COPY}<pre><code class=\"language-rust\"><span class=\"tok-keyword\">let</span> x \
                 <span class=\"tok-operator\">=</span> <span class=\"tok-string\">&quot;&lt;hi&gt;&quot;</span>\
                 <span class=\"tok-punctuation\">;</span>\n</code></pre></div>\n<p>after</p>\n"
            )
        );
        // Unknown languages, and no language, render plain.
        assert_eq!(
            render("```klingon\nlet x;\n```"),
            format!("{COPY}<pre><code class=\"language-klingon\">let x;\n</code></pre></div>\n")
        );
        assert_eq!(
            render("    indented <b>\n"),
            format!("{COPY}<pre><code>indented &lt;b&gt;\n</code></pre></div>\n")
        );
    }

    #[test]
    fn an_open_fence_while_streaming_is_a_code_block() {
        assert_eq!(
            render("text\n```\nlet x = 1;"),
            format!("<p>text</p>\n{COPY}<pre><code>let x = 1;</code></pre></div>\n")
        );
        assert!(render("```python\ndef f():").contains("<span class=\"tok-keyword\">def</span>"));
    }

    #[test]
    fn lists_and_task_lists() {
        assert_eq!(
            render("- one\n- two\n  - inner\n- [x] done\n\n3. three\n4. four"),
            "<ul>\n<li>one</li>\n<li>two\n<ul>\n<li>inner</li>\n</ul>\n</li>\n\
             <li><input type=\"checkbox\" disabled checked> done</li>\n</ul>\n\
             <ol start=\"3\">\n<li>three</li>\n<li>four</li>\n</ol>\n"
        );
    }

    #[test]
    fn tables_align_with_classes() {
        assert_eq!(
            render("| a | b | c |\n|:--|:-:|---|\n| 1 | `x\\|y` |"),
            "<table>\n<thead>\n<tr><th class=\"align-left\">a</th><th class=\"align-center\">b</th><th>c</th></tr>\n\
             </thead>\n<tbody>\n<tr><td class=\"align-left\">1</td><td class=\"align-center\"><code>x|y</code></td>\
             <td></td></tr>\n</tbody>\n</table>\n"
        );
    }

    #[test]
    fn links_open_in_a_new_tab() {
        assert_eq!(
            render("see [the docs](https://example.com/a?b=1&c=2 \"Docs\")"),
            format!(
                "<p>see <a href=\"https://example.com/a?b=1&amp;c=2\" title=\"Docs\" {LINK}>the docs</a></p>\n"
            )
        );
        assert!(render("[rel](/s/abc)").contains("href=\"/s/abc\""));
        assert!(render("[here](#top)").contains("href=\"#top\""));
        assert!(render("<a@b.c>").contains("href=\"mailto:a@b.c\""));
        assert!(render("[path](docs/a:b.md)").contains("href=\"docs/a:b.md\""));
    }

    #[test]
    fn bare_urls_become_links() {
        assert_eq!(
            render("see https://x.dev/a_b_c, or (https://x.dev/a_(b))."),
            format!(
                "<p>see <a href=\"https://x.dev/a_b_c\" {LINK}>https://x.dev/a_b_c</a>, or \
                 (<a href=\"https://x.dev/a_(b)\" {LINK}>https://x.dev/a_(b)</a>).</p>\n"
            )
        );
        // Not inside links or code, and not with other schemes.
        assert_eq!(
            render("[https://a.b](https://c.d) `https://e.f` javascript://x%0Aalert(1)"),
            format!(
                "<p><a href=\"https://c.d\" {LINK}>https://a.b</a> <code>https://e.f</code> \
                 javascript://x%0Aalert(1)</p>\n"
            )
        );
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        assert_eq!(
            render("<script>alert(1)</script>"),
            "<p class=\"raw-html\">&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
        );
        assert_eq!(
            render("hello <b onclick=x>world</b>"),
            "<p>hello &lt;b onclick=x&gt;world&lt;/b&gt;</p>\n"
        );
        // An info string cannot leave its attribute.
        assert!(render("```\"onmouseover=\"x\n```")
            .contains("<code class=\"language-&quot;onmouseover=&quot;x\">"));
    }

    #[test]
    fn dangerous_link_targets_are_dropped() {
        for evil in [
            "[x](javascript:alert(1))",
            "[x](JavaScript:alert(1))",
            "[x](java\tscript:alert(1))",
            "[x](<javascript:alert(1)>)",
            "[x](javascript&colon;alert(1))",
            "<javascript:alert(1)>",
            "[x](data:text/html;base64,PHNjcmlwdD4=)",
            "[x](vbscript:msgbox)",
            "[x](file:///etc/passwd)",
            "![x](javascript:alert(1))",
        ] {
            let html = render(evil);
            let mut hrefs = html.split("href=\"").skip(1);
            assert!(hrefs.all(|h| h.starts_with('"')), "{evil} → {html}");
            assert!(!html.contains("href=\"java"), "{evil} → {html}");
        }
    }

    #[test]
    fn images_become_links() {
        assert_eq!(
            render("![a cat](https://example.com/cat.png)"),
            format!("<p><a href=\"https://example.com/cat.png\" class=\"image-link\" {LINK}>a cat</a></p>\n")
        );
        assert_eq!(
            render("![](/cat.png)"),
            format!("<p><a href=\"/cat.png\" class=\"image-link\" {LINK}>/cat.png</a></p>\n")
        );
        // Links do not nest: an image inside a link shows as its text.
        assert_eq!(
            render("[![moon](moon.jpg)](/uri)"),
            format!("<p><a href=\"/uri\" {LINK}>moon</a></p>\n")
        );
    }

    #[test]
    fn adversarial_input_stays_fast() {
        let started = std::time::Instant::now();
        for evil in [
            "*a ".repeat(20_000),
            "[".repeat(50_000),
            "`".repeat(3) + &"x`".repeat(20_000),
            "> ".repeat(5_000) + "deep",
            "- ".repeat(5_000) + "deep",
            "_a ".repeat(20_000) + &"**".repeat(10_000),
            "![".repeat(20_000),
        ] {
            assert!(!render(&evil).is_empty());
        }
        assert!(
            started.elapsed().as_secs() < 5,
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn finished_blocks_end_at_a_blank_line_before_a_new_block() {
        use super::finished_blocks_len as done;
        assert_eq!(done("One paragraph, still stream"), 0);
        assert_eq!(done("One.\n\n"), 0, "the next block has not begun");
        assert_eq!(done("One.\n\nTw"), 6);
        assert_eq!(done("# Title\n\nOne.\n\n## Next"), 15);
        // A blank line inside a fenced block, and the fence that opens after one.
        let code = "Intro.\n\n```rust\nfn a() {}\n\nfn b() {}\n";
        assert_eq!(done(code), 8);
        assert_eq!(done(&format!("{code}```\n\nAfter.")), code.len() + 5);
        assert_eq!(
            done("~~~\n```\n\nstill code\n"),
            0,
            "a ``` does not close a ~~~ fence"
        );
    }

    #[test]
    fn what_may_still_belong_to_the_block_before_is_not_finished() {
        use super::finished_blocks_len as done;
        // A list made loose, an indented continuation, indented code.
        assert_eq!(done("- a\n\n- b"), 0);
        assert_eq!(done("1. a\n\n2) b"), 0);
        assert_eq!(done("- a\n\n  more of a"), 0);
        assert_eq!(done("Text.\n\n    code"), 0);
        // A paragraph after a list does end it.
        assert_eq!(done("- a\n- b\n\nAfter."), 9);
        // Emphasis is not a list item.
        assert_eq!(done("One.\n\n**Bold** start"), 6);
    }

    #[test]
    fn finished_blocks_render_as_they_do_in_the_whole_text() {
        let text = "# Title\n\nSome *prose*.\n\n```sh\nls\n\nls -l\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nEnd of";
        let done = super::finished_blocks_len(text);
        assert!(text[done..].starts_with("End of"), "{:?}", &text[done..]);
        assert_eq!(
            format!("{}{}", render(&text[..done]), render(&text[done..])),
            render(text)
        );
    }
}
