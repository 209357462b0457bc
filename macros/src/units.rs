//! The rate and size mini-languages of `#[secure]` (`rate = "5/min per ip burst 10"`,
//! `body_limit = "64KiB"`) and the spelling suggestions their messages share with the
//! attribute grammar.
//!
//! Plain text in, plain values out: this file depends on `std` only, so the fuzz targets in
//! `fuzz/` compile it in directly (`#[path = "../../macros/src/units.rs"]`), a proc-macro
//! crate's items being out of reach of any other crate.

/// Whose budget a limit charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Per {
    User,
    Ip,
    Key,
    Global,
}

pub(crate) struct RateM {
    pub(crate) count: u32,
    pub(crate) period_secs: u64,
    pub(crate) per: Per,
    pub(crate) burst: u32,
    pub(crate) text: String,
}

/// Parse `N/unit`, `N/Kunit`, optionally followed by `per who` and `burst N`.
pub(crate) fn parse_rate(text: &str, public: bool) -> Result<RateM, String> {
    const FORM: &str = "write a rate as \"COUNT/UNIT [per user|ip|key|global] [burst N]\", e.g. \"5/min\", \"100/10s per ip\", \"1000/day burst 50\"";
    let mut words = text.split_whitespace();
    let Some(head) = words.next() else {
        return Err(format!("empty rate: {FORM}"));
    };
    let Some((count, period)) = head.split_once('/') else {
        // "5 per min", "5 min", "5min": say the rate the user most likely meant.
        let rest: Vec<&str> = words
            .filter(|w| *w != "per" && *w != "a" && *w != "every")
            .collect();
        let digits = head.chars().take_while(|c| c.is_ascii_digit()).count();
        let (n, unit) = head.split_at(digits);
        let unit = if unit.is_empty() {
            rest.first().copied().unwrap_or("")
        } else {
            unit
        };
        return Err(if !n.is_empty() && !unit.is_empty() {
            format!("{text:?} is not a rate: write \"{n}/{unit}\" (COUNT/UNIT, with a slash)")
        } else {
            format!("{text:?} has no `/`: {FORM}")
        });
    };
    let count: u32 = match count.parse() {
        Ok(0) => return Err("a rate admits at least 1 request: write \"1/min\" or more".into()),
        Ok(n) => n,
        Err(_) => return Err(format!("{count:?} is not a request count: {FORM}")),
    };
    let digits = period.chars().take_while(|c| c.is_ascii_digit()).count();
    let (mult, unit) = period.split_at(digits);
    let mult: u64 = if mult.is_empty() {
        1
    } else {
        match mult.parse() {
            Ok(0) => {
                return Err(
                    "a rate's period must be at least 1 second: write \"5/1s\" or \"5/min\"".into(),
                );
            }
            Ok(n) => n,
            Err(_) => return Err(format!("{mult:?} is not a period length: {FORM}")),
        }
    };
    const UNITS: &[(&str, u64)] = &[
        ("s", 1),
        ("sec", 1),
        ("secs", 1),
        ("second", 1),
        ("seconds", 1),
        ("m", 60),
        ("min", 60),
        ("mins", 60),
        ("minute", 60),
        ("minutes", 60),
        ("h", 3600),
        ("hour", 3600),
        ("hours", 3600),
        ("d", 86_400),
        ("day", 86_400),
        ("days", 86_400),
    ];
    let Some(secs) = UNITS.iter().find(|(u, _)| *u == unit).map(|(_, s)| *s) else {
        let names: Vec<&str> = UNITS.iter().map(|(u, _)| *u).collect();
        return Err(
            match suggest(
                unit,
                &["s", "min", "h", "day", "sec", "hour", "minute", "second"],
            )
            .filter(|_| !unit.is_empty())
            .or_else(|| suggest(unit, &names))
            {
                Some(s) => format!(
                    "unknown time unit `{unit}` in {text:?}; did you mean `{s}`? (units: s, min, h, day)"
                ),
                None => format!(
                    "unknown time unit `{unit}` in {text:?}: use s, min, h or day, e.g. \"5/min\""
                ),
            },
        );
    };
    let period_secs = mult.checked_mul(secs).ok_or("the period is too long")?;
    if period_secs > 366 * 86_400 {
        return Err("a rate's period is at most one year".into());
    }
    let mut per = if public { Per::Ip } else { Per::User };
    let mut burst = count;
    let mut seen_per = false;
    let mut seen_burst = false;
    while let Some(w) = words.next() {
        match w {
            "per" => {
                if seen_per {
                    return Err("`per` appears twice in the rate".into());
                }
                seen_per = true;
                per = match words.next() {
                    Some("user") => Per::User,
                    Some("ip") => Per::Ip,
                    Some("key") => Per::Key,
                    Some("global") => Per::Global,
                    Some(other) => {
                        return Err(match suggest(other, &["user", "ip", "key", "global"]) {
                            Some(s) => format!("`per {other}`: did you mean `per {s}`?"),
                            None => format!(
                                "`per {other}`: charge a rate `per user`, `per ip`, `per key` or `global`"
                            ),
                        });
                    }
                    None => {
                        return Err("`per` needs whom to charge: `per user`, `per ip`, `per key` or `global`".into());
                    }
                };
            }
            "global" => {
                if seen_per {
                    return Err("`per` appears twice in the rate".into());
                }
                seen_per = true;
                per = Per::Global;
            }
            "burst" => {
                if seen_burst {
                    return Err("`burst` appears twice in the rate".into());
                }
                seen_burst = true;
                burst = match words.next().map(str::parse::<u32>) {
                    Some(Ok(0)) => {
                        return Err("`burst 0` admits nothing: burst is at least 1".into());
                    }
                    Some(Ok(n)) => n,
                    _ => return Err("`burst` takes a number: \"5/min burst 10\"".into()),
                };
            }
            other => {
                return Err(match suggest(other, &["per", "burst", "global"]) {
                    Some(s) => {
                        format!("unexpected `{other}` in the rate; did you mean `{s}`? {FORM}")
                    }
                    None => format!("unexpected `{other}` in the rate: {FORM}"),
                });
            }
        }
    }
    if public && matches!(per, Per::User | Per::Key) {
        return Err(format!(
            "a `public` route has no authenticated caller to charge `per {}`: use `per ip` or `global`",
            if per == Per::User { "user" } else { "key" }
        ));
    }
    Ok(RateM {
        count,
        period_secs,
        per,
        burst,
        text: text.split_whitespace().collect::<Vec<_>>().join(" "),
    })
}

/// Parse a byte size: `64KiB`, `1 MiB`, `512B`, `10KB`.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    const FORM: &str = "write a size as a number and a unit: \"64KiB\", \"1MiB\", \"512B\"";
    let t = text.trim();
    let digits = t.chars().take_while(|c| c.is_ascii_digit()).count();
    let (num, unit) = t.split_at(digits);
    let unit = unit.trim();
    if num.is_empty() {
        return Err(format!("{text:?} does not start with a number: {FORM}"));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{num:?} is too large: {FORM}"))?;
    let mult: u64 = match unit {
        "B" | "" => 1,
        "KB" | "kB" => 1000,
        "KiB" => 1024,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        other => {
            let units = ["B", "KB", "KiB", "MB", "MiB", "GB", "GiB"];
            return Err(match units.iter().find(|u| u.eq_ignore_ascii_case(other)) {
                Some(u) => format!("write the unit as `{u}`, not `{other}`"),
                None => format!("unknown size unit `{other}`: {FORM}"),
            });
        }
    };
    let bytes = n
        .checked_mul(mult)
        .ok_or_else(|| "the size is too large".to_string())?;
    if bytes == 0 {
        return Err(
            "a body limit of 0 refuses every body: give at least 1 byte, e.g. \"1KiB\"".into(),
        );
    }
    if bytes > 1 << 30 {
        return Err(
            "a body limit above 1GiB is not supported: stream large uploads instead".into(),
        );
    }
    Ok(bytes)
}

/// The closest candidate: within one edit (a swap of two neighbours counts as one) for
/// short words, two for words of six letters or more; or one that starts with `word` (3+).
pub(crate) fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let max = if word.chars().count() >= 6 { 2 } else { 1 };
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|(d, c)| *d <= max || (word.len() >= 3 && c.starts_with(word)))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: Levenshtein plus transposition of neighbours.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}
