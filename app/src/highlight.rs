//! Syntax highlighting of code blocks: oxidoc-highlight's lexers find the tokens, we write the (escaped) spans. It
//! runs in the highlighting worker (`bin/vf-highlighter.rs`), so the page's own wasm does without the lexers.
//!
//! Why this highlighter: it has hand-written lexers (no regex engine, no grammar tables) for every language Claude
//! Code writes most (Rust, TypeScript/JavaScript, Python, shell, JSON, TOML, YAML, Go, SQL, HTML/CSS, diff) and
//! costs ~34 KB of gzipped wasm. syntect with its default syntaxes (and no TypeScript or TOML among them) measured
//! ~770 KB gzipped, more than twice the whole app; tree-sitter grammars do not build for wasm32-unknown-unknown.

use crate::markdown::escape_into;

/// Writes `code` as HTML: `<span class="tok-…">` around the tokens of a known `language`, plain escaped text for
/// an unknown one.
pub fn write(code: &str, language: &str, out: &mut String) {
    let language = language.to_ascii_lowercase();
    let mut written = 0;
    if oxidoc_highlight::is_supported(&language) {
        for token in oxidoc_highlight::scan(code, &language) {
            let Some(class) = token.kind.class() else {
                continue;
            };
            // Defensive: a token out of order or off a character boundary is left plain.
            let (Some(before), Some(text)) = (
                code.get(written..token.start),
                code.get(token.start..token.end),
            ) else {
                continue;
            };
            escape_into(out, before);
            out.push_str("<span class=\"");
            out.push_str(class);
            out.push_str("\">");
            escape_into(out, text);
            out.push_str("</span>");
            written = token.end;
        }
    }
    escape_into(out, &code[written..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(code: &str, language: &str) -> String {
        let mut out = String::new();
        write(code, language, &mut out);
        out
    }

    #[test]
    fn the_languages_claude_code_writes_most_are_highlighted() {
        for (language, code) in [
            ("rust", "fn main() {}"),
            ("ts", "const x: number = 1;"),
            ("typescript", "interface A {}"),
            ("js", "function f() {}"),
            ("javascript", "let a = 1;"),
            ("tsx", "export default 1;"),
            ("python", "def f(): pass"),
            ("py", "import os"),
            ("bash", "if true; then echo hi; fi"),
            ("sh", "for f in *; do echo; done"),
            ("shell", "if x; then y; fi"),
            ("json", "{\"a\": 1}"),
            ("toml", "[package]\nname = \"x\""),
            ("yaml", "key: value"),
            ("go", "func main() {}"),
            ("sql", "SELECT * FROM t"),
            ("html", "<div class=\"a\"></div>"),
            ("css", "a { color: red; }"),
            ("diff", "+added\n-removed"),
            ("Rust", "fn main() {}"),
        ] {
            assert!(
                html(code, language).contains("<span class=\"tok-"),
                "{language}"
            );
        }
    }

    #[test]
    fn text_is_kept_and_escaped() {
        for (language, code) in [
            ("rust", "let s = \"<script>\"; // é 日本 & more\n"),
            ("html", "<script>alert(1)</script>"),
            ("klingon", "<b>\"x\" & y</b>"),
            ("", "plain & simple"),
        ] {
            let out = html(code, language);
            assert!(!out.contains("<script") && !out.contains("<b>"), "{out}");
            let mut text = String::new();
            let mut in_tag = false;
            for c in out.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' if in_tag => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            let unescaped = text
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&amp;", "&");
            assert_eq!(unescaped, code);
        }
        assert_eq!(html("<b>", "klingon"), "&lt;b&gt;");
    }
}
