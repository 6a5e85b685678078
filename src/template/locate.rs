//! Source positions for errors. gotmpl reports line and column for parse errors only; for
//! execution errors lockstep finds the action that can have caused it in the parse tree, and
//! reports a position only when exactly one action matches (an honest "unknown" beats a guess).

use gotmpl::parse::{CommandNode, Expr, ListNode, Node, Parser, PipeNode, Pos};

use super::Delimiters;

/// A parsed template: the body and the bodies of `{{define}}`s.
pub(crate) struct Tree {
    lists: Vec<ListNode>,
}

pub(crate) fn parse_tree(source: &str, delims: &Delimiters) -> gotmpl::Result<Tree> {
    let (body, defines) = Parser::new(source, &delims.left, &delims.right)?.parse()?;
    let mut lists = vec![body];
    lists.extend(defines.into_iter().map(|d| d.body));
    Ok(Tree { lists })
}

/// 1-based (line, column) of a byte offset; the column counts characters as Go does runes.
pub(crate) fn line_column(source: &str, pos: Pos) -> (usize, usize) {
    let end = floor_char_boundary(source, pos.offset);
    let line_start = source[..end].rfind('\n').map_or(0, |i| i + 1);
    let line = source[..line_start].matches('\n').count() + 1;
    (line, source[line_start..end].chars().count() + 1)
}

fn floor_char_boundary(source: &str, offset: usize) -> usize {
    let mut end = offset.min(source.len());
    while !source.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// The first function called that `known` does not know, in source order.
pub(crate) fn first_unknown_function(
    tree: &Tree,
    known: impl Fn(&str) -> bool,
) -> Option<(String, Pos)> {
    let mut found: Vec<(String, Pos)> = Vec::new();
    tree.visit_exprs(&mut |expr| {
        if let Expr::Identifier(pos, name) = expr
            && !known(name)
        {
            found.push((name.to_string(), *pos));
        }
    });
    found.into_iter().min_by_key(|(_, pos)| pos.offset)
}

/// Where `function` is called, if it is called exactly once.
pub(crate) fn only_call_of(tree: &Tree, function: &str) -> Option<Pos> {
    let mut found = Vec::new();
    tree.visit_exprs(&mut |expr| {
        if let Expr::Identifier(pos, name) = expr
            && name.as_str() == function
        {
            found.push(*pos);
        }
    });
    single(found)
}

/// Where `key` is looked up (`.key`, `$x.key`, `index . "key"`), if in exactly one place.
pub(crate) fn only_lookup_of(tree: &Tree, key: &str) -> Option<Pos> {
    let mut found = Vec::new();
    tree.visit_commands(&mut |command| {
        for expr in &command.args {
            match expr {
                Expr::Field(pos, fields)
                | Expr::Variable(pos, _, fields)
                | Expr::Chain(pos, _, fields)
                    if fields.iter().any(|f| f.as_str() == key) =>
                {
                    found.push(*pos);
                }
                _ => {}
            }
        }
        if let Some(Expr::Identifier(pos, name)) = command.args.first()
            && name.as_str() == "index"
            && command.args[1..]
                .iter()
                .any(|a| matches!(a, Expr::String(_, s) if s.as_ref() == key))
        {
            found.push(*pos);
        }
    });
    single(found)
}

/// Whether `text` is written as a string literal somewhere in the template.
pub(crate) fn is_string_literal(tree: &Tree, text: &str) -> bool {
    let mut found = false;
    tree.visit_exprs(&mut |expr| {
        if let Expr::String(_, s) = expr {
            found |= s.as_ref() == text;
        }
    });
    found
}

fn single(found: Vec<Pos>) -> Option<Pos> {
    match found.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

impl Tree {
    fn visit_commands(&self, f: &mut dyn FnMut(&CommandNode)) {
        for list in &self.lists {
            visit_list(list, f);
        }
    }

    fn visit_exprs(&self, f: &mut dyn FnMut(&Expr)) {
        self.visit_commands(&mut |command| {
            for expr in &command.args {
                visit_expr(expr, f);
            }
        });
    }
}

fn visit_expr(expr: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(expr);
    if let Expr::Chain(_, inner, _) = expr {
        visit_expr(inner, f);
    }
}

fn visit_list(list: &ListNode, f: &mut dyn FnMut(&CommandNode)) {
    for node in &list.nodes {
        visit_node(node, f);
    }
}

fn visit_node(node: &Node, f: &mut dyn FnMut(&CommandNode)) {
    match node {
        Node::List(list) => visit_list(list, f),
        Node::Action(action) => visit_pipe(&action.pipe, f),
        Node::If(branch) | Node::Range(branch) | Node::With(branch) => {
            visit_pipe(&branch.pipe, f);
            visit_list(&branch.body, f);
            if let Some(list) = &branch.else_body {
                visit_list(list, f);
            }
        }
        Node::Template(template) => {
            if let Some(pipe) = &template.pipe {
                visit_pipe(pipe, f);
            }
        }
        Node::Define(define) => visit_list(&define.body, f),
        Node::Text(_) | Node::Break(_) | Node::Continue(_) => {}
    }
}

fn visit_pipe(pipe: &PipeNode, f: &mut dyn FnMut(&CommandNode)) {
    for command in &pipe.commands {
        f(command);
        for expr in &command.args {
            visit_nested(expr, f);
        }
    }
}

/// Sub-pipelines inside arguments: `(b64dec .x)`.
fn visit_nested(expr: &Expr, f: &mut dyn FnMut(&CommandNode)) {
    match expr {
        Expr::Pipe(_, pipe) => visit_pipe(pipe, f),
        Expr::Chain(_, inner, _) => visit_nested(inner, f),
        _ => {}
    }
}

/// A block that is never closed, or an `{{end}}`/`{{else}}` without a block: gotmpl 0.6.1
/// accepts these silently (and drops the text after a stray `{{end}}`); Go rejects them. This
/// scans the actions' first words to restore Go's check. Returns (offset, message).
pub(crate) fn check_blocks(
    source: &str,
    delims: &super::Delimiters,
) -> Result<(), (usize, String)> {
    let (left, right) = (delims.left.as_str(), delims.right.as_str());
    let mut open: Vec<(&str, usize)> = Vec::new();
    let mut at = 0;
    while let Some(found) = source[at..].find(left) {
        let start = at + found;
        let mut i = start + left.len();
        if source[i..].starts_with("- ")
            || source[i..].starts_with("-\t")
            || source[i..].starts_with("-\n")
        {
            i += 1;
        }
        let rest = source[i..].trim_start();
        i = source.len() - rest.len();
        if rest.starts_with("/*") {
            let Some(close) = rest.find("*/") else {
                return Ok(());
            };
            let after = i + close + 2;
            let Some(end) = source[after..].find(right) else {
                return Ok(());
            };
            at = after + end + right.len();
            continue;
        }
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let Some(end) = action_end(source, i, right) else {
            return Ok(());
        };
        at = end;
        match word.as_str() {
            "if" | "range" | "with" | "define" | "block" => open.push((keyword(&word), start)),
            "else" => match open.last() {
                Some((kind, _)) if matches!(*kind, "if" | "range" | "with") => {}
                _ => {
                    return Err((
                        start,
                        "unexpected {{else}}: there is no if, range or with to continue".to_owned(),
                    ));
                }
            },
            "end" if open.pop().is_none() => {
                return Err((
                    start,
                    "unexpected {{end}}: there is no block to close".to_owned(),
                ));
            }
            _ => {}
        }
    }
    match open.last() {
        Some((kind, offset)) => Err((
            *offset,
            format!("unexpected EOF: this {{{{{kind}}}}} is never closed with {{{{end}}}}"),
        )),
        None => Ok(()),
    }
}

fn keyword(word: &str) -> &'static str {
    match word {
        "if" => "if",
        "range" => "range",
        "with" => "with",
        "define" => "define",
        _ => "block",
    }
}

/// The offset just past the right delimiter of the action whose body starts at `from`,
/// skipping quoted strings, raw strings and character literals.
fn action_end(source: &str, from: usize, right: &str) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        if source[i..].starts_with(right) {
            return Some(i + right.len());
        }
        match bytes[i] {
            b'"' | b'\'' => {
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}
