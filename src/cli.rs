//! The command-line parser every example uses: flags declared once in a table, one line each.
//!
//! A flag is `--name VALUE` (or `--name=VALUE`) or a switch `--name`. The table holds, per flag,
//! its name, the value's placeholder for the usage line, and a function that stores the value in
//! the example's settings, returning a reason when the value is bad. [`parse`] walks the
//! arguments: an unknown flag, a flag without its value (a following `--flag` is not taken as a
//! value) and a bad value are [`CliError`]s naming the flag; `--help` or `-h` gives the usage.
//! [`parse_env`] does this for the process's arguments and, on an error, prints one line
//! `program: message` to standard error and exits with status 2 ([`USAGE_EXIT`]).
//!
//! Adding a flag to an example is one line in its table. The value helpers ([`parsed`],
//! [`positive`], [`list`], [`one_of`], [`list_of`]) give the messages.
//!
//! ```
//! use natgrad::cli::{self, Flag};
//!
//! #[derive(Debug, Default)]
//! struct Settings { seed: u64, threads: Vec<usize>, quick: bool }
//!
//! let flags = [
//!     Flag::value("--seed", "N", |s: &mut Settings, v| cli::parsed(v).map(|n| s.seed = n)),
//!     Flag::value("--threads", "T,…", |s, v| cli::list(v, cli::positive).map(|t| s.threads = t)),
//!     Flag::switch("--quick", |s| s.quick = true),
//! ];
//! let args = ["--seed", "7", "--threads=1,2", "--quick"].map(String::from);
//! let mut settings = Settings::default();
//! cli::parse(&flags, &mut settings, args)?;
//! assert_eq!((settings.seed, settings.quick), (7, true));
//! assert_eq!(settings.threads, [1, 2]);
//!
//! let error = cli::parse(&flags, &mut settings, ["--threads", "0"].map(String::from));
//! assert_eq!(error.unwrap_err().to_string(), "--threads: '0' is not valid: must be at least 1");
//! # Ok::<(), cli::CliError>(())
//! ```

use std::str::FromStr;
use thiserror::Error;

/// The exit status for bad arguments (and, in the examples, for errors before any result).
pub const USAGE_EXIT: i32 = 2;

/// What a flag does with its value.
enum Action<A> {
    Switch(fn(&mut A)),
    Value(&'static str, fn(&mut A, &str) -> Result<(), String>),
}

/// One entry of a flag table.
pub struct Flag<A> {
    name: &'static str,
    action: Action<A>,
}

impl<A> Flag<A> {
    /// `--name VALUE`: `set` stores the value or returns why it is bad; `placeholder` names the
    /// value in the usage line (`N`, `PATH`, `w1,w2,…`).
    pub fn value(
        name: &'static str,
        placeholder: &'static str,
        set: fn(&mut A, &str) -> Result<(), String>,
    ) -> Self {
        Flag { name, action: Action::Value(placeholder, set) }
    }

    /// `--name` without a value.
    pub fn switch(name: &'static str, set: fn(&mut A)) -> Self {
        Flag { name, action: Action::Switch(set) }
    }

    /// The flag's name, `--name`.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// A command line that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CliError {
    /// A flag not in the table (or a stray positional argument).
    #[error("unknown flag {flag} (expected {expected})")]
    UnknownFlag {
        /// What was given.
        flag: String,
        /// The table's flags, comma-separated (`no flags` for an empty table).
        expected: String,
    },
    /// A value flag at the end of the line, or followed by another flag.
    #[error("{flag} needs a value {placeholder}{}", found.as_ref().map(|f| format!(" (found the flag {f})")).unwrap_or_default())]
    MissingValue {
        /// The flag.
        flag: String,
        /// The value's placeholder.
        placeholder: String,
        /// The flag found in its place, if any.
        found: Option<String>,
    },
    /// A value its flag's setter refused.
    #[error("{flag}: {reason}")]
    BadValue {
        /// The flag.
        flag: String,
        /// Why.
        reason: String,
    },
    /// A switch given a value (`--quick=yes`).
    #[error("{flag} takes no value (got '{value}')")]
    UnexpectedValue {
        /// The switch.
        flag: String,
        /// The value given.
        value: String,
    },
    /// `--help` or `-h`: not an error; [`parse_env`] prints the [`usage`] and exits 0.
    #[error("help requested")]
    Help,
}

/// The usage line: `usage: program [--seed N] [--quick] …`.
pub fn usage<A>(program: &str, flags: &[Flag<A>]) -> String {
    let items: Vec<String> = flags
        .iter()
        .map(|f| match f.action {
            Action::Switch(_) => format!("[{}]", f.name),
            Action::Value(placeholder, _) => format!("[{} {placeholder}]", f.name),
        })
        .collect();
    format!("usage: {program} {}", items.join(" "))
}

/// Applies `args` (without the program name) to `settings` through the table `flags`.
pub fn parse<A>(
    flags: &[Flag<A>],
    settings: &mut A,
    args: impl IntoIterator<Item = String>,
) -> Result<(), CliError> {
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Err(CliError::Help);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_string(), Some(value)),
            _ => (arg.clone(), None),
        };
        let Some(flag) = flags.iter().find(|f| f.name == name) else {
            let names: Vec<&str> = flags.iter().map(|f| f.name).collect();
            let expected = if names.is_empty() { "no flags".into() } else { names.join(", ") };
            return Err(CliError::UnknownFlag { flag: arg, expected });
        };
        match (&flag.action, inline) {
            (Action::Switch(set), None) => set(settings),
            (Action::Switch(_), Some(value)) => {
                return Err(CliError::UnexpectedValue { flag: name, value: value.into() })
            }
            (Action::Value(placeholder, set), inline) => {
                let value = match inline {
                    Some(value) => value.to_string(),
                    None => match args.next_if(|next| !next.starts_with("--")) {
                        Some(value) => value,
                        None => {
                            return Err(CliError::MissingValue {
                                flag: name,
                                placeholder: placeholder.to_string(),
                                found: args.peek().cloned(),
                            })
                        }
                    },
                };
                set(settings, &value)
                    .map_err(|reason| CliError::BadValue { flag: name, reason })?;
            }
        }
    }
    Ok(())
}

/// Parses the process's arguments into `settings`. `--help` prints the usage and exits 0; an
/// error prints `program: message` (one line) to standard error and exits [`USAGE_EXIT`].
pub fn parse_env<A>(program: &str, flags: &[Flag<A>], mut settings: A) -> A {
    match parse(flags, &mut settings, std::env::args().skip(1)) {
        Ok(()) => settings,
        Err(CliError::Help) => {
            println!("{}", usage(program, flags));
            std::process::exit(0);
        }
        Err(e) => fail(program, &e.to_string()),
    }
}

/// Prints `program: message` to standard error and exits [`USAGE_EXIT`].
pub fn fail(program: &str, message: &str) -> ! {
    eprintln!("{program}: {message}");
    std::process::exit(USAGE_EXIT);
}

/// A value of any [`FromStr`] type: `'x' is not valid: …` otherwise.
pub fn parsed<T: FromStr>(value: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    value.trim().parse().map_err(|e| format!("'{value}' is not valid: {e}"))
}

/// A count of at least 1.
pub fn positive(value: &str) -> Result<usize, String> {
    match parsed::<usize>(value)? {
        0 => Err(format!("'{value}' is not valid: must be at least 1")),
        n => Ok(n),
    }
}

/// A comma-separated list, each item through `item`; empty items are refused.
pub fn list<T>(value: &str, item: fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    value
        .split(',')
        .map(
            |s| if s.trim().is_empty() { Err(format!("empty item in '{value}'")) } else { item(s) },
        )
        .collect()
}

/// One of `allowed`.
pub fn one_of(value: &str, allowed: &[&str]) -> Result<String, String> {
    if allowed.contains(&value) {
        Ok(value.to_string())
    } else {
        Err(format!("'{value}' is not one of {}", allowed.join(", ")))
    }
}

/// A comma-separated list of items from `allowed`.
pub fn list_of(value: &str, allowed: &[&str]) -> Result<Vec<String>, String> {
    value
        .split(',')
        .map(|s| {
            if s.is_empty() {
                Err(format!("empty item in '{value}'"))
            } else {
                one_of(s, allowed)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq)]
    struct Settings {
        out: String,
        ops: Vec<String>,
        runs: usize,
        quick: bool,
    }

    fn flags() -> Vec<Flag<Settings>> {
        vec![
            Flag::value("--out", "PATH", |s, v| {
                s.out = v.into();
                Ok(())
            }),
            Flag::value("--op", "a,b", |s, v| list_of(v, &["a", "b"]).map(|o| s.ops = o)),
            Flag::value("--runs", "N", |s, v| positive(v).map(|n| s.runs = n)),
            Flag::switch("--quick", |s| s.quick = true),
        ]
    }

    fn run(args: &[&str]) -> Result<Settings, CliError> {
        let mut s = Settings::default();
        parse(&flags(), &mut s, args.iter().map(|a| a.to_string()))?;
        Ok(s)
    }

    #[test]
    fn values_switches_and_the_inline_form_are_stored() {
        let s = run(&["--out", "x/y", "--op=b,a", "--runs", "3", "--quick"]).unwrap();
        let expected =
            Settings { out: "x/y".into(), ops: vec!["b".into(), "a".into()], runs: 3, quick: true };
        assert_eq!(s, expected);
        assert_eq!(run(&[]).unwrap(), Settings::default());
    }

    #[test]
    fn every_kind_of_bad_line_is_its_own_error_with_its_message() {
        let unknown = run(&["--bogus"]).unwrap_err();
        assert_eq!(
            unknown,
            CliError::UnknownFlag {
                flag: "--bogus".into(),
                expected: "--out, --op, --runs, --quick".into()
            }
        );
        assert!(matches!(run(&["positional"]), Err(CliError::UnknownFlag { .. })));
        // A flag in the value's place is not taken as the value.
        let missing = run(&["--out", "--quick"]).unwrap_err();
        assert_eq!(missing.to_string(), "--out needs a value PATH (found the flag --quick)");
        assert_eq!(run(&["--runs"]).unwrap_err().to_string(), "--runs needs a value N");
        assert_eq!(run(&["--op", "a,c"]).unwrap_err().to_string(), "--op: 'c' is not one of a, b");
        assert_eq!(run(&["--op", "a,"]).unwrap_err().to_string(), "--op: empty item in 'a,'");
        assert_eq!(
            run(&["--runs", "0"]).unwrap_err().to_string(),
            "--runs: '0' is not valid: must be at least 1"
        );
        assert_eq!(
            run(&["--runs", "x"]).unwrap_err().to_string(),
            "--runs: 'x' is not valid: invalid digit found in string"
        );
        assert_eq!(
            run(&["--quick=1"]).unwrap_err(),
            CliError::UnexpectedValue { flag: "--quick".into(), value: "1".into() }
        );
        assert!(matches!(run(&["--runs", "2", "-h"]), Err(CliError::Help)));
    }

    #[test]
    fn the_usage_line_lists_every_flag_with_its_placeholder() {
        assert_eq!(
            usage("demo", &flags()),
            "usage: demo [--out PATH] [--op a,b] [--runs N] [--quick]"
        );
    }
}
