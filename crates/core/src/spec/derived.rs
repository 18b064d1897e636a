//! Row-level derived columns (`transform.derived`): arithmetic over one row's numeric
//! columns, e.g. `capital_gain - capital_loss`. prepare writes them into its tables,
//! and the bundle's transform carries them, so the model server computes the same
//! values from a request's raw fields with this same evaluator.
//!
//! Grammar: numbers, column names (quoted when they are not identifiers:
//! `"capital-gain"`), `+ - * /`, unary `-`, parentheses and the
//! functions `abs(x)`, `sqrt(x)`, `ln(x)`, `log1p(x)`, `min(a, b)`, `max(a, b)`. A
//! missing input, a division by zero or a result that is not finite (`ln(0)`) gives a
//! missing value, which the numeric feature then imputes.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One derived column: its name and its expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DerivedSpec {
    /// The new column's name (a float column in prepare's tables).
    pub name: String,
    /// An expression over the row's numeric columns, e.g. `capital_gain - capital_loss`.
    #[schemars(with = "String")]
    pub expr: Expr,
}

/// A parsed expression; it serialises as its text.
#[derive(Debug, Clone)]
pub struct Expr {
    text: String,
    node: Node,
}

#[derive(Debug, Clone)]
enum Node {
    Number(f64),
    Column(String),
    Neg(Box<Node>),
    Binary(Op, Box<Node>, Box<Node>),
    Call(Function, Vec<Node>),
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy)]
enum Function {
    Abs,
    Sqrt,
    Ln,
    Log1p,
    Min,
    Max,
}

impl Function {
    fn parse(name: &str) -> Option<(Function, usize)> {
        Some(match name {
            "abs" => (Function::Abs, 1),
            "sqrt" => (Function::Sqrt, 1),
            "ln" => (Function::Ln, 1),
            "log1p" => (Function::Log1p, 1),
            "min" => (Function::Min, 2),
            "max" => (Function::Max, 2),
            _ => return None,
        })
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Expr::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Expr {
    /// Parses an expression; the error names the character position.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let mut parser = Parser {
            chars: text.char_indices().collect(),
            at: 0,
            text,
        };
        let node = parser.expr()?;
        parser.skip_spaces();
        if parser.at < parser.chars.len() {
            return Err(parser.error("unexpected input"));
        }
        Ok(Expr {
            text: text.to_string(),
            node,
        })
    }

    /// The columns the expression reads, in order of first use.
    pub fn columns(&self) -> Vec<&str> {
        fn walk<'a>(node: &'a Node, out: &mut Vec<&'a str>) {
            match node {
                Node::Number(_) => {}
                Node::Column(name) => {
                    if !out.contains(&name.as_str()) {
                        out.push(name);
                    }
                }
                Node::Neg(inner) => walk(inner, out),
                Node::Binary(_, a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Node::Call(_, args) => args.iter().for_each(|a| walk(a, out)),
            }
        }
        let mut out = Vec::new();
        walk(&self.node, &mut out);
        out
    }

    /// Evaluates the expression with `value` giving each column's value in this row
    /// (`None`: missing). The one evaluator of prepare's tables and the model server.
    pub fn eval(&self, value: &dyn Fn(&str) -> Option<f64>) -> Option<f64> {
        fn eval(node: &Node, value: &dyn Fn(&str) -> Option<f64>) -> Option<f64> {
            let result = match node {
                Node::Number(x) => *x,
                Node::Column(name) => value(name)?,
                Node::Neg(inner) => -eval(inner, value)?,
                Node::Binary(op, a, b) => {
                    let (a, b) = (eval(a, value)?, eval(b, value)?);
                    match op {
                        Op::Add => a + b,
                        Op::Sub => a - b,
                        Op::Mul => a * b,
                        Op::Div => a / b,
                    }
                }
                Node::Call(function, args) => {
                    let x = eval(&args[0], value)?;
                    match function {
                        Function::Abs => x.abs(),
                        Function::Sqrt => x.sqrt(),
                        Function::Ln => x.ln(),
                        Function::Log1p => x.ln_1p(),
                        Function::Min => x.min(eval(&args[1], value)?),
                        Function::Max => x.max(eval(&args[1], value)?),
                    }
                }
            };
            result.is_finite().then_some(result)
        }
        eval(&self.node, value)
    }
}

struct Parser<'a> {
    chars: Vec<(usize, char)>,
    at: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        let column = self.chars.get(self.at).map_or(self.text.len(), |(i, _)| *i) + 1;
        format!("`{}`: {what} at column {column}", self.text)
    }

    fn skip_spaces(&mut self) {
        while self
            .chars
            .get(self.at)
            .is_some_and(|(_, c)| c.is_whitespace())
        {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_spaces();
        self.chars.get(self.at).map(|(_, c)| *c)
    }

    fn expr(&mut self) -> Result<Node, String> {
        let mut node = self.term()?;
        while let Some(c @ ('+' | '-')) = self.peek() {
            self.at += 1;
            let op = if c == '+' { Op::Add } else { Op::Sub };
            node = Node::Binary(op, Box::new(node), Box::new(self.term()?));
        }
        Ok(node)
    }

    fn term(&mut self) -> Result<Node, String> {
        let mut node = self.unary()?;
        while let Some(c @ ('*' | '/')) = self.peek() {
            self.at += 1;
            let op = if c == '*' { Op::Mul } else { Op::Div };
            node = Node::Binary(op, Box::new(node), Box::new(self.unary()?));
        }
        Ok(node)
    }

    fn unary(&mut self) -> Result<Node, String> {
        if self.peek() == Some('-') {
            self.at += 1;
            return Ok(Node::Neg(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, String> {
        match self.peek() {
            Some('(') => {
                self.at += 1;
                let node = self.expr()?;
                self.expect(')')?;
                Ok(node)
            }
            Some('"') => {
                // A quoted column name: any characters but `"` (`"capital-gain"`).
                let start = self.at;
                self.at += 1;
                let from = self.at;
                while self.chars.get(self.at).is_some_and(|(_, c)| *c != '"') {
                    self.at += 1;
                }
                if self.at >= self.chars.len() {
                    self.at = start;
                    return Err(self.error("unterminated quoted column name"));
                }
                let name: String = self.chars[from..self.at].iter().map(|(_, c)| c).collect();
                self.at += 1;
                Ok(Node::Column(name))
            }
            Some(c) if c.is_ascii_digit() || c == '.' => {
                let start = self.at;
                while self
                    .chars
                    .get(self.at)
                    .is_some_and(|(_, c)| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E'))
                {
                    self.at += 1;
                }
                let text: String = self.chars[start..self.at].iter().map(|(_, c)| c).collect();
                let number = text.parse::<f64>().map_err(|_| {
                    self.at = start;
                    self.error(&format!("`{text}` is not a number"))
                })?;
                Ok(Node::Number(number))
            }
            Some(c) if c.is_alphabetic() || c == '_' => {
                let start = self.at;
                while self
                    .chars
                    .get(self.at)
                    .is_some_and(|(_, c)| c.is_alphanumeric() || *c == '_')
                {
                    self.at += 1;
                }
                let name: String = self.chars[start..self.at].iter().map(|(_, c)| c).collect();
                if self.peek() != Some('(') {
                    return Ok(Node::Column(name));
                }
                let Some((function, arity)) = Function::parse(&name) else {
                    self.at = start;
                    return Err(self.error(&format!(
                        "unknown function `{name}` (abs, sqrt, ln, log1p, min, max)"
                    )));
                };
                self.at += 1;
                let mut args = vec![self.expr()?];
                while self.peek() == Some(',') {
                    self.at += 1;
                    args.push(self.expr()?);
                }
                self.expect(')')?;
                if args.len() != arity {
                    return Err(self.error(&format!(
                        "`{name}` takes {arity} argument(s), got {}",
                        args.len()
                    )));
                }
                Ok(Node::Call(function, args))
            }
            Some(_) => Err(self.error("expected a number, a column or `(`")),
            None => Err(self.error("unexpected end")),
        }
    }

    fn expect(&mut self, wanted: char) -> Result<(), String> {
        if self.peek() == Some(wanted) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected `{wanted}`")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str, x: Option<f64>, y: Option<f64>) -> Option<f64> {
        let expr = Expr::parse(text).unwrap();
        expr.eval(&|name| match name {
            "x" => x,
            "y" => y,
            _ => None,
        })
    }

    #[test]
    fn arithmetic_follows_precedence_and_missing_propagates() {
        assert_eq!(eval("x - y", Some(5.0), Some(3.0)), Some(2.0));
        assert_eq!(eval("1 + 2 * x", Some(3.0), None), Some(7.0));
        assert_eq!(eval("(1 + 2) * x", Some(3.0), None), Some(9.0));
        assert_eq!(eval("-x / 4", Some(2.0), None), Some(-0.5));
        assert_eq!(eval("x - y", Some(5.0), None), None);
        assert_eq!(eval("x / y", Some(5.0), Some(0.0)), None);
        assert_eq!(eval("ln(x)", Some(0.0), None), None);
        assert_eq!(eval("log1p(x)", Some(0.0), None), Some(0.0));
        assert_eq!(
            eval("max(x, y) - min(x, y)", Some(2.0), Some(7.5)),
            Some(5.5)
        );
        assert_eq!(eval("abs(x) + sqrt(y)", Some(-2.0), Some(9.0)), Some(5.0));
        assert_eq!(eval("1.5e2", None, None), Some(150.0));
        let quoted = Expr::parse(r#""capital-gain" - "capital-loss""#).unwrap();
        assert_eq!(quoted.columns(), vec!["capital-gain", "capital-loss"]);
        assert!(
            Expr::parse(r#""capital-gain - 1"#)
                .unwrap_err()
                .contains("unterminated")
        );
        let expr = Expr::parse("capital_gain - capital_loss * capital_gain").unwrap();
        assert_eq!(expr.columns(), vec!["capital_gain", "capital_loss"]);
        assert_eq!(
            expr.to_string(),
            "capital_gain - capital_loss * capital_gain"
        );
    }

    #[test]
    fn errors_name_the_position() {
        let err = Expr::parse("x - ").unwrap_err();
        assert!(err.contains("unexpected end at column 5"), "{err}");
        let err = Expr::parse("x + foo(y)").unwrap_err();
        assert!(
            err.contains("unknown function `foo`") && err.contains("column 5"),
            "{err}"
        );
        let err = Expr::parse("min(x)").unwrap_err();
        assert!(err.contains("takes 2 argument"), "{err}");
        let err = Expr::parse("(x + y").unwrap_err();
        assert!(err.contains("expected `)`"), "{err}");
        let err = Expr::parse("x y").unwrap_err();
        assert!(err.contains("unexpected input at column 3"), "{err}");
    }
}
