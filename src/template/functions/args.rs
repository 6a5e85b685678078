//! Argument checks shared by the functions, with Go's wording, and Go's value conversions
//! (`strval`, `toInt64`, `toFloat64`, emptiness). No message includes an argument's value.

use std::fmt;
use std::sync::Arc;

use gotmpl::Value;

use crate::template::bytes;
use crate::template::error::function_error;

/// The arguments of one call of `function`.
#[derive(Clone, Copy)]
pub(crate) struct Args<'a> {
    function: &'static str,
    values: &'a [Value],
}

impl<'a> Args<'a> {
    pub(crate) fn new(function: &'static str, values: &'a [Value]) -> Self {
        Self { function, values }
    }

    pub(crate) fn error(&self, message: impl fmt::Display) -> gotmpl::TemplateError {
        function_error(self.function, message)
    }

    fn count_error(&self, want: impl fmt::Display) -> gotmpl::TemplateError {
        gotmpl::TemplateError::Exec(format!(
            "wrong number of args for {}: want {want} got {}",
            self.function,
            self.values.len()
        ))
    }

    pub(crate) fn exactly(self, n: usize) -> gotmpl::Result<Self> {
        if self.values.len() == n {
            Ok(self)
        } else {
            Err(self.count_error(n))
        }
    }

    pub(crate) fn at_least(self, n: usize) -> gotmpl::Result<Self> {
        if self.values.len() >= n {
            Ok(self)
        } else {
            Err(self.count_error(format_args!("at least {n}")))
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    pub(crate) fn all(&self) -> &'a [Value] {
        self.values
    }

    /// Argument `i` (checked by `exactly`/`at_least` before).
    pub(crate) fn get(&self, i: usize) -> &'a Value {
        self.values.get(i).unwrap_or(&Value::Nil)
    }

    fn wrong_type(&self, i: usize, expected: &str) -> gotmpl::TemplateError {
        self.error(format_args!(
            "wrong type for argument {}; expected {expected}; got {}",
            i + 1,
            type_of(self.get(i))
        ))
    }

    /// A parameter typed `string` in Go.
    pub(crate) fn string(&self, i: usize) -> gotmpl::Result<Arc<str>> {
        match self.get(i) {
            Value::String(s) => Ok(s.clone()),
            _ => Err(self.wrong_type(i, "string")),
        }
    }

    /// The bytes a `string` parameter stands for (binary values decoded).
    pub(crate) fn bytes(&self, i: usize) -> gotmpl::Result<Vec<u8>> {
        self.string(i).map(|s| bytes::decode(&s))
    }

    /// A parameter typed `int` in Go.
    pub(crate) fn int(&self, i: usize) -> gotmpl::Result<i64> {
        match self.get(i) {
            Value::Int(n) => Ok(*n),
            Value::Uint(n) => i64::try_from(*n).map_err(|_| self.error("integer out of range")),
            _ => Err(self.wrong_type(i, "int")),
        }
    }

    /// A parameter typed `bool` in Go.
    pub(crate) fn bool(&self, i: usize) -> gotmpl::Result<bool> {
        match self.get(i) {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.wrong_type(i, "bool")),
        }
    }

    pub(crate) fn map(&self, i: usize) -> gotmpl::Result<Map> {
        match self.get(i) {
            Value::Map(m) => Ok(m.clone()),
            _ => Err(self.wrong_type(i, "dict")),
        }
    }
}

pub(crate) type Map = Arc<std::collections::BTreeMap<Arc<str>, Value>>;

/// A string value.
pub(crate) fn string(s: impl Into<Arc<str>>) -> Value {
    Value::String(s.into())
}

/// A string value standing for `bytes` (binary kept, see `template::bytes`).
pub(crate) fn from_bytes(b: &[u8]) -> Value {
    Value::String(bytes::encode(b).into())
}

/// Go's name for a value's type (`%T`), as Sprig's `typeOf` and Go's errors show it.
pub(crate) fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Nil => "<nil>",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Uint(_) => "uint64",
        Value::Float(_) => "float64",
        Value::String(_) => "string",
        Value::List(_) => "[]interface {}",
        Value::Map(_) => "map[string]interface {}",
        Value::Function(_) => "func",
    }
}

/// Go's `reflect.Kind` name of a value (Sprig's `kindOf`).
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Nil => "invalid",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Uint(_) => "uint64",
        Value::Float(_) => "float64",
        Value::String(_) => "string",
        Value::List(_) => "slice",
        Value::Map(_) => "map",
        Value::Function(_) => "func",
    }
}

/// Sprig's `strval`: a string as is, anything else as `fmt.Sprintf("%v")`.
pub(crate) fn strval(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// Sprig's `empty`: nil, false, 0, "" and empty lists and maps.
pub(crate) fn is_empty(v: &Value) -> bool {
    !v.is_truthy() && !matches!(v, Value::Function(_))
}

/// Sprig's `toInt64` (via `cast.ToInt64E`): numbers truncated, bools 0/1, strings parsed
/// (decimal, or `0x`/`0`-prefixed), anything else 0.
pub(crate) fn to_int64(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        Value::Uint(n) => *n as i64,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => parse_int(s.trim()).unwrap_or(0),
        _ => 0,
    }
}

/// Go's `strconv.ParseInt(s, 0, 0)`: optional sign, `0x`/`0o`/`0b`/`0` prefixes, `_` separators.
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(b) = lower.strip_prefix("0x") {
        (16, b)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b)
    } else if let Some(b) = lower.strip_prefix("0o") {
        (8, b)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || body.starts_with('_') || body.ends_with('_') {
        return None;
    }
    let body = if radix == 10 {
        body.to_owned()
    } else {
        body.replace('_', "")
    };
    let magnitude = i128::from_str_radix(&body, radix).ok()?;
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).ok()
}
