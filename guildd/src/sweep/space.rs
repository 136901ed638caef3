//! A sweep's search space: what each flag's value says about the values a trial may take.
//! The syntax is ours (issue 16): `[0.001,0.01,0.1]` and `choice[adam,sgd]` are lists,
//! `uniform[0:0.5]` and `loguniform[1e-4:1e-1]` are ranges, anything else is a fixed value.
//! A space also turns a point back into the flags a trial runs with, and a trial's flags
//! back into a point, so a sweep can be picked up again from the runs it left.

use std::collections::HashSet;
use std::fmt;

/// A list item: ints stay ints and floats floats when a trial gets them back as flags.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Value {
    fn parse(text: &str) -> Value {
        let is_integer = text
            .strip_prefix(['-', '+'])
            .unwrap_or(text)
            .bytes()
            .all(|b| b.is_ascii_digit());
        if is_integer && let Ok(int) = text.parse() {
            return Value::Int(int);
        }
        match text.parse::<f64>() {
            Ok(float) if float.is_finite() => Value::Float(float),
            _ => Value::Text(text.to_string()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(int) => write!(f, "{int}"),
            Value::Float(float) => f.write_str(&format_float(*float)),
            Value::Text(text) => f.write_str(text),
        }
    }
}

/// The shortest text that reads back as the same float (`0.1`, `1e-5`, `3.0`): a trial's
/// flag holds exactly the value the optimizer chose.
pub fn format_float(value: f64) -> String {
    format!("{value:?}")
}

/// What one flag may be in a sweep.
#[derive(Debug, Clone, PartialEq)]
pub enum Dimension {
    /// Not swept: the user's text, passed on unchanged.
    Fixed(String),
    /// `[a,b,c]` or `choice[a,b,c]`, which mean the same: grid search takes every item,
    /// random search and TPE draw from them.
    Choice(Vec<Value>),
    /// `uniform[low:high]`: any float between the bounds.
    Uniform { low: f64, high: f64 },
    /// `loguniform[low:high]`: any float between the bounds, uniform in its logarithm.
    LogUniform { low: f64, high: f64 },
}

/// A dimension as the user wrote it, normalized: `choice[2,3]`, `uniform[0.0:0.5]`.
impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dimension::Fixed(text) => f.write_str(text),
            Dimension::Choice(values) => {
                f.write_str("choice[")?;
                for (index, value) in values.iter().enumerate() {
                    if index > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{value}")?;
                }
                f.write_str("]")
            }
            Dimension::Uniform { low, high } => write!(f, "uniform[{}:{}]", format_float(*low), format_float(*high)),
            Dimension::LogUniform { low, high } => {
                write!(f, "loguniform[{}:{}]", format_float(*low), format_float(*high))
            }
        }
    }
}

impl Dimension {
    /// A range (uniform, log-uniform) rather than a list or a fixed value.
    pub fn is_range(&self) -> bool {
        matches!(self, Dimension::Uniform { .. } | Dimension::LogUniform { .. })
    }
}

/// Which bound of a range is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Low,
    High,
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Bound::Low => "low",
            Bound::High => "high",
        })
    }
}

/// What is wrong with a flag's value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error("the '[' is never closed (a sweep value ends with ']')")]
    Unclosed,
    #[error("text after the closing ']'")]
    AfterClose,
    #[error("a bracket inside the brackets (lists do not nest)")]
    Nested,
    #[error("unknown sweep function \"{0}\" (expected [a,b], choice[a,b], uniform[low:high] or loguniform[low:high])")]
    UnknownFunction(String),
    #[error("the list is empty")]
    EmptyList,
    #[error("item {0} of the list is empty")]
    EmptyItem(usize),
    #[error("the list holds {0} twice")]
    DuplicateItem(String),
    #[error("expected {0}[LOW:HIGH], two bounds with one ':' between them")]
    RangeForm(&'static str),
    #[error("the {bound} bound \"{text}\" is not a finite number")]
    NotANumber { bound: Bound, text: String },
    #[error("the low bound {low} must be below the high bound {high}")]
    Reversed { low: String, high: String },
    #[error("the range from {low} to {high} is wider than a float can hold")]
    TooWide { low: String, high: String },
    #[error("the log-uniform low bound must be > 0 (got {0})")]
    LogNotPositive(String),
    #[error("the flag is given twice")]
    DuplicateFlag,
    #[error("the trial has no value for this flag")]
    Missing,
    #[error("not a value of {0}")]
    NotInSpace(String),
}

/// A flag whose value cannot be read as a sweep, or a trial's flags that are not a point of
/// the space.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("flag {flag}={}: {problem}", shorten(.value))]
pub struct SpaceError {
    pub flag: String,
    pub value: String,
    pub problem: Problem,
}

/// A hostile or mistaken value may be long; the message shows its start.
fn shorten(value: &str) -> String {
    const MAX: usize = 80;
    match value.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &value[..end]),
        None => value.to_string(),
    }
}

/// Reads one flag's value. Only a value that starts with `[` or with a name followed by
/// `[` is a sweep; any other text is a fixed value.
pub fn parse_value(flag: &str, value: &str) -> Result<Dimension, SpaceError> {
    let fail = |problem| SpaceError {
        flag: flag.to_string(),
        value: value.to_string(),
        problem,
    };
    let Some(open) = value.find('[') else {
        return Ok(Dimension::Fixed(value.to_string()));
    };
    let function = &value[..open];
    if !function.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_') {
        return Ok(Dimension::Fixed(value.to_string()));
    }
    let rest = &value[open + 1..];
    if rest.contains('[') {
        return Err(fail(Problem::Nested));
    }
    let body = match rest.find(']') {
        None => return Err(fail(Problem::Unclosed)),
        Some(close) if close + 1 != rest.len() => return Err(fail(Problem::AfterClose)),
        Some(close) => &rest[..close],
    };
    match function {
        "" | "choice" => parse_list(body).map(Dimension::Choice).map_err(fail),
        "uniform" => parse_range(body, "uniform")
            .map(|(low, high)| Dimension::Uniform { low, high })
            .map_err(fail),
        "loguniform" => parse_range(body, "loguniform")
            .map(|(low, high)| Dimension::LogUniform { low, high })
            .map_err(fail),
        other => Err(fail(Problem::UnknownFunction(other.to_string()))),
    }
}

fn parse_list(body: &str) -> Result<Vec<Value>, Problem> {
    if body.trim().is_empty() {
        return Err(Problem::EmptyList);
    }
    let mut values: Vec<Value> = Vec::new();
    // Items as a trial would get them, so `0.1` and `0.10` are the same item.
    let mut seen: HashSet<String> = HashSet::new();
    for (index, item) in body.split(',').enumerate() {
        let item = item.trim();
        if item.is_empty() {
            return Err(Problem::EmptyItem(index + 1));
        }
        let value = Value::parse(item);
        let text = value.to_string();
        if !seen.insert(text.clone()) {
            return Err(Problem::DuplicateItem(text));
        }
        values.push(value);
    }
    Ok(values)
}

/// `LOW:HIGH` of `uniform[...]` or `loguniform[...]`; errors quote the bounds as written.
fn parse_range(body: &str, function: &'static str) -> Result<(f64, f64), Problem> {
    let Some((low_text, high_text)) = body.split_once(':') else {
        return Err(Problem::RangeForm(function));
    };
    if high_text.contains(':') {
        return Err(Problem::RangeForm(function));
    }
    let (low_text, high_text) = (low_text.trim(), high_text.trim());
    let bound = |text: &str, bound| match text.parse::<f64>() {
        Ok(number) if number.is_finite() => Ok(number),
        _ => Err(Problem::NotANumber {
            bound,
            text: text.to_string(),
        }),
    };
    let (low, high) = (bound(low_text, Bound::Low)?, bound(high_text, Bound::High)?);
    if low >= high {
        return Err(Problem::Reversed {
            low: low_text.to_string(),
            high: high_text.to_string(),
        });
    }
    if !(high - low).is_finite() {
        return Err(Problem::TooWide {
            low: low_text.to_string(),
            high: high_text.to_string(),
        });
    }
    if function == "loguniform" && low <= 0.0 {
        return Err(Problem::LogNotPositive(low_text.to_string()));
    }
    Ok((low, high))
}

/// One flag of a space.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    pub name: String,
    pub dimension: Dimension,
}

/// The flags of a sweep in the order they were given, each with what it may be.
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    flags: Vec<Flag>,
}

/// One flag's value in a point of a space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Sample {
    Fixed,
    /// An index into a [`Dimension::Choice`] list.
    Choice(usize),
    /// A float within a range's bounds.
    Real(f64),
}

/// One point of a space: a value for every flag, in the space's order. The optimizers make
/// them; [`Space::flags`] turns one into the flags a trial runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Params(pub(super) Vec<Sample>);

impl Space {
    /// Reads a sweep's flags (name, value) in order, as `resolve_flags` gives them.
    pub fn parse(flags: &[(String, String)]) -> Result<Space, SpaceError> {
        let mut parsed: Vec<Flag> = Vec::with_capacity(flags.len());
        let mut names: HashSet<&str> = HashSet::new();
        for (name, value) in flags {
            if !names.insert(name) {
                return Err(SpaceError {
                    flag: name.clone(),
                    value: value.clone(),
                    problem: Problem::DuplicateFlag,
                });
            }
            parsed.push(Flag {
                name: name.clone(),
                dimension: parse_value(name, value)?,
            });
        }
        Ok(Space { flags: parsed })
    }

    /// The flags in order, each with what it may be.
    pub fn dimensions(&self) -> &[Flag] {
        &self.flags
    }

    /// Some flag varies: these flags make a sweep, not a single run.
    pub fn is_sweep(&self) -> bool {
        self.flags
            .iter()
            .any(|flag| !matches!(flag.dimension, Dimension::Fixed(_)))
    }

    /// The first flag whose value is a range: grid search cannot enumerate it, and it makes
    /// random search the default.
    pub fn first_range(&self) -> Option<&Flag> {
        self.flags.iter().find(|flag| flag.dimension.is_range())
    }

    /// How many points the grid has (every combination of list items), saturating at
    /// `u64::MAX`; `None` when a flag is a range.
    pub fn grid_len(&self) -> Option<u64> {
        self.flags.iter().try_fold(1u64, |count, flag| match &flag.dimension {
            Dimension::Fixed(_) => Some(count),
            Dimension::Choice(values) => Some(count.saturating_mul(values.len() as u64)),
            Dimension::Uniform { .. } | Dimension::LogUniform { .. } => None,
        })
    }

    /// The grid's `index`-th point: the first flag's items vary slowest, as nested loops in
    /// flag order would give them. `None` past the end or when a flag is a range.
    pub fn grid_point(&self, index: u64) -> Option<Params> {
        if index >= self.grid_len()? {
            return None;
        }
        let mut rest = index;
        let mut samples = vec![Sample::Fixed; self.flags.len()];
        for (sample, flag) in samples.iter_mut().zip(&self.flags).rev() {
            if let Dimension::Choice(values) = &flag.dimension {
                let len = values.len() as u64;
                *sample = Sample::Choice((rest % len) as usize);
                rest /= len;
            }
        }
        Some(Params(samples))
    }

    /// The flags a trial at `params` runs with, in the space's order. `params` come from
    /// this space's optimizer or [`Space::params_from_flags`]; a flag whose sample does not
    /// fit (params of another space) gets the dimension as written, never a panic.
    pub fn flags(&self, params: &Params) -> Vec<(String, String)> {
        self.flags
            .iter()
            .enumerate()
            .map(|(index, flag)| {
                let text = match (&flag.dimension, params.0.get(index)) {
                    (Dimension::Choice(values), Some(Sample::Choice(choice))) if *choice < values.len() => {
                        values[*choice].to_string()
                    }
                    (Dimension::Uniform { .. } | Dimension::LogUniform { .. }, Some(Sample::Real(value))) => {
                        format_float(*value)
                    }
                    (dimension, _) => dimension.to_string(),
                };
                (flag.name.clone(), text)
            })
            .collect()
    }

    /// The point a trial's flags stand for: the inverse of [`Space::flags`], for picking a
    /// sweep up again from the trials it has run.
    pub fn params_from_flags(&self, flags: &[(String, String)]) -> Result<Params, SpaceError> {
        let mut samples = Vec::with_capacity(self.flags.len());
        for flag in &self.flags {
            let value = flags
                .iter()
                .find(|(name, _)| *name == flag.name)
                .map(|(_, value)| value.as_str());
            let fail = |problem| SpaceError {
                flag: flag.name.clone(),
                value: value.unwrap_or_default().to_string(),
                problem,
            };
            let Some(value) = value else {
                return Err(fail(Problem::Missing));
            };
            let sample = match &flag.dimension {
                Dimension::Fixed(_) => Some(Sample::Fixed),
                Dimension::Choice(values) => {
                    let value = Value::parse(value.trim());
                    values.iter().position(|item| *item == value).map(Sample::Choice)
                }
                &(Dimension::Uniform { low, high } | Dimension::LogUniform { low, high }) => value
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|number| (low..=high).contains(number))
                    .map(Sample::Real),
            };
            samples.push(sample.ok_or_else(|| fail(Problem::NotInSpace(flag.dimension.to_string())))?);
        }
        Ok(Params(samples))
    }

    /// Whether `params` is a point of this space (kinds match, indices and floats in bounds).
    /// The optimizers leave out trials that are not, rather than fail on them.
    pub(super) fn contains(&self, params: &Params) -> bool {
        params.0.len() == self.flags.len()
            && self
                .flags
                .iter()
                .zip(&params.0)
                .all(|(flag, sample)| match (&flag.dimension, sample) {
                    (Dimension::Fixed(_), Sample::Fixed) => true,
                    (Dimension::Choice(values), Sample::Choice(index)) => *index < values.len(),
                    (
                        &(Dimension::Uniform { low, high } | Dimension::LogUniform { low, high }),
                        &Sample::Real(value),
                    ) => (low..=high).contains(&value),
                    _ => false,
                })
    }
}
