//! Lists and dicts (Sprig's "Lists", "Dicts" groups, and `join sortAlpha split splitList splitn
//! toStrings until untilStep seq`).
//!
//! Values are immutable here: `set` and `unset` return the changed dict, and the dict passed in
//! is unchanged (in Go they change it in place, so `{{ $_ := set $d "k" "v" }}` changes `$d`).
//! Write `{{ $d = set $d "k" "v" }}` instead. In Go, Sprig's dict functions reject ESO's data
//! map (a `map[string]string`); here `hasKey . "k"` and `get . "k"` work on it.

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::Value;

use super::Func;
use super::args::{Args, Map, is_empty, kind_of, string, strval, to_int64};

pub(super) const FUNCTIONS: &[(&str, Func)] = &[
    ("list", list),
    ("tuple", list),
    ("dict", dict),
    ("get", get),
    ("set", set),
    ("unset", unset),
    ("hasKey", has_key),
    ("pluck", pluck),
    ("keys", keys),
    ("pick", pick),
    ("omit", omit),
    ("values", values),
    ("merge", merge),
    ("mustMerge", merge),
    ("mergeOverwrite", merge_overwrite),
    ("mustMergeOverwrite", merge_overwrite),
    ("dig", dig),
    ("deepCopy", deep_copy),
    ("mustDeepCopy", deep_copy),
    ("append", push),
    ("push", push),
    ("mustAppend", push),
    ("mustPush", push),
    ("prepend", prepend),
    ("mustPrepend", prepend),
    ("first", first),
    ("mustFirst", first),
    ("last", last),
    ("mustLast", last),
    ("rest", rest),
    ("mustRest", rest),
    ("initial", initial),
    ("mustInitial", initial),
    ("reverse", reverse),
    ("mustReverse", reverse),
    ("uniq", uniq),
    ("mustUniq", uniq),
    ("without", without),
    ("mustWithout", without),
    ("has", has),
    ("mustHas", has),
    ("compact", compact),
    ("mustCompact", compact),
    ("concat", concat),
    ("chunk", chunk),
    ("mustChunk", chunk),
    ("join", join),
    ("sortAlpha", sort_alpha),
    ("toStrings", to_strings),
    ("split", split),
    ("splitList", split_list),
    ("splitn", splitn),
    ("until", until),
    ("untilStep", until_step),
    ("seq", seq),
];

/// Lists longer than this are refused (`until`, `seq`, `repeat`-like growth).
const MAX_LIST_LEN: i64 = 100_000;

fn new_list(items: Vec<Value>) -> Value {
    Value::List(items.into())
}

fn new_map(map: BTreeMap<Arc<str>, Value>) -> Value {
    Value::Map(Arc::new(map))
}

/// The list argument `i`, or Go's "Cannot <op> on type <kind>".
fn list_arg(a: &Args<'_>, i: usize, op: &str) -> gotmpl::Result<Arc<[Value]>> {
    match a.get(i) {
        Value::List(l) => Ok(l.clone()),
        other => Err(a.error(format_args!("cannot {op} on type {}", kind_of(other)))),
    }
}

/// Go's `reflect.DeepEqual` on template values (an int and a float are never equal).
pub(super) fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Uint(x), Value::Uint(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| deep_equal(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && deep_equal(v1, v2))
        }
        _ => false,
    }
}

fn list(args: &[Value]) -> gotmpl::Result<Value> {
    Ok(new_list(args.to_vec()))
}

/// `dict "a" 1 "b" 2`; keys are formatted as strings; a missing last value is "".
fn dict(args: &[Value]) -> gotmpl::Result<Value> {
    let mut map = BTreeMap::new();
    for pair in args.chunks(2) {
        let key: Arc<str> = strval(&pair[0]).into();
        let value = pair.get(1).cloned().unwrap_or_else(|| string(""));
        map.insert(key, value);
    }
    Ok(new_map(map))
}

/// `get $d "k"`: the value, or "" when absent.
fn get(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("get", args).exactly(2)?;
    let (map, key) = (a.map(0)?, a.string(1)?);
    Ok(map.get(&key).cloned().unwrap_or_else(|| string("")))
}

fn set(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("set", args).exactly(3)?;
    let (map, key) = (a.map(0)?, a.string(1)?);
    let mut map = Map::unwrap_or_clone(map);
    map.insert(key, a.get(2).clone());
    Ok(new_map(map))
}

fn unset(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("unset", args).exactly(2)?;
    let (map, key) = (a.map(0)?, a.string(1)?);
    let mut map = Map::unwrap_or_clone(map);
    map.remove(&key);
    Ok(new_map(map))
}

fn has_key(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("hasKey", args).exactly(2)?;
    Ok(Value::Bool(a.map(0)?.contains_key(&*a.string(1)?)))
}

/// `pluck "k" $d1 $d2`: the values of "k" in each dict that has it.
fn pluck(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("pluck", args).at_least(1)?;
    let key = a.string(0)?;
    let mut out = Vec::new();
    for i in 1..a.len() {
        if let Some(v) = a.map(i)?.get(&key) {
            out.push(v.clone());
        }
    }
    Ok(new_list(out))
}

/// `keys $d1 $d2`: all keys, in dict order (sorted within each dict; Go's order is random,
/// so templates pipe to `sortAlpha` anyway).
fn keys(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("keys", args);
    let mut out = Vec::new();
    for i in 0..a.len() {
        out.extend(a.map(i)?.keys().map(|k| Value::String(k.clone())));
    }
    Ok(new_list(out))
}

fn pick(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("pick", args).at_least(1)?;
    let map = a.map(0)?;
    let mut out = BTreeMap::new();
    for i in 1..a.len() {
        let key = a.string(i)?;
        if let Some(v) = map.get(&key) {
            out.insert(key, v.clone());
        }
    }
    Ok(new_map(out))
}

fn omit(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("omit", args).at_least(1)?;
    let mut map = Map::unwrap_or_clone(a.map(0)?);
    for i in 1..a.len() {
        map.remove(&a.string(i)?);
    }
    Ok(new_map(map))
}

fn values(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("values", args).exactly(1)?;
    Ok(new_list(a.map(0)?.values().cloned().collect()))
}

/// mergo's deep merge: nested dicts merge; otherwise the destination keeps its non-empty value
/// (`merge`) or the source wins when its value is not empty (`mergeOverwrite`).
fn merge_into(dst: &mut BTreeMap<Arc<str>, Value>, src: &Map, overwrite: bool) {
    for (key, value) in src.iter() {
        match (dst.get_mut(key), value) {
            (Some(Value::Map(d)), Value::Map(s)) => {
                let mut merged = Map::unwrap_or_clone(d.clone());
                merge_into(&mut merged, s, overwrite);
                *d = Arc::new(merged);
            }
            (Some(existing), value) => {
                if (overwrite && !is_empty(value)) || (!overwrite && is_empty(existing)) {
                    *existing = value.clone();
                }
            }
            (None, value) => {
                dst.insert(key.clone(), value.clone());
            }
        }
    }
}

fn merge_with(name: &'static str, args: &[Value], overwrite: bool) -> gotmpl::Result<Value> {
    let a = Args::new(name, args).at_least(1)?;
    let mut dst = Map::unwrap_or_clone(a.map(0)?);
    for i in 1..a.len() {
        merge_into(&mut dst, &a.map(i)?, overwrite);
    }
    Ok(new_map(dst))
}

fn merge(args: &[Value]) -> gotmpl::Result<Value> {
    merge_with("merge", args, false)
}

fn merge_overwrite(args: &[Value]) -> gotmpl::Result<Value> {
    merge_with("mergeOverwrite", args, true)
}

/// `dig "a" "b" "default" $d`: `$d.a.b`, or the default when a step is missing.
fn dig(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("dig", args).at_least(3)?;
    let n = a.len();
    let default = a.get(n - 2).clone();
    let mut current = Value::Map(a.map(n - 1)?);
    for i in 0..n - 2 {
        let key = a.string(i)?;
        let Value::Map(map) = &current else {
            return Err(a.error(format_args!(
                "step {} of the path is not a dict but {}",
                i + 1,
                kind_of(&current)
            )));
        };
        match map.get(&key) {
            Some(v) => current = v.clone(),
            None => return Ok(default),
        }
    }
    Ok(current)
}

/// Values are immutable, so a copy is the value itself.
fn deep_copy(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("deepCopy", args).exactly(1)?;
    Ok(a.get(0).clone())
}

fn push(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("append", args).exactly(2)?;
    let mut items = list_arg(&a, 0, "push")?.to_vec();
    items.push(a.get(1).clone());
    Ok(new_list(items))
}

fn prepend(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("prepend", args).exactly(2)?;
    let mut items = vec![a.get(1).clone()];
    items.extend(list_arg(&a, 0, "prepend")?.iter().cloned());
    Ok(new_list(items))
}

fn first(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("first", args).exactly(1)?;
    Ok(list_arg(&a, 0, "find first")?
        .first()
        .cloned()
        .unwrap_or(Value::Nil))
}

fn last(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("last", args).exactly(1)?;
    Ok(list_arg(&a, 0, "find last")?
        .last()
        .cloned()
        .unwrap_or(Value::Nil))
}

fn rest(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("rest", args).exactly(1)?;
    let items = list_arg(&a, 0, "find rest")?;
    Ok(new_list(items.iter().skip(1).cloned().collect()))
}

fn initial(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("initial", args).exactly(1)?;
    let items = list_arg(&a, 0, "find initial")?;
    Ok(new_list(items[..items.len().saturating_sub(1)].to_vec()))
}

fn reverse(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("reverse", args).exactly(1)?;
    Ok(new_list(
        list_arg(&a, 0, "find reverse")?
            .iter()
            .rev()
            .cloned()
            .collect(),
    ))
}

fn uniq(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("uniq", args).exactly(1)?;
    let mut out: Vec<Value> = Vec::new();
    for item in list_arg(&a, 0, "find uniq")?.iter() {
        if !out.iter().any(|o| deep_equal(o, item)) {
            out.push(item.clone());
        }
    }
    Ok(new_list(out))
}

fn without(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("without", args).at_least(1)?;
    let omit = &a.all()[1..];
    let out = list_arg(&a, 0, "find without")?
        .iter()
        .filter(|item| !omit.iter().any(|o| deep_equal(o, item)))
        .cloned()
        .collect();
    Ok(new_list(out))
}

fn has(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("has", args).exactly(2)?;
    if matches!(a.get(1), Value::Nil) {
        return Ok(Value::Bool(false));
    }
    let needle = a.get(0);
    Ok(Value::Bool(
        list_arg(&a, 1, "find has")?
            .iter()
            .any(|i| deep_equal(needle, i)),
    ))
}

fn compact(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("compact", args).exactly(1)?;
    Ok(new_list(
        list_arg(&a, 0, "compact")?
            .iter()
            .filter(|v| !is_empty(v))
            .cloned()
            .collect(),
    ))
}

fn concat(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("concat", args);
    let mut out = Vec::new();
    for i in 0..a.len() {
        out.extend(list_arg(&a, i, "concat")?.iter().cloned());
    }
    Ok(new_list(out))
}

fn chunk(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("chunk", args).exactly(2)?;
    let size = a.int(0)?;
    let size = usize::try_from(size)
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| a.error("the chunk size must be positive"))?;
    let items = list_arg(&a, 1, "chunk")?;
    Ok(new_list(
        items.chunks(size).map(|c| new_list(c.to_vec())).collect(),
    ))
}

/// Sprig's `strslice`: a list's non-nil items as strings; nil is []; anything else [it].
fn strings_of(v: &Value) -> Vec<String> {
    match v {
        Value::List(items) => items
            .iter()
            .filter(|i| !matches!(i, Value::Nil))
            .map(strval)
            .collect(),
        Value::Nil => Vec::new(),
        other => vec![strval(other)],
    }
}

fn join(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("join", args).exactly(2)?;
    Ok(string(strings_of(a.get(1)).join(&a.string(0)?)))
}

fn sort_alpha(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("sortAlpha", args).exactly(1)?;
    let mut items = strings_of(a.get(0));
    items.sort();
    Ok(new_list(items.into_iter().map(string).collect()))
}

fn to_strings(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("toStrings", args).exactly(1)?;
    Ok(new_list(
        strings_of(a.get(0)).into_iter().map(string).collect(),
    ))
}

/// Go's `strings.SplitN` (n < 0: all; n == 0: none).
fn go_split(s: &str, sep: &str, n: i64) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    let parts: Vec<String> = if sep.is_empty() {
        s.chars().map(String::from).collect()
    } else {
        s.split(sep).map(str::to_owned).collect()
    };
    match usize::try_from(n) {
        Ok(n) if n < parts.len() => {
            let mut head: Vec<String> = parts[..n - 1].to_vec();
            let consumed: usize = head.iter().map(|p| p.len() + sep.len()).sum();
            head.push(s[consumed..].to_owned());
            head
        }
        _ => parts,
    }
}

fn indexed_parts(parts: Vec<String>) -> Value {
    let map = parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| (Arc::from(format!("_{i}")), string(p)))
        .collect();
    new_map(map)
}

/// `split "," "a,b"` gives a dict `{_0: a, _1: b}` (`{{ (split "," .x)._1 }}`).
fn split(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("split", args).exactly(2)?;
    Ok(indexed_parts(go_split(&a.string(1)?, &a.string(0)?, -1)))
}

fn splitn(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("splitn", args).exactly(3)?;
    Ok(indexed_parts(go_split(
        &a.string(2)?,
        &a.string(0)?,
        a.int(1)?,
    )))
}

fn split_list(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("splitList", args).exactly(2)?;
    let parts = go_split(&a.string(1)?, &a.string(0)?, -1);
    Ok(new_list(parts.into_iter().map(string).collect()))
}

fn stepped(a: &Args<'_>, start: i64, stop: i64, step: i64) -> gotmpl::Result<Value> {
    if step == 0 || (step > 0 && start >= stop) || (step < 0 && start <= stop) {
        return Ok(new_list(Vec::new()));
    }
    let count = (stop - start).abs().saturating_add(step.abs() - 1) / step.abs();
    if count > MAX_LIST_LEN {
        return Err(a.error(format_args!(
            "the list would have more than {MAX_LIST_LEN} items"
        )));
    }
    Ok(new_list(
        (0..count).map(|i| Value::Int(start + i * step)).collect(),
    ))
}

fn until(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("until", args).exactly(1)?;
    let n = a.int(0)?;
    stepped(&a, 0, n, if n < 0 { -1 } else { 1 })
}

fn until_step(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("untilStep", args).exactly(3)?;
    stepped(&a, a.int(0)?, a.int(1)?, a.int(2)?)
}

/// Like the Unix `seq`: `seq 3` is "1 2 3", `seq 2 4`, `seq 0 2 10`; a string of numbers.
fn seq(args: &[Value]) -> gotmpl::Result<Value> {
    let a = Args::new("seq", args);
    let nums: Vec<i64> = a.all().iter().map(to_int64).collect();
    let (start, step, end) = match nums.as_slice() {
        [] => return Ok(string("")),
        [end] => (1, 1, *end),
        [start, end] => (*start, if end >= start { 1 } else { -1 }, *end),
        [start, step, end] => (*start, *step, *end),
        _ => return Err(a.error("seq takes 1 to 3 numbers")),
    };
    if (step > 0 && end < start) || (step < 0 && end > start) || step == 0 {
        return Ok(string(""));
    }
    let stop = if step > 0 { end + 1 } else { end - 1 };
    let Value::List(items) = stepped(&a, start, stop, step)? else {
        return Ok(string(""));
    };
    let text: Vec<String> = items.iter().map(strval).collect();
    Ok(string(text.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{err, ok, run};

    #[test]
    fn dicts() {
        assert_eq!(
            ok(r#"{{ $d := dict "a" 1 "b" "x" }}{{ $d.a }} {{ get $d "b" }} [{{ get $d "z" }}]"#),
            "1 x []"
        );
        assert_eq!(ok(r#"{{ dict "a" }}"#), "map[a:]");
        assert_eq!(
            ok(r#"{{ $d := dict "a" 1 }}{{ $e := set $d "b" 2 }}{{ $d }} {{ $e }}"#),
            "map[a:1] map[a:1 b:2]"
        );
        assert_eq!(
            ok(r#"{{ $d := dict "a" 1 }}{{ $d = set $d "b" 2 }}{{ $d }}"#),
            "map[a:1 b:2]"
        );
        assert_eq!(ok(r#"{{ unset (dict "a" 1 "b" 2) "a" }}"#), "map[b:2]");
        assert_eq!(
            ok(r#"{{ hasKey (dict "a" 1) "a" }} {{ hasKey (dict) "a" }}"#),
            "true false"
        );
        assert_eq!(ok(r#"{{ keys (dict "b" 1 "a" 2) | sortAlpha }}"#), "[a b]");
        assert_eq!(ok(r#"{{ values (dict "b" 1 "a" 2) }}"#), "[2 1]");
        assert_eq!(
            ok(r#"{{ pick (dict "a" 1 "b" 2 "c" 3) "a" "c" }} {{ omit (dict "a" 1 "b" 2) "a" }}"#),
            "map[a:1 c:3] map[b:2]"
        );
        assert_eq!(
            ok(r#"{{ pluck "a" (dict "a" 1) (dict "b" 2) (dict "a" 3) }}"#),
            "[1 3]"
        );
        assert_eq!(
            ok(
                r#"{{ dig "a" "b" "def" (dict "a" (dict "b" "v")) }} {{ dig "a" "x" "def" (dict "a" (dict)) }}"#
            ),
            "v def"
        );
        assert!(
            err(r#"{{ get "x" "a" }}"#).contains(
                "error calling get: wrong type for argument 1; expected dict; got string"
            )
        );
    }

    #[test]
    fn the_data_map_is_a_dict() {
        let out = run(
            r#"{{ hasKey . "a" }} {{ hasKey . "b" }} {{ get . "b" | default "d" }} {{ keys . }}"#,
            &[("a", "1")],
        );
        assert_eq!(out.unwrap(), "true false d [a]");
    }

    #[test]
    fn merges_are_deep() {
        let base = r#"(dict "a" 1 "n" (dict "x" 1 "y" "") "e" "")"#;
        let src = r#"(dict "a" 2 "n" (dict "y" 3 "z" 4) "e" "s" "new" 5)"#;
        assert_eq!(
            ok(&format!("{{{{ merge {base} {src} }}}}")),
            "map[a:1 e:s n:map[x:1 y:3 z:4] new:5]"
        );
        assert_eq!(
            ok(&format!("{{{{ mergeOverwrite {base} {src} }}}}")),
            "map[a:2 e:s n:map[x:1 y:3 z:4] new:5]"
        );
    }

    #[test]
    fn lists() {
        assert_eq!(ok(r#"{{ list 1 "a" }} {{ tuple }}"#), "[1 a] []");
        assert_eq!(
            ok(r#"{{ append (list 1) 2 }} {{ prepend (list 1) 0 }}"#),
            "[1 2] [0 1]"
        );
        assert_eq!(
            ok(
                r#"{{ first (list 1 2 3) }} {{ last (list 1 2 3) }} {{ rest (list 1 2 3) }} {{ initial (list 1 2 3) }}"#
            ),
            "1 3 [2 3] [1 2]"
        );
        assert_eq!(ok(r#"{{ first list }}"#), "<no value>");
        assert_eq!(
            ok(r#"{{ reverse (list 1 2 3) }} {{ uniq (list 1 1 "1" 2) }}"#),
            "[3 2 1] [1 1 2]"
        );
        assert_eq!(
            ok(r#"{{ without (list 1 2 3 2) 2 }} {{ has 2 (list 1 2) }} {{ has 5 (list 1 2) }}"#),
            "[1 3] true false"
        );
        assert_eq!(
            ok(r#"{{ compact (list 1 "" 0 "a") }} {{ concat (list 1) (list 2 3) }}"#),
            "[1 a] [1 2 3]"
        );
        assert_eq!(ok(r#"{{ chunk 2 (list 1 2 3) }}"#), "[[1 2] [3]]");
        assert!(
            err(r#"{{ first "abc" }}"#)
                .contains("error calling first: cannot find first on type string")
        );
        assert!(err(r#"{{ chunk 0 (list 1) }}"#).contains("chunk size must be positive"));
    }

    #[test]
    fn joining_and_splitting() {
        assert_eq!(
            ok(r#"{{ join "," (list "a" 1 nil "b") }} {{ join "," "x" }}"#),
            "a,1,b x"
        );
        assert_eq!(ok(r#"{{ sortAlpha (list "b" "a" "C") }}"#), "[C a b]");
        assert_eq!(
            ok(r#"{{ $p := split "," "a,b,c" }}{{ $p._0 }}{{ $p._2 }}"#),
            "ac"
        );
        assert_eq!(ok(r#"{{ splitn ":" 2 "a:b:c" }}"#), "map[_0:a _1:b:c]");
        assert_eq!(
            ok(r#"{{ splitList "," "a,,b" }} {{ toStrings (list 1 "a") }}"#),
            "[a  b] [1 a]"
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(
            ok(r#"{{ until 3 }} {{ untilStep 0 10 4 }} {{ untilStep 3 0 -1 }}"#),
            "[0 1 2] [0 4 8] [3 2 1]"
        );
        assert_eq!(
            ok(r#"{{ seq 3 }}|{{ seq 2 4 }}|{{ seq 0 5 12 }}|{{ seq 3 1 }}"#),
            "1 2 3|2 3 4|0 5 10|3 2 1"
        );
        assert!(err(r#"{{ until 100000000 }}"#).contains("more than 100000 items"));
    }
}
