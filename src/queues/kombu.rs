//! kombu's Redis layout and Celery's message format: which lists hold a queue, which queue a
//! binding names, and what a message on a list says (task, id, arguments) without running it.

use base64::Engine;
use serde_json::Value;

use super::Message;
use crate::format::truncate;

/// kombu's separator between a queue's name and its priority step.
pub const SEP: &str = "\x06\x16";
/// kombu's default priority steps on Redis (0 is the highest and is consumed first).
pub const PRIORITY_STEPS: [u8; 4] = [0, 3, 6, 9];
/// The exchanges whose binding sets name the queues.
pub const EXCHANGES: [&str; 1] = ["celery"];
/// Arguments longer than this are cut in a peek.
pub const ARGS_SHOWN: usize = 200;

/// The Redis list (with the key prefix) that holds messages of `step` on `queue`.
pub fn list(prefix: &str, queue: &str, step: u8) -> String {
    if step == 0 {
        format!("{prefix}{queue}")
    } else {
        format!("{prefix}{queue}{SEP}{step}")
    }
}

/// The lists that hold `queue`'s messages, in the order workers consume them.
pub fn lists(prefix: &str, queue: &str) -> Vec<String> {
    PRIORITY_STEPS
        .iter()
        .map(|step| list(prefix, queue, *step))
        .collect()
}

/// The priority step a message of `priority` goes to (the highest step not above it).
pub fn step_for(priority: u8) -> u8 {
    PRIORITY_STEPS
        .iter()
        .rev()
        .find(|s| **s <= priority)
        .copied()
        .unwrap_or(0)
}

/// The binding set of `exchange`.
pub fn binding_set(prefix: &str, exchange: &str) -> String {
    format!("{prefix}_kombu.binding.{exchange}")
}

/// The queue named by a binding-set member `routing_key SEP pattern SEP queue`.
pub fn bound_queue(member: &str) -> Option<&str> {
    member.rsplit(SEP).next().filter(|q| !q.is_empty())
}

/// The payload of a kombu envelope: its `body`, base64-decoded when the envelope says so.
pub fn body(envelope: &Value) -> Option<Vec<u8>> {
    let body = envelope.get("body")?.as_str()?;
    let encoding = envelope
        .pointer("/properties/body_encoding")
        .and_then(Value::as_str);
    if encoding == Some("base64") {
        base64::engine::general_purpose::STANDARD.decode(body).ok()
    } else {
        Some(body.as_bytes().to_vec())
    }
}

/// What a task message on a queue list says: protocol 2 keeps the task and id in the headers and
/// `[args, kwargs, embed]` in the body; protocol 1 keeps everything in the body. Bodies that are
/// not JSON (pickle, msgpack) are named, not decoded.
pub fn read_message(raw: &str, step: u8) -> Message {
    let bytes = raw.len();
    let Ok(envelope) = serde_json::from_str::<Value>(raw) else {
        return Message {
            task: "(not a kombu message)".into(),
            id: String::new(),
            args: String::new(),
            kwargs: String::new(),
            priority: step,
            eta: None,
            retries: 0,
            bytes,
        };
    };
    let headers = envelope.get("headers").cloned().unwrap_or(Value::Null);
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let content_type = text(&envelope, "content-type").unwrap_or_default();
    let decoded: Option<Value> = if content_type.contains("json") {
        body(&envelope).and_then(|b| serde_json::from_slice(&b).ok())
    } else {
        None
    };
    // Protocol 1: the body is a dict with the task in it.
    let v1 = decoded.as_ref().filter(|d| d.get("task").is_some());
    let from = |key: &str| text(&headers, key).or_else(|| v1.and_then(|d| text(d, key)));
    let (args, kwargs) = match (text(&headers, "argsrepr"), text(&headers, "kwargsrepr")) {
        (Some(a), Some(k)) => (a, k),
        _ => match (&decoded, v1) {
            (_, Some(d)) => (compact(d.get("args")), compact(d.get("kwargs"))),
            (Some(Value::Array(parts)), None) => (compact(parts.first()), compact(parts.get(1))),
            _ if content_type.is_empty() => ("(body not shown)".to_owned(), String::new()),
            _ => (format!("({content_type} body not shown)"), String::new()),
        },
    };
    Message {
        task: from("task").unwrap_or_else(|| "(unnamed)".into()),
        id: from("id").unwrap_or_default(),
        args: truncate(&args, ARGS_SHOWN),
        kwargs: truncate(&kwargs, ARGS_SHOWN),
        priority: envelope
            .pointer("/properties/priority")
            .and_then(Value::as_u64)
            .map_or(step, |p| p.min(255) as u8),
        eta: from("eta"),
        retries: headers
            .get("retries")
            .or_else(|| v1.and_then(|d| d.get("retries")))
            .and_then(Value::as_u64)
            .unwrap_or(0) as u32,
        bytes,
    }
}

fn compact(v: Option<&Value>) -> String {
    v.map_or_else(String::new, Value::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_steps_and_bindings() {
        assert_eq!(
            lists("p:", "emails"),
            [
                "p:emails",
                "p:emails\x06\x163",
                "p:emails\x06\x166",
                "p:emails\x06\x169"
            ]
        );
        assert_eq!(step_for(0), 0);
        assert_eq!(step_for(2), 0);
        assert_eq!(step_for(3), 3);
        assert_eq!(step_for(7), 6);
        assert_eq!(step_for(200), 9);
        assert_eq!(binding_set("p:", "celery"), "p:_kombu.binding.celery");
        assert_eq!(bound_queue("emails\x06\x16\x06\x16emails"), Some("emails"));
        assert_eq!(bound_queue(""), None);
    }

    fn envelope(headers: Value, body: &Value, priority: u8) -> String {
        serde_json::json!({
            "body": base64::engine::general_purpose::STANDARD.encode(body.to_string()),
            "content-encoding": "utf-8", "content-type": "application/json", "headers": headers,
            "properties": {"priority": priority, "body_encoding": "base64", "delivery_tag": "t"},
        })
        .to_string()
    }

    #[test]
    fn protocol_two_reads_the_headers() {
        let raw = envelope(
            serde_json::json!({"task": "app.mail.send", "id": "abc", "argsrepr": "(42,)",
                "kwargsrepr": "{'to': 'x'}", "eta": "2026-11-22T10:00:00+00:00", "retries": 2}),
            &serde_json::json!([[42], {"to": "x"}, {}]),
            6,
        );
        let m = read_message(&raw, 6);
        assert_eq!(m.task, "app.mail.send");
        assert_eq!(m.id, "abc");
        assert_eq!(m.args, "(42,)");
        assert_eq!(m.kwargs, "{'to': 'x'}");
        assert_eq!(m.priority, 6);
        assert_eq!(m.eta.as_deref(), Some("2026-11-22T10:00:00+00:00"));
        assert_eq!(m.retries, 2);
        assert_eq!(m.bytes, raw.len());
    }

    #[test]
    fn without_reprs_the_body_gives_the_arguments() {
        let raw = envelope(
            serde_json::json!({"task": "t", "id": "1"}),
            &serde_json::json!([[1, "two"], {"k": 3}, {}]),
            0,
        );
        let m = read_message(&raw, 0);
        assert_eq!(
            (m.args.as_str(), m.kwargs.as_str()),
            (r#"[1,"two"]"#, r#"{"k":3}"#)
        );
    }

    #[test]
    fn protocol_one_keeps_everything_in_the_body() {
        let raw = envelope(
            Value::Null,
            &serde_json::json!({"task": "old.task", "id": "9", "args": [1], "kwargs": {}, "retries": 1}),
            3,
        );
        let m = read_message(&raw, 3);
        assert_eq!((m.task.as_str(), m.id.as_str()), ("old.task", "9"));
        assert_eq!((m.args.as_str(), m.retries), ("[1]", 1));
    }

    #[test]
    fn other_bodies_are_named_and_long_arguments_cut() {
        let raw =
            serde_json::json!({"body": "gAN9", "content-type": "application/x-python-serialize",
            "headers": {"task": "p", "id": "2"}, "properties": {"body_encoding": "base64"}})
            .to_string();
        let m = read_message(&raw, 9);
        assert_eq!(m.args, "(application/x-python-serialize body not shown)");
        assert_eq!(m.priority, 9, "no priority in the message: the list's step");
        assert_eq!(read_message("not json", 0).task, "(not a kombu message)");
        let long = "é".repeat(ARGS_SHOWN + 5);
        let cut = truncate(&long, ARGS_SHOWN);
        assert_eq!(cut.chars().count(), ARGS_SHOWN + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("short", 10), "short");
    }
}
