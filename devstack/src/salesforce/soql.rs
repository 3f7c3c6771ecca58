//! A small SOQL subset: `SELECT f, ... FROM Obj [WHERE expr] [ORDER BY f [ASC|DESC], ...]
//! [LIMIT n]`, where `expr` joins conditions with AND and OR (AND binding tighter) and groups them
//! in parentheses, and a condition is `field op literal` with =, !=, <, <=, >, >=, LIKE, IN (...),
//! NOT IN (...); parsed and evaluated over the org's records.
use super::{parse_date_ms, parse_datetime_ms, FieldType, Record};
use serde_json::Value;
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    /// Unquoted date or datetime literal, as epoch ms.
    Instant(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: String,
    pub op: String,
    pub values: Vec<Literal>,
}

/// A WHERE clause: conditions joined by AND and OR.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Cond(Condition),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl Expr {
    fn holds(&self, r: &Record, kind: &impl Fn(&str) -> Option<FieldType>) -> bool {
        match self {
            Expr::Cond(c) => holds(c, r, kind(&c.field)),
            Expr::And(all) => all.iter().all(|e| e.holds(r, kind)),
            Expr::Or(any) => any.iter().any(|e| e.holds(r, kind)),
        }
    }

    fn fields<'a>(&'a self, out: &mut Vec<&'a String>) {
        match self {
            Expr::Cond(c) => out.push(&c.field),
            Expr::And(es) | Expr::Or(es) => es.iter().for_each(|e| e.fields(out)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub fields: Vec<String>,
    pub from: String,
    pub filter: Option<Expr>,
    pub order_by: Vec<(String, bool)>,
    pub limit: Option<usize>,
}

fn tokens(q: &str) -> Result<Vec<String>, String> {
    let mut out = vec![];
    let chars: Vec<char> = q.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let mut s = String::from("'");
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated string literal".into()),
                    Some('\\') => {
                        let next = chars.get(i + 1).copied().ok_or("dangling escape")?;
                        s.push(match next {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            other => other,
                        });
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(s);
        } else if "(),".contains(c) {
            out.push(c.to_string());
            i += 1;
        } else if "=!<>".contains(c) {
            let mut op = c.to_string();
            if chars.get(i + 1) == Some(&'=') || (c == '<' && chars.get(i + 1) == Some(&'>')) {
                op.push(chars[i + 1]);
                i += 1;
            }
            out.push(op);
            i += 1;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !"(),=!<>'".contains(chars[i]) {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        }
    }
    Ok(out)
}

fn literal(tok: &str) -> Result<Literal, String> {
    if let Some(s) = tok.strip_prefix('\'') {
        return Ok(Literal::Str(s.to_string()));
    }
    match tok.to_ascii_lowercase().as_str() {
        "true" => return Ok(Literal::Bool(true)),
        "false" => return Ok(Literal::Bool(false)),
        "null" => return Ok(Literal::Null),
        _ => {}
    }
    if let Some(ms) = parse_datetime_ms(tok) {
        return Ok(Literal::Instant(ms));
    }
    if tok.len() == 10 {
        if let Some(ms) = parse_date_ms(tok) {
            return Ok(Literal::Instant(ms));
        }
    }
    tok.parse::<f64>()
        .map(Literal::Num)
        .map_err(|_| format!("unexpected token: {tok}"))
}

pub fn parse(q: &str) -> Result<Select, String> {
    let mut r = Reader {
        t: tokens(q)?,
        i: 0,
    };
    if !r.eat("SELECT") {
        return Err("unexpected token: expected SELECT".into());
    }
    let fields = r.fields()?;
    let from = r.next().ok_or("expected an object after FROM")?;
    let filter = if r.eat("WHERE") {
        Some(r.or_expr()?)
    } else {
        None
    };
    let order_by = if r.kw(0, "ORDER") && r.kw(1, "BY") {
        r.i += 2;
        r.order_by()?
    } else {
        vec![]
    };
    let limit = if r.eat("LIMIT") {
        let n = r.next().and_then(|n| n.parse().ok());
        Some(n.ok_or("LIMIT takes a number")?)
    } else {
        None
    };
    if let Some(extra) = r.peek() {
        return Err(format!("unexpected token: {extra}"));
    }
    Ok(Select {
        fields,
        from,
        filter,
        order_by,
        limit,
    })
}

/// Tokens of a statement and the position reached.
struct Reader {
    t: Vec<String>,
    i: usize,
}

impl Reader {
    /// Whether the token `ahead` of the position is the keyword `word`.
    fn kw(&self, ahead: usize, word: &str) -> bool {
        self.t
            .get(self.i + ahead)
            .is_some_and(|x| x.eq_ignore_ascii_case(word))
    }

    /// Moves past keyword `word` if it is next.
    fn eat(&mut self, word: &str) -> bool {
        let found = self.kw(0, word);
        if found {
            self.i += 1;
        }
        found
    }

    fn peek(&self) -> Option<&str> {
        self.t.get(self.i).map(String::as_str)
    }

    fn next(&mut self) -> Option<String> {
        let tok = self.t.get(self.i).cloned();
        self.i += 1;
        tok
    }

    /// The selected fields, up to and past FROM.
    fn fields(&mut self) -> Result<Vec<String>, String> {
        let mut fields = vec![];
        while self.i < self.t.len() && !self.kw(0, "FROM") {
            if self.t[self.i] != "," {
                fields.push(self.t[self.i].clone());
            }
            self.i += 1;
        }
        if fields.is_empty() {
            return Err("unexpected token: FROM; no fields selected".into());
        }
        self.i += 1;
        Ok(fields)
    }

    /// `a OR b OR ...`, each an AND group.
    fn or_expr(&mut self) -> Result<Expr, String> {
        let mut any = vec![self.and_expr()?];
        while self.eat("OR") {
            any.push(self.and_expr()?);
        }
        Ok(if any.len() == 1 {
            any.remove(0)
        } else {
            Expr::Or(any)
        })
    }

    /// `a AND b AND ...`, each a condition or a parenthesised expression.
    fn and_expr(&mut self) -> Result<Expr, String> {
        let mut all = vec![self.primary()?];
        while self.eat("AND") {
            all.push(self.primary()?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Expr::And(all)
        })
    }

    fn primary(&mut self) -> Result<Expr, String> {
        if self.peek() != Some("(") {
            return Ok(Expr::Cond(self.condition()?));
        }
        self.i += 1;
        let inner = self.or_expr()?;
        if self.next().as_deref() != Some(")") {
            return Err("expected ) to close a group of conditions".into());
        }
        Ok(inner)
    }

    /// `field op literal`, or `field [NOT] IN (literal, ...)`.
    fn condition(&mut self) -> Result<Condition, String> {
        let field = self.next().ok_or("expected a condition")?;
        let mut op = self
            .next()
            .ok_or("expected an operator")?
            .to_ascii_uppercase();
        if op == "NOT" && self.eat("IN") {
            op = "NOT IN".into();
        }
        let values = if op == "IN" || op == "NOT IN" {
            self.in_list(&op)?
        } else {
            if !["=", "!=", "<>", "<", "<=", ">", ">=", "LIKE"].contains(&op.as_str()) {
                return Err(format!("unexpected token: {op}"));
            }
            vec![literal(&self.next().ok_or("expected a value")?)?]
        };
        Ok(Condition { field, op, values })
    }

    fn in_list(&mut self, op: &str) -> Result<Vec<Literal>, String> {
        if self.next().as_deref() != Some("(") {
            return Err(format!("expected ( after {op}"));
        }
        let mut values = vec![];
        loop {
            match self.next().ok_or("unterminated IN list")?.as_str() {
                ")" => return Ok(values),
                "," => {}
                tok => values.push(literal(tok)?),
            }
        }
    }

    /// `field [ASC|DESC], ...` after ORDER BY.
    fn order_by(&mut self) -> Result<Vec<(String, bool)>, String> {
        let mut order_by = vec![];
        loop {
            let field = self.next().ok_or("expected a field after ORDER BY")?;
            let asc = !self.eat("DESC");
            if asc {
                self.eat("ASC");
            }
            order_by.push((field, asc));
            if self.peek() != Some(",") {
                return Ok(order_by);
            }
            self.i += 1;
        }
    }
}

fn as_key(value: Option<&Value>, kind: Option<FieldType>) -> Literal {
    match value {
        None | Some(Value::Null) => Literal::Null,
        Some(Value::Bool(b)) => Literal::Bool(*b),
        Some(Value::Number(n)) => Literal::Num(n.as_f64().unwrap_or_default()),
        Some(Value::String(s)) => match kind {
            Some(FieldType::Datetime) => parse_datetime_ms(s)
                .map(Literal::Instant)
                .unwrap_or(Literal::Str(s.clone())),
            Some(FieldType::Date) => parse_date_ms(s)
                .map(Literal::Instant)
                .unwrap_or(Literal::Str(s.clone())),
            _ => Literal::Str(s.clone()),
        },
        Some(other) => Literal::Str(other.to_string()),
    }
}

fn compare(a: &Literal, b: &Literal) -> Option<Ordering> {
    match (a, b) {
        (Literal::Str(x), Literal::Str(y)) => Some(x.cmp(y)),
        (Literal::Num(x), Literal::Num(y)) => x.partial_cmp(y),
        (Literal::Instant(x), Literal::Instant(y)) => Some(x.cmp(y)),
        (Literal::Bool(x), Literal::Bool(y)) => Some(x.cmp(y)),
        (Literal::Null, Literal::Null) => Some(Ordering::Equal),
        _ => None,
    }
}

fn like(value: &Literal, pattern: &Literal) -> bool {
    let (Literal::Str(v), Literal::Str(p)) = (value, pattern) else {
        return false;
    };
    let v = v.to_lowercase();
    let parts: Vec<String> = p.to_lowercase().split('%').map(str::to_string).collect();
    let mut pos = 0;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            if !v.starts_with(part.as_str()) {
                return false;
            }
            pos = part.len();
        } else if i == parts.len() - 1 {
            return v[pos..].ends_with(part.as_str());
        } else if let Some(found) = v[pos..].find(part.as_str()) {
            pos += found + part.len();
        } else {
            return false;
        }
    }
    parts.len() == 1 && v == parts[0] || parts.len() > 1
}

fn holds(c: &Condition, record: &Record, kind: Option<FieldType>) -> bool {
    let value = as_key(record.get(&c.field), kind);
    let eq = |l: &Literal| compare(&value, l) == Some(Ordering::Equal);
    match c.op.as_str() {
        "=" => eq(&c.values[0]),
        "!=" | "<>" => !eq(&c.values[0]),
        "<" => compare(&value, &c.values[0]) == Some(Ordering::Less),
        "<=" => matches!(
            compare(&value, &c.values[0]),
            Some(Ordering::Less | Ordering::Equal)
        ),
        ">" => compare(&value, &c.values[0]) == Some(Ordering::Greater),
        ">=" => matches!(
            compare(&value, &c.values[0]),
            Some(Ordering::Greater | Ordering::Equal)
        ),
        "LIKE" => like(&value, &c.values[0]),
        "IN" => c.values.iter().any(eq),
        "NOT IN" => !c.values.iter().any(eq),
        _ => false,
    }
}

/// Runs `select` over `records`; `kind` tells a field's type (None: no such field).
pub fn run(
    select: &Select,
    records: &[Record],
    kind: impl Fn(&str) -> Option<FieldType>,
) -> Result<Vec<Record>, String> {
    let mut named: Vec<&String> = select.fields.iter().collect();
    if let Some(filter) = &select.filter {
        filter.fields(&mut named);
    }
    named.extend(select.order_by.iter().map(|o| &o.0));
    for f in named {
        if kind(f).is_none() {
            return Err(format!("No such column '{f}' on entity '{}'", select.from));
        }
    }
    let mut rows: Vec<&Record> = records
        .iter()
        .filter(|r| select.filter.as_ref().is_none_or(|e| e.holds(r, &kind)))
        .collect();
    rows.sort_by(|a, b| {
        for (f, asc) in &select.order_by {
            let (x, y) = (as_key(a.get(f), kind(f)), as_key(b.get(f), kind(f)));
            // SOQL sorts nulls first ascending.
            let o = match (&x, &y) {
                (Literal::Null, Literal::Null) => Ordering::Equal,
                (Literal::Null, _) => Ordering::Less,
                (_, Literal::Null) => Ordering::Greater,
                _ => compare(&x, &y).unwrap_or(Ordering::Equal),
            };
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    let limit = select.limit.unwrap_or(usize::MAX);
    Ok(rows
        .into_iter()
        .take(limit)
        .map(|r| {
            select
                .fields
                .iter()
                .map(|f| {
                    let key = r
                        .keys()
                        .find(|k| k.eq_ignore_ascii_case(f))
                        .cloned()
                        .unwrap_or_else(|| f.clone());
                    (key.clone(), r.get(&key).cloned().unwrap_or(Value::Null))
                })
                .collect()
        })
        .collect())
}
