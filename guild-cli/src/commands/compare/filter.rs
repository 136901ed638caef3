//! The `--filter` expression language of `guild compare`.
//!
//! ```text
//! expr       := and ("or" and)*
//! and        := unary ("and" unary)*
//! unary      := "not" unary | "(" expr ")" | comparison
//! comparison := operand OP value
//! operand    := NAME | "min(" NAME ")" | "max(" NAME ")"
//! OP         := "=" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "~" (contains)
//! value      := NUMBER | "quoted" | 'quoted' | WORD
//! ```
//!
//! Names and words are runs of letters, digits and `_ . / - :` (`tf/validation/acc`,
//! `2026-11-26`). `and`, `or` and `not` are keywords in any case. A NAME is, in this
//! order, a run attribute (`id model op status started time label tags`), a flag, or a
//! series key (its last value); `flag:NAME` and `scalar:NAME` pick one explicitly, and
//! `min(KEY)`/`max(KEY)` a series' extremes. Both sides are compared as numbers when
//! both read as numbers, else as text (`=` exact, `~` contains, case-insensitive).
//! A run without the value fails every comparison (`not (lr = 0.1)` holds for it).
//!
//! Ours, not a crate's: the language is the product's own (run attributes, flags and
//! series keys as names, `min()`/`max()`, errors that point at a column of the user's
//! expression), and its whole grammar is the dozen lines above.

use std::cmp::Ordering;
use std::fmt;

use crate::format::format_exact;

/// A parse or name error, at a character column (1-based) of the expression.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterError {
    pub column: usize,
    pub message: String,
}

impl FilterError {
    fn at(column: usize, message: impl Into<String>) -> FilterError {
        FilterError {
            column,
            message: message.into(),
        }
    }

    /// `--filter: MESSAGE at column N`, then the expression with a caret under column N.
    pub fn render(&self, expr: &str) -> String {
        format!(
            "--filter: {} at column {}\n  {}\n  {}^",
            self.message,
            self.column,
            expr,
            " ".repeat(self.column.saturating_sub(1))
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "~",
        }
    }
}

/// What an operand names, before it is resolved against the compared runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Name(String),
    Min(String),
    Max(String),
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Name(n) => write!(f, "{n}"),
            Operand::Min(n) => write!(f, "min({n})"),
            Operand::Max(n) => write!(f, "max({n})"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Number(f64, String),
    Text(String),
}

impl Literal {
    fn text(&self) -> &str {
        match self {
            Literal::Number(_, t) | Literal::Text(t) => t,
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Literal::Number(n, _) => Some(*n),
            Literal::Text(t) => parse_number(t),
        }
    }
}

/// A parsed expression; `T` is what operands resolve to (`Operand` before resolving,
/// with the operand's column).
#[derive(Clone, Debug, PartialEq)]
pub enum Expr<T> {
    And(Box<Expr<T>>, Box<Expr<T>>),
    Or(Box<Expr<T>>, Box<Expr<T>>),
    Not(Box<Expr<T>>),
    Cmp { operand: T, op: Op, value: Literal },
}

/// A value of a run, as the evaluator sees it.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    Missing,
    Text(&'a str),
    Number(f64),
}

/// Parses the number forms the language accepts (no `inf`/`nan` words: those are text).
pub fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim();
    let first = t.chars().next()?;
    if !(first.is_ascii_digit() || first == '-' || first == '+' || first == '.') {
        return None;
    }
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

// ------------------------------------------------------------------ lexing

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Op(Op),
    End,
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word(w) => format!("\"{w}\""),
        Token::Quoted(q) => format!("the string \"{q}\""),
        Token::Open => "\"(\"".into(),
        Token::Close => "\")\"".into(),
        Token::Op(op) => format!("\"{}\"", op.text()),
        Token::End => "the end".into(),
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | ':' | '+')
}

/// Tokens with their 1-based columns.
fn lex(expr: &str) -> Result<Vec<(Token, usize)>, FilterError> {
    let chars: Vec<char> = expr.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two = chars.get(i + 1).copied();
        let (token, len) = match (c, two) {
            ('(', _) => (Token::Open, 1),
            (')', _) => (Token::Close, 1),
            ('=', Some('=')) => (Token::Op(Op::Eq), 2),
            ('=', _) => (Token::Op(Op::Eq), 1),
            ('!', Some('=')) => (Token::Op(Op::Ne), 2),
            ('<', Some('=')) => (Token::Op(Op::Le), 2),
            ('<', Some('>')) => (Token::Op(Op::Ne), 2),
            ('<', _) => (Token::Op(Op::Lt), 1),
            ('>', Some('=')) => (Token::Op(Op::Ge), 2),
            ('>', _) => (Token::Op(Op::Gt), 1),
            ('~', _) => (Token::Op(Op::Contains), 1),
            ('"' | '\'', _) => {
                let mut text = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err(FilterError::at(column, "unterminated string (no closing quote)")),
                        Some('\\') if j + 1 < chars.len() => {
                            text.push(chars[j + 1]);
                            j += 2;
                        }
                        Some(&q) if q == c => break,
                        Some(&other) => {
                            text.push(other);
                            j += 1;
                        }
                    }
                }
                (Token::Quoted(text), j + 1 - i)
            }
            _ if is_word_char(c) => {
                let mut j = i;
                while j < chars.len() && is_word_char(chars[j]) {
                    j += 1;
                }
                (Token::Word(chars[i..j].iter().collect()), j - i)
            }
            _ => return Err(FilterError::at(column, format!("unexpected character \"{c}\""))),
        };
        tokens.push((token, column));
        i += len;
    }
    tokens.push((Token::End, chars.len() + 1));
    Ok(tokens)
}

// ------------------------------------------------------------------ parsing

fn keyword(token: &Token) -> Option<&'static str> {
    match token {
        Token::Word(w) if w.eq_ignore_ascii_case("and") => Some("and"),
        Token::Word(w) if w.eq_ignore_ascii_case("or") => Some("or"),
        Token::Word(w) if w.eq_ignore_ascii_case("not") => Some("not"),
        _ => None,
    }
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &(Token, usize) {
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> (Token, usize) {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn or(&mut self) -> Result<Expr<(Operand, usize)>, FilterError> {
        let mut left = self.and()?;
        while keyword(&self.peek().0) == Some("or") {
            self.next();
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr<(Operand, usize)>, FilterError> {
        let mut left = self.unary()?;
        while keyword(&self.peek().0) == Some("and") {
            self.next();
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr<(Operand, usize)>, FilterError> {
        let (token, column) = self.peek().clone();
        if keyword(&token) == Some("not") {
            self.next();
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if token == Token::Open {
            self.next();
            let inner = self.or()?;
            let (close, at) = self.next();
            if close != Token::Close {
                return Err(FilterError::at(
                    at,
                    format!(
                        "expected \")\" to close the \"(\" at column {column}, found {}",
                        describe(&close)
                    ),
                ));
            }
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr<(Operand, usize)>, FilterError> {
        let (token, column) = self.next();
        let name = match &token {
            Token::Word(w) if keyword(&token).is_none() => w.clone(),
            Token::End => {
                return Err(FilterError::at(
                    column,
                    "expected a condition like `status = completed`",
                ));
            }
            other => {
                return Err(FilterError::at(
                    column,
                    format!(
                        "expected a name (an attribute, flag or scalar), found {}",
                        describe(other)
                    ),
                ));
            }
        };
        let operand = match name.to_ascii_lowercase().as_str() {
            f @ ("min" | "max") if self.peek().0 == Token::Open => {
                self.next();
                let (arg, at) = self.next();
                let key = match arg {
                    Token::Word(w) if keyword(&Token::Word(w.clone())).is_none() => w,
                    other => {
                        return Err(FilterError::at(
                            at,
                            format!("expected a series key inside {f}(...), found {}", describe(&other)),
                        ));
                    }
                };
                let (close, at) = self.next();
                if close != Token::Close {
                    return Err(FilterError::at(
                        at,
                        format!("expected \")\" after {f}({key}, found {}", describe(&close)),
                    ));
                }
                if f == "min" {
                    Operand::Min(key)
                } else {
                    Operand::Max(key)
                }
            }
            _ => Operand::Name(name),
        };
        let (op_token, at) = self.next();
        let Token::Op(op) = op_token else {
            return Err(FilterError::at(
                at,
                format!(
                    "expected a comparison (= != < <= > >= ~) after \"{operand}\", found {}",
                    describe(&op_token)
                ),
            ));
        };
        let (value_token, at) = self.next();
        let value = match value_token {
            Token::Quoted(text) => Literal::Text(text),
            Token::Word(ref w) if keyword(&value_token).is_none() => match parse_number(w) {
                Some(n) => Literal::Number(n, w.clone()),
                None => Literal::Text(w.clone()),
            },
            other => {
                return Err(FilterError::at(
                    at,
                    format!("expected a value after \"{}\", found {}", op.text(), describe(&other)),
                ));
            }
        };
        Ok(Expr::Cmp {
            operand: (operand, column),
            op,
            value,
        })
    }
}

/// Parses an expression; names are resolved later, against the compared runs.
pub fn parse(expr: &str) -> Result<Expr<(Operand, usize)>, FilterError> {
    let tokens = lex(expr)?;
    let mut parser = Parser { tokens, pos: 0 };
    let tree = parser.or()?;
    let (rest, column) = parser.next();
    if rest != Token::End {
        let message = if rest == Token::Close {
            "unexpected \")\" (no \"(\" to close)".to_string()
        } else {
            format!("expected \"and\" or \"or\" before {}", describe(&rest))
        };
        return Err(FilterError::at(column, message));
    }
    Ok(tree)
}

/// A column name as an operand: `min(loss)` and `max(loss)` as the language reads them,
/// anything else as a name.
pub fn operand(name: &str) -> Operand {
    match parse(&format!("{name} = 0")) {
        Ok(Expr::Cmp {
            operand: (operand, _), ..
        }) => operand,
        _ => Operand::Name(name.to_string()),
    }
}

impl Expr<(Operand, usize)> {
    /// Binds every operand with `resolve`, which says why a name is unknown.
    pub fn resolve<T>(self, resolve: &mut impl FnMut(&Operand) -> Result<T, String>) -> Result<Expr<T>, FilterError> {
        Ok(match self {
            Expr::And(a, b) => Expr::And(Box::new(a.resolve(resolve)?), Box::new(b.resolve(resolve)?)),
            Expr::Or(a, b) => Expr::Or(Box::new(a.resolve(resolve)?), Box::new(b.resolve(resolve)?)),
            Expr::Not(a) => Expr::Not(Box::new(a.resolve(resolve)?)),
            Expr::Cmp {
                operand: (operand, column),
                op,
                value,
            } => Expr::Cmp {
                operand: resolve(&operand).map_err(|m| FilterError::at(column, m))?,
                op,
                value,
            },
        })
    }
}

impl<T> Expr<T> {
    /// Whether a run matches; `value` gives the run's value of a resolved operand.
    pub fn matches<'a>(&self, value: &impl Fn(&T) -> Value<'a>) -> bool {
        match self {
            Expr::And(a, b) => a.matches(value) && b.matches(value),
            Expr::Or(a, b) => a.matches(value) || b.matches(value),
            Expr::Not(a) => !a.matches(value),
            Expr::Cmp {
                operand,
                op,
                value: lit,
            } => compare(value(operand), *op, lit),
        }
    }
}

fn compare(left: Value<'_>, op: Op, right: &Literal) -> bool {
    let left_number = match left {
        Value::Missing => return false,
        Value::Number(n) => Some(n),
        Value::Text(t) => parse_number(t),
    };
    if op == Op::Contains {
        let text = match left {
            Value::Text(t) => t.to_lowercase(),
            Value::Number(n) => format_exact(n),
            Value::Missing => return false,
        };
        return text.contains(&right.text().to_lowercase());
    }
    let ordering = match (left_number, right.number()) {
        (Some(a), Some(b)) => match a.partial_cmp(&b) {
            Some(o) => o,
            // NaN: only != holds.
            None => return op == Op::Ne,
        },
        _ => {
            let text = match left {
                Value::Text(t) => t.to_string(),
                Value::Number(n) => format_exact(n),
                Value::Missing => return false,
            };
            text.as_str().cmp(right.text())
        }
    };
    match op {
        Op::Eq => ordering == Ordering::Equal,
        Op::Ne => ordering != Ordering::Equal,
        Op::Lt => ordering == Ordering::Less,
        Op::Le => ordering != Ordering::Greater,
        Op::Gt => ordering == Ordering::Greater,
        Op::Ge => ordering != Ordering::Less,
        Op::Contains => unreachable!("handled above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn err(expr: &str) -> FilterError {
        parse(expr).expect_err(expr)
    }

    fn eval(expr: &str, values: &[(&str, Value<'static>)]) -> bool {
        let values: HashMap<String, Value<'static>> = values.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let tree = parse(expr)
            .unwrap_or_else(|e| panic!("{}", e.render(expr)))
            .resolve(&mut |o: &Operand| Ok::<_, String>(o.to_string()))
            .unwrap();
        tree.matches(&|name: &String| values.get(name).copied().unwrap_or(Value::Missing))
    }

    #[test]
    fn parses_the_example_with_precedence() {
        let tree = parse("status = completed and lr < 0.1 and tf/validation/acc > 0.9").unwrap();
        let Expr::And(left, right) = tree else {
            panic!("not an and")
        };
        assert!(matches!(*left, Expr::And(..)));
        assert_eq!(
            *right,
            Expr::Cmp {
                operand: (Operand::Name("tf/validation/acc".into()), 37),
                op: Op::Gt,
                value: Literal::Number(0.9, "0.9".into()),
            }
        );
        // and binds tighter than or; not tighter than and.
        let tree = parse("a = 1 or not b = 2 and c = 3").unwrap();
        let Expr::Or(_, right) = tree else { panic!("not an or") };
        let Expr::And(not, _) = *right else {
            panic!("not an and")
        };
        assert!(matches!(*not, Expr::Not(_)));
    }

    #[test]
    fn parses_every_form() {
        for expr in [
            "lr<0.1",
            "lr <= 1e-3",
            "lr == -0.5",
            "lr != +2",
            "lr <> 2",
            "label ~ 'best run'",
            "label ~ \"say \\\"hi\\\"\"",
            "started >= 2026-11-26",
            "(a = 1 or b = 2) and not (c ~ x)",
            "min(loss) < 0.2 and MAX(acc) >= .9",
            "flag:lr = 0.1 and scalar:loss < 1",
            "NOT status = error AND model = intro OR op = train",
            "  ((x = 1))  ",
        ] {
            parse(expr).unwrap_or_else(|e| panic!("{}", e.render(expr)));
        }
    }

    #[test]
    fn errors_point_at_the_column() {
        let e = err("status = completed and lr <");
        assert_eq!(
            (e.column, e.message.as_str()),
            (28, "expected a value after \"<\", found the end")
        );
        assert_eq!(
            e.render("status = completed and lr <"),
            "--filter: expected a value after \"<\", found the end at column 28\n  status = completed and lr <\n                             ^"
        );
        assert_eq!(err("lr < 0.1 and").column, 13);
        assert!(err("lr < 0.1 and").message.starts_with("expected a condition"));
        let e = err("lr 0.1");
        assert_eq!(e.column, 4);
        assert!(e.message.starts_with("expected a comparison"), "{e:?}");
        let e = err("(lr < 0.1");
        assert_eq!(e.column, 10);
        assert!(e.message.contains("close the \"(\" at column 1"), "{e:?}");
        let e = err("lr < 0.1)");
        assert_eq!(e.column, 9);
        assert!(e.message.contains("no \"(\""), "{e:?}");
        let e = err("label = 'oops");
        assert_eq!(
            (e.column, e.message.as_str()),
            (9, "unterminated string (no closing quote)")
        );
        let e = err("lr ! 3");
        assert_eq!((e.column, e.message.as_str()), (4, "unexpected character \"!\""));
        let e = err("lr < 1 lr > 0");
        assert_eq!(e.column, 8);
        assert!(e.message.starts_with("expected \"and\" or \"or\""), "{e:?}");
        let e = err("");
        assert_eq!(e.column, 1);
        let e = err("and = 1");
        assert_eq!(e.column, 1);
        let e = err("min(loss < 1");
        assert_eq!(e.column, 10);
        let e = err("lr < and");
        assert_eq!(e.column, 6);
        let e = err("= 3");
        assert_eq!(e.column, 1);
    }

    #[test]
    fn unknown_names_point_at_their_column() {
        let tree = parse("status = completed and lrr < 0.1").unwrap();
        let e = tree
            .resolve(&mut |o: &Operand| match o {
                Operand::Name(n) if n == "status" => Ok(()),
                other => Err(format!("unknown name \"{other}\"")),
            })
            .unwrap_err();
        assert_eq!((e.column, e.message.as_str()), (24, "unknown name \"lrr\""));
    }

    #[test]
    fn evaluates_numbers_text_and_missing_values() {
        let v = [
            ("status", Value::Text("completed")),
            ("lr", Value::Text("0.01")),
            ("acc", Value::Number(0.95)),
            ("label", Value::Text("Best run")),
            ("nan", Value::Number(f64::NAN)),
        ];
        assert!(eval("status = completed and lr < 0.1 and acc > 0.9", &v));
        assert!(!eval("status = error or lr > 0.1", &v));
        assert!(eval("lr = 1e-2", &v), "numbers compare as numbers");
        assert!(eval("label ~ best", &v), "contains ignores case");
        assert!(!eval("label = best", &v));
        assert!(eval("status > comp", &v), "text compares as text");
        assert!(!eval("missing = 1", &v) && !eval("missing != 1", &v));
        assert!(eval("not missing = 1", &v));
        assert!(eval("nan != 1", &v) && !eval("nan = 1", &v) && !eval("nan < 1", &v));
        assert!(eval("acc ~ 0.95", &v));
    }
}
