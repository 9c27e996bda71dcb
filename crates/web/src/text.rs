//! Text that can be long, shaped for narrow columns: addresses that wrap
//! only after `@` and `.` (never "alice@example.co/m"), and reasons cut to an
//! excerpt in tables with the full text a click away.

use std::fmt;

use jit_domain::ResourceName;

/// A resource's name on a page, written as is: its characters (`a-z`,
/// `0-9`, `-`, `_`: [`ResourceName`]) need no escaping, and the pages write
/// it in every id and form of a resource (some twenty times on the index
/// page), each escaped until then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slug(pub ResourceName);

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// Copied into the page without `fmt`'s machinery (see [`Escaped`]).
impl askama::FastWritable for Slug {
    fn write_into(&self, dest: &mut dyn fmt::Write, _: &dyn askama::Values) -> askama::Result<()> {
        Ok(dest.write_str(self.0.as_str())?)
    }
}

/// [`ResourceName`]'s characters are all safe in HTML text and attributes.
impl askama::filters::HtmlSafe for Slug {}

/// Text escaped for HTML once, when it is made, and written as it is after:
/// what every page shows alike (a resource's title and description, the
/// assets' addresses) went through askama's escaper on every page, a fifth
/// of drawing the index page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Escaped(Box<str>);

impl Escaped {
    pub(crate) fn new(text: &str) -> Self {
        let Ok(escaped) = askama::filters::escape(text, askama::filters::Html);
        Self(escaped.to_string().into())
    }
}

impl fmt::Display for Escaped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Copied into the page as it is. askama writes a value that is only
/// `Display` through `write!`, which cost each of them about 150
/// instructions of `fmt`'s machinery (callgrind): the index page writes
/// eight of these.
impl askama::FastWritable for Escaped {
    fn write_into(&self, dest: &mut dyn fmt::Write, _: &dyn askama::Values) -> askama::Result<()> {
        Ok(dest.write_str(&self.0)?)
    }
}

/// Escaped when made.
impl askama::filters::HtmlSafe for Escaped {}

/// An address (or any label that may hold one) that wraps at sensible
/// points: escaped for HTML first, then a `<wbr>` after each `@` and `.`.
/// Shown with `|safe`, since it is markup already.
///
/// Owns its text or borrows it (the signed-in address each page shows is
/// borrowed from the caller: a copy was an allocation on every page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Breakable<T = String>(pub T);

impl<T: AsRef<str>> Breakable<T> {
    fn write(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        let text = self.0.as_ref();
        // Compared as bytes: a search for any of several `char`s decodes
        // the text a character at a time (for an 18-character address, 280
        // more of the index page's instructions, callgrind).
        if !text
            .bytes()
            .any(|b| matches!(b, b'<' | b'>' | b'&' | b'"' | b'\''))
        {
            // Nothing the escaper would change (most addresses): the breaks
            // put in with one pass over the bytes. Both marks are ASCII, so
            // each ends a character.
            let mut start = 0;
            for (at, b) in text.bytes().enumerate() {
                if matches!(b, b'@' | b'.') {
                    out.write_str(&text[start..=at])?;
                    out.write_str("<wbr>")?;
                    start = at + 1;
                }
            }
            return out.write_str(&text[start..]);
        }
        for piece in text.split_inclusive(['@', '.']) {
            // askama's own escaper, as for any other value on the pages.
            let escaped =
                askama::filters::escape(piece, askama::filters::Html).map_err(|_| fmt::Error)?;
            write!(out, "{escaped}")?;
            if piece.ends_with(['@', '.']) {
                out.write_str("<wbr>")?;
            }
        }
        Ok(())
    }
}

impl<T: AsRef<str>> fmt::Display for Breakable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f)
    }
}

/// Written into the page without `fmt`'s machinery (see [`Escaped`]).
impl<T: AsRef<str>> askama::FastWritable for Breakable<T> {
    fn write_into(&self, dest: &mut dyn fmt::Write, _: &dyn askama::Values) -> askama::Result<()> {
        Ok(self.write(dest)?)
    }
}

/// Every character of it is escaped or a `<wbr>` the type adds.
impl<T: AsRef<str>> askama::filters::HtmlSafe for Breakable<T> {}

/// A free text (a reason) as a table shows it: whole when short, else the
/// first words up to [`Excerpt::MAX`] characters, with the full text kept
/// for a `<details>` under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Excerpt {
    pub full: String,
    /// `Some` when the text was cut: its beginning, ending where a word ends.
    pub short: Option<String>,
}

impl Excerpt {
    /// About two lines of a table cell.
    pub const MAX: usize = 120;

    pub fn of(full: &str) -> Excerpt {
        let short = (full.chars().count() > Self::MAX).then(|| {
            let end = full
                .char_indices()
                .nth(Self::MAX)
                .map_or(full.len(), |(i, _)| i);
            let head = &full[..end];
            // Cut at the last space when there is one in the second half, so
            // a word is not split; a long unbroken token is cut where it is.
            let head = match head.rfind(char::is_whitespace) {
                Some(space) if space > end / 2 => &head[..space],
                _ => head,
            };
            head.trim_end().to_owned()
        });
        Excerpt {
            full: full.to_owned(),
            short,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// A resource's name is written unescaped because escaping could not
        /// change it: every text that parses as a name escapes to itself.
        #[test]
        fn a_slug_is_what_escaping_it_gives(raw in "[a-z0-9_<>&\"' -]{1,64}") {
            if let Ok(name) = ResourceName::parse(&raw) {
                let escaped = askama::filters::escape(name.as_str(), askama::filters::Html)
                    .unwrap()
                    .to_string();
                prop_assert_eq!(Slug(name).to_string(), escaped);
            }
        }
    }

    #[derive(askama::Template)]
    #[template(source = "<h2 title=\"{{ t }}\">{{ t }}</h2>", ext = "html")]
    struct Raw<'a> {
        t: &'a str,
    }

    #[derive(askama::Template)]
    #[template(source = "<h2 title=\"{{ t }}\">{{ t }}</h2>", ext = "html")]
    struct Pre<'a> {
        t: &'a Escaped,
    }

    proptest! {
        /// Escaped once when made, a text is drawn exactly as the page drew
        /// it raw: neither left unescaped nor escaped twice.
        #[test]
        fn an_escaped_text_is_drawn_as_its_raw_text_was(t in "[a-z<>&\"' ;#0-9]{0,40}") {
            use askama::Template;
            let pre = Escaped::new(&t);
            prop_assert_eq!(Pre { t: &pre }.render().unwrap(), Raw { t: &t }.render().unwrap());
        }
    }

    #[test]
    fn a_slug_is_written_as_is() {
        let name = ResourceName::parse("prod-db_2").unwrap();
        assert_eq!(Slug(name).to_string(), "prod-db_2");
    }

    /// What a browser shows for the markup: `<wbr>` gone, entities decoded.
    fn shown(markup: &str) -> String {
        markup
            .replace("<wbr>", "")
            .replace("&#60;", "<")
            .replace("&#62;", ">")
            .replace("&#34;", "\"")
            .replace("&#39;", "'")
            .replace("&#38;", "&")
    }

    #[test]
    fn addresses_break_after_at_and_dots_only() {
        let b = Breakable("alice.smith@example.com").to_string();
        assert_eq!(b, "alice.<wbr>smith@<wbr>example.<wbr>com");
        let b = Breakable("a<b>&\"'@x.y").to_string();
        assert_eq!(b, "a&#60;b&#62;&#38;&#34;&#39;@<wbr>x.<wbr>y");
    }

    #[test]
    fn short_texts_stay_whole_and_long_ones_end_on_a_word() {
        assert_eq!(Excerpt::of("ticket 42").short, None);
        let long = "word ".repeat(100);
        let e = Excerpt::of(&long);
        let short = e.short.unwrap();
        assert!(
            short.len() <= Excerpt::MAX && short.ends_with("word"),
            "{short}"
        );
        assert_eq!(e.full, long);
        let token = "x".repeat(500);
        assert_eq!(
            Excerpt::of(&token).short.unwrap().chars().count(),
            Excerpt::MAX
        );
    }

    proptest! {
        #[test]
        fn breakable_markup_escapes_everything_and_shows_the_text(s in any::<String>()) {
            let markup = Breakable(s.clone()).to_string();
            prop_assert_eq!(shown(&markup), s.as_str());
            let tags = markup.replace("<wbr>", "");
            prop_assert!(!tags.contains(['<', '>', '"', '\'']), "{}", markup);
            // Pieces with nothing to escape skip the escaper: the same text.
            let escaped = askama::filters::escape(&s, askama::filters::Html).unwrap().to_string();
            prop_assert_eq!(tags, escaped);
        }

        /// Addresses and what looks like them, with and without characters
        /// to escape: a break after each `@` and `.` and nowhere else, and a
        /// page draws (askama's fast path) what `Display` writes.
        #[test]
        fn breakable_breaks_after_each_at_and_dot_alone(s in "[a-z@.<&\"é]{0,24}") {
            use askama::Template;
            #[derive(askama::Template)]
            #[template(source = "<p>{{ b|safe }}</p>", ext = "html")]
            struct Page<'a> {
                b: &'a Breakable,
            }
            let b = Breakable(s.clone());
            let markup = b.to_string();
            prop_assert_eq!(shown(&markup), s.as_str());
            let marks = s.matches(['@', '.']).count();
            prop_assert_eq!(markup.matches("<wbr>").count(), marks);
            prop_assert_eq!(markup.matches("@<wbr>").count() + markup.matches(".<wbr>").count(), marks);
            prop_assert_eq!(Page { b: &b }.render().unwrap(), format!("<p>{markup}</p>"));
        }

        #[test]
        fn an_excerpt_is_a_prefix_within_bounds(s in any::<String>()) {
            let e = Excerpt::of(&s);
            match e.short {
                None => prop_assert!(s.chars().count() <= Excerpt::MAX),
                Some(short) => {
                    prop_assert!(s.starts_with(&short));
                    prop_assert!(short.chars().count() <= Excerpt::MAX);
                }
            }
        }
    }
}
