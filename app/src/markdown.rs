//! Renders the assistant's markdown to HTML that is safe to set as `innerHTML`.

/// Deepest nesting of quotes and lists, and of emphasis, before the rest is shown as plain text.
const MAX_DEPTH: usize = 16;
/// Longest link text searched for its `]`.
const MAX_LINK_TEXT: usize = 2_000;

/// Markdown to sanitized HTML.
///
/// Safe by construction: the only tags in the output are the ones written here; every piece of the model's text, raw
/// HTML included, goes through `escape_into` (so `<script>` shows as text), and link targets keep only http(s),
/// mailto and relative URLs. Images become plain links, so an answer cannot make the browser fetch anything.
///
/// It covers what chat answers use (the CommonMark blocks and inlines plus GFM tables, task lists, strikethrough
/// and bare URLs) in a few kilobytes of wasm, where pulldown-cmark cost ~70 KB of the gzipped app. A fence left
/// open (an answer still streaming) renders as a code block to the end of the text. Every scan is bounded (nesting
/// depth, link length, remembered failed searches), so no answer can make rendering slow.
pub fn render(markdown: &str) -> String {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = String::with_capacity(markdown.len() + markdown.len() / 4 + 16);
    blocks(&lines, false, 0, &mut out);
    out
}

fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// Keeps a link target whose scheme is http, https or mailto, or that has none; anything else becomes empty.
fn safe_url(url: &str) -> &str {
    // Browsers ignore whitespace and control characters inside a scheme ("java\tscript:"), so compare without them.
    let normalized: String = url
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    let allowed = match (normalized.find(':'), normalized.find(['/', '?', '#'])) {
        (Some(colon), Some(path)) if path < colon => true,
        (Some(colon), _) => matches!(&normalized[..colon], "http" | "https" | "mailto"),
        (None, _) => true,
    };
    if allowed {
        url
    } else {
        ""
    }
}

fn link_open(url: &str, out: &mut String) {
    out.push_str("<a href=\"");
    escape_into(safe_url(url), out);
    out.push_str("\" target=\"_blank\" rel=\"noopener noreferrer\">");
}

// ---------------------------------------------------------------------------------------------------------------
// Blocks

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// The indentation of a line in columns (a tab counts 4) and the line without it.
fn indentation(line: &str) -> (usize, &str) {
    let mut columns = 0;
    for (i, c) in line.char_indices() {
        match c {
            ' ' => columns += 1,
            '\t' => columns += 4 - columns % 4,
            _ => return (columns, &line[i..]),
        }
    }
    (columns, "")
}

/// The line with up to `columns` columns of indentation removed.
fn dedent(line: &str, columns: usize) -> &str {
    let mut seen = 0;
    for (i, c) in line.char_indices() {
        if seen >= columns {
            return &line[i..];
        }
        match c {
            ' ' => seen += 1,
            '\t' => seen += 4 - seen % 4,
            _ => return &line[i..],
        }
    }
    ""
}

/// An opening code fence: its character, its length and the language of its info string.
fn fence_open(rest: &str) -> Option<(char, usize, &str)> {
    let c = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = rest.chars().take_while(|x| *x == c).count();
    let info = rest[len..].trim();
    (len >= 3 && !(c == '`' && info.contains('`')))
        .then(|| (c, len, info.split_whitespace().next().unwrap_or("")))
}

fn fence_closes(rest: &str, c: char, len: usize) -> bool {
    let run = rest.chars().take_while(|x| *x == c).count();
    run >= len && rest[run..].trim().is_empty()
}

fn heading(rest: &str) -> Option<(usize, &str)> {
    let level = rest.chars().take_while(|c| *c == '#').count();
    let text = &rest[level..];
    if !(1..=6).contains(&level) || !(text.is_empty() || text.starts_with([' ', '\t'])) {
        return None;
    }
    // An optional closing run of `#` preceded by a space is not part of the text.
    let text = text.trim();
    let without_closing = text.trim_end_matches('#');
    let text = if without_closing.is_empty() || without_closing.ends_with([' ', '\t']) {
        without_closing.trim_end()
    } else {
        text
    };
    Some((level, text))
}

fn is_rule(rest: &str) -> bool {
    let mut marks = rest.chars().filter(|c| !c.is_whitespace());
    match marks.next() {
        Some(c @ ('-' | '*' | '_')) => marks.clone().all(|x| x == c) && marks.count() >= 2,
        _ => false,
    }
}

/// A setext underline: the paragraph above it is a heading of level 1 (`===`) or 2 (`---`).
fn setext_level(line: &str) -> Option<usize> {
    let (indent, rest) = indentation(line);
    let rest = rest.trim_end();
    if indent > 3 || rest.is_empty() {
        return None;
    }
    if rest.chars().all(|c| c == '=') {
        Some(1)
    } else if rest.chars().all(|c| c == '-') {
        Some(2)
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct ListMarker {
    /// `Some(start)` for an ordered list.
    start: Option<u64>,
    /// The bullet, or the delimiter (`.` or `)`) of an ordered list.
    symbol: char,
    /// Columns from the marker's start to the item's content.
    width: usize,
}

impl ListMarker {
    fn same_list(&self, other: &ListMarker) -> bool {
        self.start.is_some() == other.start.is_some() && self.symbol == other.symbol
    }
}

fn list_marker(rest: &str) -> Option<ListMarker> {
    let (start, symbol, marker_len) = match rest.chars().next()? {
        c @ ('-' | '*' | '+') => (None, c, 1),
        _ => {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            let symbol = rest[digits..].chars().next()?;
            if !(1..=9).contains(&digits) || !matches!(symbol, '.' | ')') {
                return None;
            }
            (Some(rest[..digits].parse().ok()?), symbol, digits + 1)
        }
    };
    let after = &rest[marker_len..];
    if after.trim().is_empty() {
        return Some(ListMarker {
            start,
            symbol,
            width: marker_len + 1,
        });
    }
    let spaces = after.chars().take_while(|c| *c == ' ').count();
    match spaces {
        0 => None,
        1..=4 => Some(ListMarker {
            start,
            symbol,
            width: marker_len + spaces,
        }),
        // Five spaces or more: the content is indented code, one space belongs to the marker.
        _ => Some(ListMarker {
            start,
            symbol,
            width: marker_len + 1,
        }),
    }
}

/// A table's delimiter row (`| --- | :-: |`): the alignment of each column.
fn table_delimiter(line: &str) -> Option<Vec<&'static str>> {
    if !line.contains('-') {
        return None;
    }
    table_cells(line)
        .iter()
        .map(|cell| {
            let dashes = cell.trim_start_matches(':').trim_end_matches(':');
            if dashes.is_empty() || !dashes.chars().all(|c| c == '-') {
                return None;
            }
            Some(match (cell.starts_with(':'), cell.ends_with(':')) {
                (true, true) => "center",
                (true, false) => "left",
                (false, true) => "right",
                (false, false) => "",
            })
        })
        .collect()
}

/// The cells of a table row; `\|` is a pipe inside a cell.
fn table_cells(line: &str) -> Vec<&str> {
    let row = line.trim();
    let row = row.strip_prefix('|').unwrap_or(row);
    let row = match row.strip_suffix('|') {
        Some(inner) if !inner.ends_with('\\') => inner,
        _ => row,
    };
    let mut cells = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in row.char_indices() {
        match c {
            '\\' => escaped = !escaped,
            '|' if !escaped => {
                cells.push(row[start..i].trim());
                start = i + 1;
            }
            _ => escaped = false,
        }
    }
    cells.push(row[start..].trim());
    cells
}

fn table_starts(lines: &[&str], i: usize) -> bool {
    i + 1 < lines.len()
        && lines[i].contains('|')
        && table_delimiter(lines[i + 1]).is_some_and(|d| d.len() == table_cells(lines[i]).len())
}

/// Whether `line` starts a block that ends the paragraph above it.
fn interrupts_paragraph(lines: &[&str], i: usize) -> bool {
    let (indent, rest) = indentation(lines[i]);
    if indent > 3 {
        return false;
    }
    fence_open(rest).is_some()
        || heading(rest).is_some()
        || is_rule(rest)
        || rest.starts_with('>')
        || list_marker(rest).is_some_and(|m| {
            m.start.is_none_or(|s| s == 1) && !rest[m.width.min(rest.len())..].trim().is_empty()
        })
        || table_starts(lines, i)
}

/// Renders `lines` as blocks. In a `tight` list item, paragraphs are not wrapped in `<p>`.
fn blocks(lines: &[&str], tight: bool, depth: usize, out: &mut String) {
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if is_blank(line) {
            i += 1;
            continue;
        }
        let (indent, rest) = indentation(line);
        if indent <= 3 {
            if let Some((fence, len, lang)) = fence_open(rest) {
                i = code_block(lines, i + 1, indent, (fence, len, lang), out);
                continue;
            }
            if let Some((level, text)) = heading(rest) {
                out.push_str(&format!("<h{level}>"));
                inline(text, depth, out);
                out.push_str(&format!("</h{level}>\n"));
                i += 1;
                continue;
            }
            if is_rule(rest) {
                out.push_str("<hr>\n");
                i += 1;
                continue;
            }
            if depth < MAX_DEPTH {
                if rest.starts_with('>') {
                    i = blockquote(lines, i, depth, out);
                    continue;
                }
                if let Some(marker) = list_marker(rest) {
                    i = list(lines, i, marker, depth, out);
                    continue;
                }
            }
            if table_starts(lines, i) {
                i = table(lines, i, depth, out);
                continue;
            }
        }
        i = paragraph(lines, i, tight, depth, out);
    }
}

fn code_block(
    lines: &[&str],
    mut i: usize,
    indent: usize,
    (fence, len, lang): (char, usize, &str),
    out: &mut String,
) -> usize {
    out.push_str("<pre><code");
    if !lang.is_empty() {
        out.push_str(" class=\"language-");
        escape_into(lang, out);
        out.push('"');
    }
    out.push('>');
    while i < lines.len() {
        let (line_indent, rest) = indentation(lines[i]);
        i += 1;
        if line_indent <= 3 && fence_closes(rest, fence, len) {
            break;
        }
        escape_into(dedent(lines[i - 1], indent), out);
        out.push('\n');
    }
    out.push_str("</code></pre>\n");
    i
}

fn blockquote(lines: &[&str], mut i: usize, depth: usize, out: &mut String) -> usize {
    let mut inner = Vec::new();
    while i < lines.len() && !is_blank(lines[i]) {
        let (indent, rest) = indentation(lines[i]);
        match rest.strip_prefix('>') {
            Some(quoted) if indent <= 3 => inner.push(quoted.strip_prefix(' ').unwrap_or(quoted)),
            // A lazy continuation of the quote's paragraph.
            _ if !inner.is_empty() && !interrupts_paragraph(lines, i) => inner.push(rest),
            _ => break,
        }
        i += 1;
    }
    out.push_str("<blockquote>\n");
    blocks(&inner, false, depth + 1, out);
    out.push_str("</blockquote>\n");
    i
}

fn list(lines: &[&str], mut i: usize, first: ListMarker, depth: usize, out: &mut String) -> usize {
    let mut items: Vec<Vec<&str>> = Vec::new();
    let mut loose = false;
    while i < lines.len() {
        let (indent, rest) = indentation(lines[i]);
        let marker = match list_marker(rest) {
            Some(m) if indent <= 3 && m.same_list(&first) && !is_rule(rest) => m,
            _ => break,
        };
        let content_col = indent + marker.width;
        let mut item = vec![rest.get(marker.width..).unwrap_or("")];
        i += 1;
        let mut after_blank = false;
        while i < lines.len() {
            if is_blank(lines[i]) {
                // Blank lines belong to the item only if it goes on, indented, after them.
                match lines[i..].iter().position(|l| !is_blank(l)) {
                    Some(p) if indentation(lines[i + p]).0 >= content_col => {
                        item.extend(std::iter::repeat_n("", p));
                        i += p;
                        after_blank = true;
                    }
                    _ => break,
                }
            }
            let (line_indent, line_rest) = indentation(lines[i]);
            if line_indent >= content_col {
                loose |= after_blank;
                item.push(dedent(lines[i], content_col));
            } else if !after_blank
                && list_marker(line_rest).is_none()
                && !interrupts_paragraph(lines, i)
            {
                // A lazy continuation line of the item's paragraph.
                item.push(line_rest);
            } else {
                break;
            }
            i += 1;
        }
        items.push(item);
        let blank_start = i;
        while i < lines.len() && is_blank(lines[i]) {
            i += 1;
        }
        if i > blank_start {
            let continues = i < lines.len()
                && matches!(list_marker(indentation(lines[i]).1), Some(m) if m.same_list(&first));
            if !continues {
                break;
            }
            loose = true;
        }
    }
    match first.start {
        None => out.push_str("<ul>\n"),
        Some(1) => out.push_str("<ol>\n"),
        Some(start) => out.push_str(&format!("<ol start=\"{start}\">\n")),
    }
    for mut item in items {
        out.push_str("<li>");
        let (checkbox, first_line) = task(item[0]);
        out.push_str(checkbox);
        item[0] = first_line;
        blocks(&item, !loose, depth + 1, out);
        if out.ends_with('\n') {
            out.pop();
        }
        out.push_str("</li>\n");
    }
    out.push_str(if first.start.is_some() {
        "</ol>\n"
    } else {
        "</ul>\n"
    });
    i
}

/// A task list item's checkbox (`[ ]`, `[x]`) and the rest of its first line.
fn task(line: &str) -> (&'static str, &str) {
    for (prefix, html) in [
        ("[ ] ", "<input type=\"checkbox\" disabled> "),
        ("[x] ", "<input type=\"checkbox\" disabled checked> "),
        ("[X] ", "<input type=\"checkbox\" disabled checked> "),
    ] {
        if let Some(rest) = line.strip_prefix(prefix) {
            return (html, rest);
        }
    }
    ("", line)
}

fn table(lines: &[&str], mut i: usize, depth: usize, out: &mut String) -> usize {
    let aligns = table_delimiter(lines[i + 1]).unwrap_or_default();
    let row = |line: &str, cell: &str, out: &mut String| {
        let cells = table_cells(line);
        out.push_str("<tr>");
        for (n, align) in aligns.iter().enumerate() {
            out.push('<');
            out.push_str(cell);
            if !align.is_empty() {
                out.push_str(&format!(" style=\"text-align: {align}\""));
            }
            out.push('>');
            inline(cells.get(n).copied().unwrap_or(""), depth, out);
            out.push_str(&format!("</{cell}>"));
        }
        out.push_str("</tr>\n");
    };
    out.push_str("<table>\n<thead>\n");
    row(lines[i], "th", out);
    out.push_str("</thead>\n<tbody>\n");
    i += 2;
    while i < lines.len() && !is_blank(lines[i]) && lines[i].contains('|') {
        row(lines[i], "td", out);
        i += 1;
    }
    out.push_str("</tbody>\n</table>\n");
    i
}

fn paragraph(lines: &[&str], mut i: usize, tight: bool, depth: usize, out: &mut String) -> usize {
    let start = i;
    i += 1;
    let mut level = None;
    while i < lines.len() && !is_blank(lines[i]) {
        if let Some(l) = setext_level(lines[i]) {
            level = Some(l);
            break;
        }
        if interrupts_paragraph(lines, i) {
            break;
        }
        i += 1;
    }
    // Lines joined with their hard breaks (two trailing spaces) made explicit as `\` + newline.
    let mut text = String::new();
    for (n, line) in lines[start..i].iter().enumerate() {
        let trimmed = line.trim();
        text.push_str(trimmed);
        if start + n + 1 < i {
            text.push_str(if line.ends_with("  ") && !trimmed.ends_with('\\') {
                "\\\n"
            } else {
                "\n"
            });
        }
    }
    match level {
        Some(level) => {
            out.push_str(&format!("<h{level}>"));
            inline(&text, depth, out);
            out.push_str(&format!("</h{level}>\n"));
            i + 1
        }
        None if tight => {
            inline(&text, depth, out);
            out.push('\n');
            i
        }
        None => {
            out.push_str("<p>");
            inline(&text, depth, out);
            out.push_str("</p>\n");
            i
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Inlines

/// Emphasis delimiters: `*`, `_` (one, two or three) and `~~`.
const DELIMITERS: [(u8, usize); 7] = [
    (b'*', 1),
    (b'*', 2),
    (b'*', 3),
    (b'_', 1),
    (b'_', 2),
    (b'_', 3),
    (b'~', 2),
];

fn inline(text: &str, depth: usize, out: &mut String) {
    Inline {
        text,
        bytes: text.as_bytes(),
        depth,
        links: true,
        last_bracket: text.rfind(']'),
        no_closer_after: [None; 7],
        no_code_close_after: Vec::new(),
    }
    .render(0, text.len(), out);
}

/// One run of inline text. Searches that fail are remembered (a later search from further on fails too), which
/// keeps unmatched delimiters linear.
#[derive(Clone)]
struct Inline<'a> {
    text: &'a str,
    bytes: &'a [u8],
    depth: usize,
    /// Links may start here (not inside a link's own text).
    links: bool,
    last_bracket: Option<usize>,
    /// For each delimiter: a position after which no closer exists.
    no_closer_after: [Option<usize>; 7],
    /// For each backtick run length: a position after which no closing run exists.
    no_code_close_after: Vec<(usize, usize)>,
}

impl Inline<'_> {
    fn byte(&self, i: usize) -> Option<u8> {
        self.bytes.get(i).copied()
    }

    fn run(&self, i: usize, b: u8, to: usize) -> usize {
        self.bytes[i..to].iter().take_while(|x| **x == b).count()
    }

    /// The character before byte `i`.
    fn char_before(&self, i: usize) -> Option<char> {
        self.text[..i].chars().next_back()
    }

    fn char_at(&self, i: usize) -> Option<char> {
        self.text.get(i..).and_then(|s| s.chars().next())
    }

    /// A copy for the text inside a construct, one level deeper.
    fn nested(&self, links: bool) -> Self {
        Inline {
            depth: self.depth + 1,
            links: self.links && links,
            ..self.clone()
        }
    }

    fn render(&mut self, from: usize, to: usize, out: &mut String) {
        let (mut i, mut plain) = (from, from);
        while i < to {
            let b = self.bytes[i];
            if !matches!(
                b,
                b'\\' | b'`' | b'!' | b'[' | b'<' | b'h' | b'H' | b'*' | b'_' | b'~'
            ) {
                i += 1;
                continue;
            }
            escape_into(&self.text[plain..i], out);
            plain = i;
            let end = match b {
                b'\\' => self.escape(i, to, out),
                b'`' => self.code_span(i, to, out),
                b'!' if self.links && self.byte(i + 1) == Some(b'[') => self.link(i + 1, to, out),
                b'[' if self.links => self.link(i, to, out),
                b'<' if self.links => self.autolink(i, to, out),
                b'h' | b'H' if self.links => self.bare_url(i, to, out),
                b'*' | b'_' | b'~' => self.emphasis(i, to, out),
                _ => None,
            };
            match end {
                Some(end) => {
                    i = end;
                    plain = end;
                }
                // An unmatched run is text as a whole: its tail must not open anything.
                None if matches!(b, b'`' | b'*' | b'_' | b'~') => i += self.run(i, b, to),
                None => i += 1,
            }
        }
        escape_into(&self.text[plain..to], out);
    }

    /// `\` before punctuation is that character; before a newline, a hard break.
    fn escape(&mut self, i: usize, to: usize, out: &mut String) -> Option<usize> {
        let next = self.byte(i + 1).filter(|_| i + 1 < to)?;
        if next == b'\n' {
            out.push_str("<br>\n");
        } else if next.is_ascii_punctuation() {
            escape_into(&self.text[i + 1..i + 2], out);
        } else {
            return None;
        }
        Some(i + 2)
    }

    fn code_span(&mut self, i: usize, to: usize, out: &mut String) -> Option<usize> {
        let len = self.run(i, b'`', to);
        let close = self.code_close(i + len, to, len)?;
        let content = &self.text[i + len..close];
        let content = match content.strip_prefix(' ').and_then(|c| c.strip_suffix(' ')) {
            Some(inner) if !inner.trim().is_empty() => inner,
            _ => content,
        };
        out.push_str("<code>");
        escape_into(&content.replace('\n', " "), out);
        out.push_str("</code>");
        Some(close + len)
    }

    /// The start of the backtick run of exactly `len` after `from`.
    fn code_close(&mut self, from: usize, to: usize, len: usize) -> Option<usize> {
        if self
            .no_code_close_after
            .iter()
            .any(|&(l, after)| l == len && from >= after)
        {
            return None;
        }
        let mut j = from;
        while j < to {
            if self.bytes[j] == b'`' {
                let run = self.run(j, b'`', to);
                if run == len {
                    return Some(j);
                }
                j += run;
            } else {
                j += 1;
            }
        }
        self.no_code_close_after.push((len, from));
        None
    }

    /// Skips a code span starting at `j`, for searches that must not look inside one.
    fn skip_code(&mut self, j: usize, to: usize) -> usize {
        let len = self.run(j, b'`', to);
        self.code_close(j + len, to, len)
            .map_or(j + len, |close| close + len)
    }

    /// `[text](url "title")`; an image `![alt](url)` (with its `!` just before `open`) becomes a link too.
    fn link(&mut self, open: usize, to: usize, out: &mut String) -> Option<usize> {
        if self.last_bracket.is_none_or(|last| last < open) {
            return None;
        }
        let limit = to.min(open + MAX_LINK_TEXT);
        let (mut j, mut nesting) = (open + 1, 0usize);
        let close = loop {
            if j >= limit {
                return None;
            }
            match self.bytes[j] {
                b'\\' => j += 2,
                b'`' => j = self.skip_code(j, limit),
                b'[' => {
                    nesting += 1;
                    j += 1;
                }
                b']' if nesting == 0 => break j,
                b']' => {
                    nesting -= 1;
                    j += 1;
                }
                _ => j += 1,
            }
        };
        if self.byte(close + 1) != Some(b'(') {
            return None;
        }
        let (url, end) = self.destination(close + 2, to)?;
        link_open(url, out);
        if self.depth < MAX_DEPTH {
            self.nested(false).render(open + 1, close, out);
        } else {
            escape_into(&self.text[open + 1..close], out);
        }
        out.push_str("</a>");
        Some(end)
    }

    /// A link destination and optional title after `(`: the URL and the position after the `)`.
    fn destination(&self, from: usize, to: usize) -> Option<(&str, usize)> {
        let rest = &self.text[from..to];
        let trimmed = rest.trim_start();
        let offset = from + rest.len() - trimmed.len();
        let (url, after) = if let Some(inner) = trimmed.strip_prefix('<') {
            let end = inner.find(['>', '\n'])?;
            (&inner[..end], offset + end + 2)
        } else {
            let mut parens = 0usize;
            let mut end = trimmed.len();
            for (k, c) in trimmed.char_indices() {
                match c {
                    '(' => parens += 1,
                    ')' if parens > 0 => parens -= 1,
                    ')' => {
                        end = k;
                        break;
                    }
                    c if c.is_whitespace() => {
                        end = k;
                        break;
                    }
                    _ => {}
                }
            }
            (&trimmed[..end], offset + end)
        };
        let tail = &self.text[after..to];
        let tail_trimmed = tail.trim_start();
        let mut close = after + tail.len() - tail_trimmed.len();
        if let Some(quote @ ('"' | '\'')) = tail_trimmed.chars().next() {
            let title_end = tail_trimmed[1..].find(quote)?;
            let after_title = &tail_trimmed[title_end + 2..];
            close += title_end + 2 + after_title.len() - after_title.trim_start().len();
        }
        (close < to && self.byte(close) == Some(b')')).then_some((url, close + 1))
    }

    /// `<https://…>` or `<name@host>`.
    fn autolink(&mut self, i: usize, to: usize, out: &mut String) -> Option<usize> {
        let rest = &self.text[i + 1..to];
        let end = rest.find(|c: char| c == '>' || c == '<' || c.is_whitespace())?;
        if rest.as_bytes()[end] != b'>' {
            return None;
        }
        let target = &rest[..end];
        let href = if target.contains("://") {
            target.to_string()
        } else if target.contains('@') && !target.contains(':') {
            format!("mailto:{target}")
        } else {
            return None;
        };
        link_open(&href, out);
        escape_into(target, out);
        out.push_str("</a>");
        Some(i + end + 2)
    }

    /// A bare `http://` or `https://` URL.
    fn bare_url(&mut self, i: usize, to: usize, out: &mut String) -> Option<usize> {
        let rest = &self.text[i..to];
        let scheme = rest.get(..8)?.to_ascii_lowercase();
        if !(scheme.starts_with("http://") || scheme == "https://")
            || self.char_before(i).is_some_and(char::is_alphanumeric)
        {
            return None;
        }
        let mut end = rest
            .find(|c: char| c.is_whitespace() || c == '<')
            .unwrap_or(rest.len());
        // Trailing punctuation ends the sentence, not the URL; a `)` belongs only if it closes a `(` inside.
        loop {
            let url = &rest[..end];
            match url.chars().next_back() {
                Some('.' | ',' | ':' | ';' | '!' | '?' | '"' | '\'' | '*' | '_' | '~') => end -= 1,
                Some(')') if url.matches(')').count() > url.matches('(').count() => end -= 1,
                _ => break,
            }
        }
        let url = &rest[..end];
        if url.len() <= 8 {
            return None;
        }
        link_open(url, out);
        escape_into(url, out);
        out.push_str("</a>");
        Some(i + end)
    }

    /// `*em*`, `**strong**`, `***both***` (and with `_`), `~~strikethrough~~`.
    fn emphasis(&mut self, i: usize, to: usize, out: &mut String) -> Option<usize> {
        let b = self.bytes[i];
        let len = self.run(i, b, to);
        let kind = DELIMITERS.iter().position(|&d| d == (b, len))?;
        // Opens only before a non-space; `_` not inside a word either, so snake_case stays as it is.
        let next = self.char_at(i + len)?;
        if self.depth >= MAX_DEPTH
            || next.is_whitespace()
            || (b == b'_' && self.char_before(i).is_some_and(char::is_alphanumeric))
        {
            return None;
        }
        let close = self.closer(kind, i + len, to)?;
        let (open_tag, close_tag) = match (b, len) {
            (b'~', _) => ("<del>", "</del>"),
            (_, 1) => ("<em>", "</em>"),
            (_, 2) => ("<strong>", "</strong>"),
            _ => ("<em><strong>", "</strong></em>"),
        };
        out.push_str(open_tag);
        self.nested(true).render(i + len, close, out);
        out.push_str(close_tag);
        Some(close + len)
    }

    /// The closing run of delimiter `kind` after `from`: exactly as long, after a non-space, and for `_` not
    /// followed by a letter or digit. Code spans are skipped.
    fn closer(&mut self, kind: usize, from: usize, to: usize) -> Option<usize> {
        if self.no_closer_after[kind].is_some_and(|after| from >= after) {
            return None;
        }
        let (b, len) = DELIMITERS[kind];
        let mut j = from;
        while j < to {
            match self.bytes[j] {
                b'\\' => j += 2,
                b'`' => j = self.skip_code(j, to),
                x if x == b => {
                    let run = self.run(j, b, to);
                    let closes = run == len
                        && j > from
                        && self.char_before(j).is_some_and(|c| !c.is_whitespace())
                        && !(b == b'_' && self.char_at(j + run).is_some_and(char::is_alphanumeric));
                    if closes {
                        return Some(j);
                    }
                    j += run;
                }
                _ => j += 1,
            }
        }
        self.no_closer_after[kind] = Some(from);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_headings_and_emphasis() {
        assert_eq!(
            render("# Title\n\nSome **bold**, *em*, ***both***, ~~gone~~ and `code`.\nNext line."),
            "<h1>Title</h1>\n<p>Some <strong>bold</strong>, <em>em</em>, <em><strong>both</strong></em>, \
             <del>gone</del> and <code>code</code>.\nNext line.</p>\n"
        );
        assert_eq!(render("Title\n==="), "<h1>Title</h1>\n");
        assert_eq!(render("## Closed ##"), "<h2>Closed</h2>\n");
        assert_eq!(render("a  \nb"), "<p>a<br>\nb</p>\n");
    }

    #[test]
    fn code_blocks_keep_their_text() {
        assert_eq!(
            render("```rust\nfn main() {\n    println!(\"<hi>\");\n}\n```\nafter"),
            "<pre><code class=\"language-rust\">fn main() {\n    println!(&quot;&lt;hi&gt;&quot;);\n}\n\
             </code></pre>\n<p>after</p>\n"
        );
        // Still streaming: the open fence runs to the end.
        assert_eq!(
            render("text\n```\nlet x = 1;"),
            "<p>text</p>\n<pre><code>let x = 1;\n</code></pre>\n"
        );
        assert_eq!(render("``a ` b``"), "<p><code>a ` b</code></p>\n");
    }

    #[test]
    fn snake_case_and_arithmetic_stay_plain() {
        assert_eq!(
            render("call my_var_name and 2 * 3 * 4"),
            "<p>call my_var_name and 2 * 3 * 4</p>\n"
        );
        assert_eq!(
            render("**unclosed and _open"),
            "<p>**unclosed and _open</p>\n"
        );
        assert_eq!(render("\\*not em\\*"), "<p>*not em*</p>\n");
    }

    #[test]
    fn lists_nest_and_stay_tight() {
        assert_eq!(
            render("- one\n- two\n  - inner\n- [x] done\n\n3. three\n4. four"),
            "<ul>\n<li>one</li>\n<li>two\n<ul>\n<li>inner</li>\n</ul></li>\n\
             <li><input type=\"checkbox\" disabled checked> done</li>\n</ul>\n\
             <ol start=\"3\">\n<li>three</li>\n<li>four</li>\n</ol>\n"
        );
        assert_eq!(
            render("1. a\n\n   more\n2. b"),
            "<ol>\n<li><p>a</p>\n<p>more</p></li>\n<li><p>b</p></li>\n</ol>\n"
        );
    }

    #[test]
    fn list_items_end_where_they_should() {
        assert_eq!(
            render("1. a\n2. b\nlazy\n\nafter"),
            "<ol>\n<li>a</li>\n<li>b\nlazy</li>\n</ol>\n<p>after</p>\n"
        );
        assert_eq!(
            render("- a\n* b"),
            "<ul>\n<li>a</li>\n</ul>\n<ul>\n<li>b</li>\n</ul>\n"
        );
        assert_eq!(
            render("Steps:\n- one\n\n  ```sh\n  make\n  ```\n- two"),
            "<p>Steps:</p>\n<ul>\n<li><p>one</p>\n<pre><code class=\"language-sh\">make\n</code></pre></li>\n<li><p>two</p></li>\n</ul>\n"
        );
        assert_eq!(
            render("2024. was a year"),
            "<ol start=\"2024\">\n<li>was a year</li>\n</ol>\n"
        );
        assert_eq!(
            render("text\n2. not a list"),
            "<p>text\n2. not a list</p>\n"
        );
    }

    #[test]
    fn quotes_rules_and_tables() {
        assert_eq!(
            render("> quoted\ncontinued\n\n---"),
            "<blockquote>\n<p>quoted\ncontinued</p>\n</blockquote>\n<hr>\n"
        );
        assert_eq!(
            render("| a | b |\n|:--|--:|\n| 1 | `x\\|y` |\n| 2 |"),
            "<table>\n<thead>\n<tr><th style=\"text-align: left\">a</th><th style=\"text-align: right\">b</th></tr>\n\
             </thead>\n<tbody>\n<tr><td style=\"text-align: left\">1</td><td style=\"text-align: right\"><code>x\\|y</code></td></tr>\n\
             <tr><td style=\"text-align: left\">2</td><td style=\"text-align: right\"></td></tr>\n</tbody>\n</table>\n"
        );
    }

    #[test]
    fn links_open_in_a_new_tab() {
        assert_eq!(
            render("see [the docs](https://example.com/a?b=1&c=2 \"Docs\") or https://x.dev/p."),
            "<p>see <a href=\"https://example.com/a?b=1&amp;c=2\" target=\"_blank\" rel=\"noopener noreferrer\">the docs</a> \
             or <a href=\"https://x.dev/p\" target=\"_blank\" rel=\"noopener noreferrer\">https://x.dev/p</a>.</p>\n"
        );
        assert!(render("[rel](/s/abc)").contains("href=\"/s/abc\""));
        assert!(render("[here](#top)").contains("href=\"#top\""));
        assert!(render("<a@b.c>").contains("href=\"mailto:a@b.c\""));
        assert!(render("[path](docs/a:b.md)").contains("href=\"docs/a:b.md\""));
        assert!(render("(see https://x.dev/a_(b))").contains("href=\"https://x.dev/a_(b)\""));
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        for evil in [
            "<script>alert(1)</script>",
            "hello <script>alert(1)</script> world",
            "<img src=x onerror=alert(1)>",
            "<div>\n<script>alert(1)</script>\n</div>",
            "<iframe src=\"https://evil.example\"></iframe>",
            "- <svg onload=alert(1)>\n> <style>*{}</style>",
            "| <script>x</script> |\n|---|\n| <b onclick=x> |",
            "[<script>](https://a.b)",
            "```\"><script>\nx\n```",
        ] {
            let html = render(evil);
            for tag in [
                "<script", "<img", "<iframe", "<div", "<svg", "<style", "<b ",
            ] {
                assert!(!html.contains(tag), "{evil} → {html}");
            }
        }
        assert_eq!(
            render("<script>alert(1)</script>"),
            "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
        );
    }

    #[test]
    fn html_inside_code_stays_code() {
        let html = render("```html\n<script>x</script>\n```");
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!html.contains("<script"));
        // An info string cannot leave its attribute.
        assert!(render("```\"onmouseover=\"x\n```")
            .starts_with("<pre><code class=\"language-&quot;onmouseover=&quot;x\">"));
    }

    #[test]
    fn dangerous_link_targets_are_dropped() {
        for evil in [
            "[x](javascript:alert(1))",
            "[x](JavaScript:alert(1))",
            "[x](java\tscript:alert(1))",
            "[x](<javascript:alert(1)>)",
            "<javascript:alert(1)>",
            "[x](data:text/html;base64,PHNjcmlwdD4=)",
            "[x](vbscript:msgbox)",
            "[x](\"onclick=alert(1))",
        ] {
            let html = render(evil);
            let hrefs: Vec<&str> = html
                .split("href=\"")
                .skip(1)
                .map(|rest| &rest[..rest.find('"').unwrap()])
                .collect();
            assert!(
                hrefs
                    .iter()
                    .all(|h| h.is_empty() || h.starts_with("&quot;")),
                "{evil} → {html}"
            );
            assert!(
                !html.contains("onclick=alert") || html.contains("&quot;onclick"),
                "{evil} → {html}"
            );
        }
    }

    #[test]
    fn images_become_links() {
        assert_eq!(
            render("![a cat](https://example.com/cat.png)"),
            "<p><a href=\"https://example.com/cat.png\" target=\"_blank\" rel=\"noopener noreferrer\">a cat</a></p>\n"
        );
    }

    #[test]
    fn adversarial_input_stays_fast_and_bounded() {
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
            let html = render(&evil);
            assert!(!html.is_empty());
        }
        assert!(
            started.elapsed().as_secs() < 5,
            "took {:?}",
            started.elapsed()
        );
    }

    /// Random documents built from the pieces markdown and HTML are made of: rendering never panics, and every
    /// tag in the output is one this module writes.
    #[test]
    fn random_documents_only_ever_yield_known_tags() {
        const PIECES: [&str; 34] = [
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
            "\n",
            "\n\n",
            "|",
            "---",
            "> ",
            "- ",
            "1. ",
            "javascript:",
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
        ];
        const TAGS: [&str; 33] = [
            "p>",
            "/p>",
            "h1>",
            "h2>",
            "h3>",
            "h4>",
            "h5>",
            "h6>",
            "/h",
            "em>",
            "/em>",
            "strong>",
            "/strong>",
            "del>",
            "/del>",
            "code>",
            "code class=\"language-",
            "/code>",
            "pre>",
            "/pre>",
            "a href=\"",
            "/a>",
            "ul>",
            "/ul>",
            "ol>",
            "ol start=\"",
            "/ol>",
            "li>",
            "/li>",
            "blockquote>",
            "/blockquote>",
            "hr>",
            "br>",
        ];
        const TABLE_TAGS: [&str; 7] = [
            "table>",
            "/table>",
            "thead>",
            "/thead>",
            "tbody>",
            "/tbody>",
            "input type",
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..3_000 {
            let mut doc = String::new();
            for _ in 0..(seed % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                doc.push_str(PIECES[(seed % PIECES.len() as u64) as usize]);
            }
            let html = render(&doc);
            for (at, _) in html.match_indices('<') {
                let tail = &html[at + 1..];
                let known = TAGS.iter().chain(&TABLE_TAGS).any(|t| tail.starts_with(t))
                    || [
                        "tr>", "/tr>", "th>", "th style", "/th>", "td>", "td style", "/td>",
                    ]
                    .iter()
                    .any(|t| tail.starts_with(t));
                assert!(known, "{doc:?} → {html}");
            }
            for href in html.split("href=\"").skip(1) {
                let value = &href[..href.find('"').unwrap()];
                assert!(
                    !value.to_ascii_lowercase().contains("javascript"),
                    "{doc:?} → {html}"
                );
            }
        }
    }

    #[test]
    fn multibyte_text_is_kept_whole() {
        assert_eq!(
            render("héllo *wörld* — ünïcode_ok 日本語**強調**"),
            "<p>héllo <em>wörld</em> — ünïcode_ok 日本語<strong>強調</strong></p>\n"
        );
    }
}
