//! A picture of who held access when: for each resource a heading and a
//! row per person, a bar per grant, a band over the moments when more than
//! one grant of that resource was in force, and a time axis with dates. Server-rendered SVG with no script and no styles
//! (the page's CSP allows neither inline), so it works as a file, in an
//! `<img>` and inline.

use std::collections::BTreeMap;
use std::fmt::Write;

use time::macros::format_description;
use time::{Duration, OffsetDateTime, UtcOffset};

/// One grant as drawn: a bar in its row from `start` to `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Window {
    /// The rows it belongs with: what was held.
    pub group: String,
    /// The row: who held it.
    pub row: String,
    pub start: OffsetDateTime,
    /// When it ended, or when it is due to end if it is still in force.
    pub end: OffsetDateTime,
    pub outcome: Outcome,
    /// The bar's tooltip: the details in words.
    pub label: String,
}

/// How a grant ended, which picks its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Still in force.
    Active,
    Expired,
    /// Ended early by an approver or an edit in Zero.
    Revoked,
    /// Ended early by its holder.
    GaveBack,
}

impl Outcome {
    const ALL: [Outcome; 4] = [
        Outcome::Active,
        Outcome::Expired,
        Outcome::Revoked,
        Outcome::GaveBack,
    ];

    /// Colours with at least 3:1 contrast on white and on a dark page.
    fn fill(self) -> &'static str {
        match self {
            Outcome::Active => "#16a34a",
            Outcome::Expired => "#3b82f6",
            Outcome::Revoked => "#ea580c",
            Outcome::GaveBack => "#8b8fa3",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Outcome::Active => "in force",
            Outcome::Expired => "expired",
            Outcome::Revoked => "revoked",
            Outcome::GaveBack => "given back",
        }
    }
}

/// Where the picture goes: a file of its own gets a white background and
/// a fixed size; inline, it takes the page's text colour and width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    File,
    Inline,
}

const WIDTH: i64 = 960;
/// Room for row labels on the left.
const GUTTER: i64 = 230;
const RIGHT: i64 = 40;
const TOP: i64 = 44;
const ROW: i64 = 22;
const BAR: i64 = 14;
const AXIS: i64 = 44;
/// Characters of a row label before it is cut (the full text is its tooltip).
const LABEL_CHARS: usize = 30;
/// Most steps between ticks on the axis (so one more tick at most).
const MAX_TICKS: i64 = 8;

/// The timeline of `windows` over `[from, to)`, with a line at `now` when
/// it falls inside. Bars are clipped to the range; a row holding grants
/// that overlap each other gets a sub-row per overlapping grant.
pub(crate) fn svg(
    windows: &[Window],
    from: OffsetDateTime,
    to: OffsetDateTime,
    now: OffsetDateTime,
    placement: Placement,
) -> String {
    let title = format!("Who held access from {} to {}", stamp(from), stamp(to));
    let visible: Vec<&Window> = windows
        .iter()
        .filter(|w| w.start < to && w.end > from && w.end > w.start)
        .collect();
    let lines = lines(&visible);
    let rows = i64::try_from(lines.len()).unwrap_or(i64::MAX).max(1);
    let height = TOP + rows * ROW + AXIS;
    let mut out = String::new();
    let size = match placement {
        Placement::File => format!(r#"width="{WIDTH}" height="{height}""#),
        Placement::Inline => r#"width="100%""#.to_owned(),
    };
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" {size} role="img" aria-labelledby="timeline-title timeline-desc" font-family="system-ui, sans-serif" font-size="12">"#
    );
    let _ = write!(
        out,
        r#"<title id="timeline-title">{}</title><desc id="timeline-desc">{}</desc>"#,
        escape(&title),
        escape(&describe(&visible))
    );
    let text = match placement {
        Placement::File => {
            let _ = write!(
                out,
                r##"<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>"##
            );
            "#1f2937"
        }
        Placement::Inline => "currentColor",
    };
    let _ = write!(out, r#"<g fill="{text}">"#);
    legend(&mut out);
    if from >= to {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}">The period is empty: its end is not after its start.</text></g></svg>"#,
            GUTTER,
            TOP + ROW / 2 + 4
        );
        return out;
    }
    let scale = Scale { from, to };
    axis(&mut out, scale, TOP + rows * ROW, text);
    if lines.is_empty() {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}">No access was held in this period.</text>"#,
            GUTTER + 8,
            TOP + ROW / 2 + 4
        );
    }
    let y_of = |i: usize| TOP + i64::try_from(i).unwrap_or(0) * ROW;
    for (i, line) in lines.iter().enumerate() {
        let Line::Heading(group) = line else { continue };
        // The group's rows run to the next heading.
        let last = lines[i + 1..]
            .iter()
            .position(|l| matches!(l, Line::Heading(_)))
            .map_or(lines.len(), |n| i + 1 + n);
        let of_group: Vec<&Window> = visible
            .iter()
            .copied()
            .filter(|w| w.group == *group)
            .collect();
        overlaps(&mut out, scale, &of_group, y_of(i + 1), y_of(last));
    }
    for (i, line) in lines.iter().enumerate() {
        let y = y_of(i);
        match line {
            Line::Heading(group) => {
                let _ = write!(
                    out,
                    r#"<text x="8" y="{}" font-weight="bold"><title>{}</title>{}</text>"#,
                    y + ROW / 2 + 4,
                    escape(group),
                    escape(&cut(group, LABEL_CHARS))
                );
            }
            Line::Lane(lane) => {
                if lane.first {
                    let _ = write!(
                        out,
                        r#"<text x="{}" y="{}" text-anchor="end"><title>{}</title>{}</text>"#,
                        GUTTER - 8,
                        y + ROW / 2 + 4,
                        escape(lane.row),
                        escape(&cut(lane.row, LABEL_CHARS - 2))
                    );
                }
                for w in &lane.windows {
                    let (x1, x2) = (scale.x(w.start), scale.x(w.end));
                    let _ = write!(
                        out,
                        r#"<rect x="{x1}" y="{}" width="{}" height="{BAR}" rx="2" fill="{}"><title>{}</title></rect>"#,
                        y + (ROW - BAR) / 2,
                        (x2 - x1).max(2),
                        w.outcome.fill(),
                        escape(&w.label)
                    );
                }
            }
        }
    }
    if from <= now && now < to {
        let x = scale.x(now);
        let _ = write!(
            out,
            r#"<line x1="{x}" y1="{TOP}" x2="{x}" y2="{}" stroke="{text}" stroke-dasharray="3 3"><title>now, {}</title></line>"#,
            TOP + rows * ROW,
            escape(&stamp(now))
        );
    }
    out.push_str("</g></svg>");
    out
}

/// Maps instants in `[from, to)` onto the plot's width.
#[derive(Debug, Clone, Copy)]
struct Scale {
    from: OffsetDateTime,
    to: OffsetDateTime,
}

impl Scale {
    fn x(self, t: OffsetDateTime) -> i64 {
        let t = t.clamp(self.from, self.to);
        let span = (self.to - self.from).whole_milliseconds().max(1);
        let offset = (t - self.from).whole_milliseconds();
        let plot = i128::from(WIDTH - GUTTER - RIGHT);
        GUTTER + i64::try_from(offset * plot / span).unwrap_or(0)
    }
}

/// One line of the picture, top to bottom.
#[derive(Debug)]
enum Line<'a> {
    /// A resource, above its people.
    Heading(&'a str),
    Lane(Lane<'a>),
}

/// One row of bars; `first` marks the first row of a person, which
/// carries the label.
#[derive(Debug)]
struct Lane<'a> {
    row: &'a str,
    first: bool,
    windows: Vec<&'a Window>,
}

/// Groups by name, each with a heading and its people's rows by name;
/// grants of one row that overlap each other go to sub-rows, each taking
/// the first one free.
fn lines<'a>(windows: &[&'a Window]) -> Vec<Line<'a>> {
    let mut by_row: BTreeMap<(&'a str, &'a str), Vec<&'a Window>> = BTreeMap::new();
    for w in windows {
        by_row.entry((&w.group, &w.row)).or_default().push(w);
    }
    let mut lines = Vec::new();
    let mut group = None;
    for ((g, row), mut ws) in by_row {
        if group != Some(g) {
            lines.push(Line::Heading(g));
            group = Some(g);
        }
        ws.sort_by_key(|w| (w.start, w.end));
        let mut subs: Vec<Lane<'a>> = Vec::new();
        for w in ws {
            let free = subs
                .iter_mut()
                .find(|l| l.windows.last().is_none_or(|last| last.end <= w.start));
            match free {
                Some(lane) => lane.windows.push(w),
                None => subs.push(Lane {
                    row,
                    first: subs.is_empty(),
                    windows: vec![w],
                }),
            }
        }
        lines.extend(subs.into_iter().map(Line::Lane));
    }
    lines
}

/// Shades every stretch of time when two or more of `windows` (one
/// group's) were in force, from `top` to `bottom`, so overlaps stand out
/// whichever rows they are in.
fn overlaps(out: &mut String, scale: Scale, windows: &[&Window], top: i64, bottom: i64) {
    let mut edges: Vec<(OffsetDateTime, i32)> = windows
        .iter()
        .flat_map(|w| [(w.start.max(scale.from), 1), (w.end.min(scale.to), -1)])
        .collect();
    // Ends before starts at the same instant: touching is not overlapping.
    edges.sort();
    let mut held = 0;
    let mut since = None;
    for (t, delta) in edges {
        held += delta;
        match (held >= 2, since) {
            (true, None) => since = Some((t, held)),
            (true, Some((start, most))) => since = Some((start, most.max(held))),
            (false, Some((start, most))) => {
                let (x1, x2) = (scale.x(start), scale.x(t));
                let _ = write!(
                    out,
                    r##"<rect class="overlap" x="{x1}" y="{}" width="{}" height="{}" fill="#f59e0b" fill-opacity="0.18"><title>{} grants in force at once, {} to {}</title></rect>"##,
                    top,
                    (x2 - x1).max(1),
                    bottom - top,
                    most,
                    escape(&stamp(start)),
                    escape(&stamp(t))
                );
                since = None;
            }
            (false, None) => {}
        }
    }
}

/// The colour key across the top.
fn legend(out: &mut String) {
    let mut x = GUTTER;
    for o in Outcome::ALL {
        let _ = write!(
            out,
            r#"<rect x="{x}" y="10" width="12" height="12" rx="2" fill="{}"/><text x="{}" y="20">{}</text>"#,
            o.fill(),
            x + 16,
            o.word()
        );
        x += 110;
    }
    let _ = write!(
        out,
        r##"<rect x="{x}" y="10" width="12" height="12" fill="#f59e0b" fill-opacity="0.35"/><text x="{}" y="20">overlap</text>"##,
        x + 16
    );
}

/// The time axis along the bottom: a line and ticks at round instants,
/// each labelled with its date (and time, when ticks are under a day apart).
fn axis(out: &mut String, scale: Scale, y: i64, stroke: &str) {
    let _ = write!(
        out,
        r#"<line x1="{GUTTER}" y1="{y}" x2="{}" y2="{y}" stroke="{stroke}"/>"#,
        WIDTH - RIGHT
    );
    let step = tick_step(scale.to - scale.from);
    for t in ticks(scale.from, scale.to, step) {
        let x = scale.x(t);
        let date = t
            .format(format_description!("[year]-[month]-[day]"))
            .unwrap_or_default();
        let _ = write!(
            out,
            r#"<line x1="{x}" y1="{y}" x2="{x}" y2="{}" stroke="{stroke}"/>"#,
            y + 5
        );
        if step < Duration::DAY {
            let clock = t
                .format(format_description!("[hour]:[minute]"))
                .unwrap_or_default();
            let _ = write!(
                out,
                r#"<text x="{x}" y="{}" text-anchor="middle">{clock}</text><text x="{x}" y="{}" text-anchor="middle">{date}</text>"#,
                y + 18,
                y + 32
            );
        } else {
            let _ = write!(
                out,
                r#"<text x="{x}" y="{}" text-anchor="middle">{date}</text>"#,
                y + 18
            );
        }
    }
}

/// The smallest round step that cuts `span` into at most [`MAX_TICKS`] steps.
fn tick_step(span: Duration) -> Duration {
    const STEPS: [Duration; 14] = [
        Duration::minutes(5),
        Duration::minutes(10),
        Duration::minutes(15),
        Duration::minutes(30),
        Duration::HOUR,
        Duration::hours(2),
        Duration::hours(3),
        Duration::hours(6),
        Duration::hours(12),
        Duration::DAY,
        Duration::days(2),
        Duration::WEEK,
        Duration::weeks(2),
        Duration::days(28),
    ];
    STEPS
        .into_iter()
        .find(|s| span.whole_seconds() / s.whole_seconds() <= MAX_TICKS)
        .unwrap_or_else(|| {
            // Years: whole multiples of 28 days.
            Duration::days(28 * (span.whole_days() / (28 * MAX_TICKS) + 1))
        })
}

/// The multiples of `step` since the epoch (UTC) within `[from, to]`.
fn ticks(from: OffsetDateTime, to: OffsetDateTime, step: Duration) -> Vec<OffsetDateTime> {
    let step_s = step.whole_seconds().max(1);
    let first = from.unix_timestamp().div_euclid(step_s) * step_s;
    let first = if first < from.unix_timestamp() {
        first + step_s
    } else {
        first
    };
    (0..=MAX_TICKS)
        .map(|i| first + i * step_s)
        .filter_map(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .take_while(|t| *t <= to)
        .collect()
}

/// The picture in one sentence, for screen readers.
fn describe(windows: &[&Window]) -> String {
    let people: std::collections::BTreeSet<&str> = windows.iter().map(|w| w.row.as_str()).collect();
    match windows.len() {
        0 => "No access was held in this period.".to_owned(),
        n => format!(
            "{n} grant{} held by {} {}; each bar's tooltip gives its details, and the list of events gives them all.",
            if n == 1 { "" } else { "s" },
            people.len(),
            if people.len() == 1 {
                "person"
            } else {
                "people"
            }
        ),
    }
}

/// "2026-11-30 14:05 UTC".
fn stamp(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_else(|_| t.to_string())
}

/// `s` cut to `max` characters, with an ellipsis when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut short: String = s.chars().take(max - 1).collect();
        short.push('…');
        short
    }
}

/// Text for SVG (XML) content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Not allowed in XML 1.0 at all.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const T0: OffsetDateTime = datetime!(2026-11-30 00:00 UTC);

    fn window(row: &str, start_h: i64, end_h: i64, outcome: Outcome) -> Window {
        Window {
            group: "prod-db".to_owned(),
            row: row.to_owned(),
            start: T0 + Duration::hours(start_h),
            end: T0 + Duration::hours(end_h),
            outcome,
            label: format!("{row} {start_h}-{end_h}"),
        }
    }

    fn day(windows: &[Window]) -> String {
        svg(
            windows,
            T0,
            T0 + Duration::DAY,
            T0 + Duration::hours(30),
            Placement::File,
        )
    }

    /// The `(x, width)` of every bar whose tooltip is `label`.
    fn bar(svg: &str, label: &str) -> (i64, i64, i64) {
        let end = svg
            .find(&format!("<title>{label}</title></rect>"))
            .unwrap_or_else(|| panic!("no bar {label}: {svg}"));
        let start = svg[..end].rfind("<rect ").unwrap();
        let attr = |name: &str| -> i64 {
            let s = &svg[start..end];
            let at = s.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
            s[at..at + s[at..].find('"').unwrap()].parse().unwrap()
        };
        (attr("x"), attr("y"), attr("width"))
    }

    #[test]
    fn text_is_escaped_everywhere() {
        let mut w = window(r#"<script>"&'@x.test"#, 1, 2, Outcome::Expired);
        w.label = "a </title><script>alert(1)</script>".into();
        let s = day(&[w]);
        assert!(!s.contains("<script"), "{s}");
        assert!(s.contains("&lt;script&gt;&quot;&amp;&#39;@x.test"), "{s}");
        assert!(s.contains("a &lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert_eq!(escape("a\u{1}b"), "a\u{fffd}b");
    }

    #[test]
    fn bars_sit_on_the_time_scale_and_are_clipped_to_the_range() {
        let s = day(&[
            window("alice@x.test", 6, 12, Outcome::Expired),
            window("bob@x.test", -3, 30, Outcome::Active),
        ]);
        let plot = WIDTH - GUTTER - RIGHT;
        let (x, _, w) = bar(&s, "alice@x.test 6-12");
        assert_eq!((x, w), (GUTTER + plot / 4, plot / 2 - plot / 4));
        let (x, _, w) = bar(&s, "bob@x.test -3-30");
        assert_eq!((x, w), (GUTTER, plot));
        assert!(s.contains(Outcome::Active.fill()) && s.contains(Outcome::Expired.fill()));
        assert!(s.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg""#));
        assert!(s.ends_with("</svg>"));
    }

    #[test]
    fn overlaps_are_shaded_and_overlapping_grants_of_one_row_get_sub_rows() {
        let s = day(&[
            window("alice@x.test", 2, 8, Outcome::Expired),
            window("bob@x.test", 6, 10, Outcome::Revoked),
            // Touching is not overlapping.
            window("carol@x.test", 10, 12, Outcome::GaveBack),
        ]);
        let (_, ya, _) = bar(&s, "alice@x.test 2-8");
        let (_, yb, _) = bar(&s, "bob@x.test 6-10");
        assert_ne!(ya, yb, "each person has a row");
        assert_eq!(s.matches(r#"class="overlap""#).count(), 1, "{s}");
        assert!(
            s.contains("2 grants in force at once, 2026-11-30 06:00 UTC to 2026-11-30 08:00 UTC"),
            "{s}"
        );

        // Grants of different resources at once are not an overlap.
        let mut other = window("bob@x.test", 6, 10, Outcome::Revoked);
        other.group = "default".to_owned();
        let s = day(&[window("alice@x.test", 2, 8, Outcome::Expired), other]);
        assert!(!s.contains(r#"class="overlap""#), "{s}");
        let (default, prod) = (
            s.find(r#"font-weight="bold"><title>default</title>"#)
                .unwrap(),
            s.find(r#"font-weight="bold"><title>prod-db</title>"#)
                .unwrap(),
        );
        assert!(default < prod, "headings in order");
        let (_, ya, _) = bar(&s, "alice@x.test 2-8");
        let (_, yb, _) = bar(&s, "bob@x.test 6-10");
        assert!(yb < ya, "bob is under `default`, above `prod-db`");

        // One person holding two grants at once (the console can do that).
        let s = day(&[
            window("dan@x.test", 1, 5, Outcome::Expired),
            window("dan@x.test", 3, 7, Outcome::Expired),
            window("dan@x.test", 5, 6, Outcome::Expired),
        ]);
        let (_, y1, _) = bar(&s, "dan@x.test 1-5");
        let (_, y2, _) = bar(&s, "dan@x.test 3-7");
        let (_, y3, _) = bar(&s, "dan@x.test 5-6");
        assert_ne!(y1, y2);
        assert_eq!(y1, y3, "the first row is free again at 5");
        assert_eq!(s.matches(">dan@x.test</text>").count(), 1, "one label");
    }

    #[test]
    fn the_axis_has_dates_and_round_ticks() {
        let s = day(&[]);
        for tick in ["00:00", "03:00", "21:00"] {
            assert!(s.contains(&format!(">{tick}</text>")), "{tick}: {s}");
        }
        assert!(s.contains(">2026-11-30</text>"));
        assert!(
            s.contains(">2026-12-01</text>"),
            "the range's end is a tick"
        );

        let week = svg(
            &[],
            T0 + Duration::hours(5),
            T0 + Duration::days(7),
            T0,
            Placement::File,
        );
        assert!(!week.contains(">2026-11-30</text>"), "before the start");
        for date in ["2026-12-01", "2026-12-04", "2026-12-07"] {
            assert!(week.contains(&format!(">{date}</text>")), "{date}: {week}");
        }
        assert!(!week.contains(":00</text>"), "no times on a week");
        assert_eq!(tick_step(Duration::minutes(20)), Duration::minutes(5));
        assert_eq!(tick_step(Duration::days(365)), Duration::days(56));
    }

    #[test]
    fn empty_ranges_and_periods_say_so() {
        let s = day(&[window("alice@x.test", 30, 40, Outcome::Expired)]);
        assert!(s.contains("No access was held in this period."), "{s}");
        assert!(!s.contains("alice"), "outside the range");
        let s = svg(&[], T0, T0, T0, Placement::File);
        assert!(s.contains("The period is empty"), "{s}");
        assert!(s.ends_with("</svg>"));
    }

    #[test]
    fn now_is_marked_inside_the_range_and_placement_sets_the_size() {
        let s = svg(
            &[],
            T0,
            T0 + Duration::DAY,
            T0 + Duration::hours(12),
            Placement::Inline,
        );
        assert!(
            s.contains("<title>now, 2026-11-30 12:00 UTC</title>"),
            "{s}"
        );
        assert!(s.contains(r#"width="100%""#) && s.contains("currentColor"));
        assert!(!day(&[]).contains("<title>now"));
        assert!(day(&[]).contains(r##"fill="#ffffff""##));
    }

    #[test]
    fn long_row_labels_are_cut_with_the_full_text_as_tooltip() {
        let long = format!("{}@example.com", "a".repeat(40));
        let s = day(&[window(&long, 1, 2, Outcome::Expired)]);
        assert!(s.contains(&format!("<title>{long}</title>")));
        assert!(s.contains(&format!(">{}…</text>", &long[..27])), "{s}");
    }
}
