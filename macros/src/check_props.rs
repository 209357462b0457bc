//! Property tests of the rate and size mini-languages: whatever a user writes in the
//! attribute, the parser answers (never panics), and what it accepts means what it says.

use proptest::prelude::*;

use super::{Per, parse_rate, parse_size};

const UNITS: &[(&str, u64)] = &[
    ("s", 1),
    ("sec", 1),
    ("seconds", 1),
    ("min", 60),
    ("m", 60),
    ("minutes", 60),
    ("h", 3600),
    ("hour", 3600),
    ("d", 86_400),
    ("day", 86_400),
];

const PERS: &[(&str, Per)] = &[
    ("per user", Per::User),
    ("per ip", Per::Ip),
    ("per key", Per::Key),
    ("per global", Per::Global),
    ("global", Per::Global),
];

/// Text built from the language's own words, shuffled: reaches deep into the parser far
/// more often than arbitrary strings do.
fn wordy() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("5/min".to_string()),
        Just("per".to_string()),
        Just("burst".to_string()),
        Just("global".to_string()),
        Just("user".to_string()),
        Just("ip".to_string()),
        Just("/".to_string()),
        Just("0".to_string()),
        Just("18446744073709551616".to_string()),
        Just("4294967295".to_string()),
        "[0-9]{0,12}/[0-9]{0,12}[a-zé]{0,8}",
        "[0-9]{0,6}[A-Za-z]{0,4}",
        "\\PC{0,6}",
    ];
    prop::collection::vec(word, 0..6).prop_map(|ws| ws.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn rate_parser_answers_every_input(text in prop_oneof![wordy(), "\\PC{0,40}", ".{0,40}"], public: bool) {
        match parse_rate(&text, public) {
            Ok(r) => {
                prop_assert!(r.count >= 1);
                prop_assert!(r.burst >= 1);
                prop_assert!((1..=366 * 86_400).contains(&r.period_secs));
                if public {
                    prop_assert!(matches!(r.per, Per::Ip | Per::Global));
                }
                // The normalised text means the same rate.
                let again = parse_rate(&r.text, public).expect("normalised text parses");
                prop_assert_eq!(
                    (again.count, again.period_secs, again.per, again.burst, &again.text),
                    (r.count, r.period_secs, r.per, r.burst, &r.text)
                );
            }
            Err(msg) => prop_assert!(!msg.is_empty()),
        }
    }

    #[test]
    fn rate_parser_reads_what_was_written(
        count in 1u32..,
        mult in prop::option::of(1u64..1000),
        unit in prop::sample::select(UNITS),
        per in prop::option::of(prop::sample::select(PERS)),
        burst in prop::option::of(1u32..),
        per_first: bool,
        public: bool,
    ) {
        let (unit, unit_secs) = unit;
        let mut text = match mult {
            Some(m) => format!("{count}/{m}{unit}"),
            None => format!("{count}/{unit}"),
        };
        let per_text = per.map(|(t, _)| t.to_string());
        let burst_text = burst.map(|b| format!("burst {b}"));
        let tail: Vec<String> = if per_first {
            per_text.into_iter().chain(burst_text).collect()
        } else {
            burst_text.into_iter().chain(per_text).collect()
        };
        for t in tail {
            text.push_str("  ");
            text.push_str(&t);
        }
        let period = mult.unwrap_or(1) * unit_secs;
        let expected_per = per.map(|(_, p)| p).unwrap_or(if public { Per::Ip } else { Per::User });
        let result = parse_rate(&text, public);
        if period > 366 * 86_400 {
            prop_assert!(result.is_err(), "{text}: a period over a year is refused");
        } else if public && matches!(expected_per, Per::User | Per::Key) {
            prop_assert!(result.is_err(), "{text}: public routes charge per ip or global");
        } else {
            let r = result.map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(r.count, count);
            prop_assert_eq!(r.period_secs, period);
            prop_assert!(r.per == expected_per);
            prop_assert_eq!(r.burst, burst.unwrap_or(count));
            prop_assert!(!r.text.contains("  "));
        }
    }

    #[test]
    fn size_parser_answers_every_input(text in prop_oneof!["\\PC{0,24}", "[0-9 ]{0,22}[KMGiBk ]{0,5}"]) {
        match parse_size(&text) {
            Ok(n) => prop_assert!((1..=1 << 30).contains(&n)),
            Err(msg) => prop_assert!(!msg.is_empty()),
        }
    }

    #[test]
    fn size_parser_reads_what_was_written(
        n in prop_oneof![0u64..5000, any::<u64>()],
        unit in prop::sample::select(&[
            ("", 1u64), ("B", 1), ("KB", 1000), ("kB", 1000), ("KiB", 1024),
            ("MB", 1_000_000), ("MiB", 1 << 20), ("GB", 1_000_000_000), ("GiB", 1 << 30),
        ][..]),
        space: bool,
    ) {
        let (unit, mult) = unit;
        let text = format!(" {n}{}{unit} ", if space { " " } else { "" });
        match n.checked_mul(mult) {
            Some(bytes) if (1..=1 << 30).contains(&bytes) => {
                prop_assert_eq!(parse_size(&text), Ok(bytes));
            }
            _ => prop_assert!(parse_size(&text).is_err(), "{text} is out of range"),
        }
    }
}
