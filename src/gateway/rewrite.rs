//! Rewrites the URIs inside results so that every URI a client sees carries its target's
//! prefix (resource links, embedded resources, read contents), and nothing else is touched;
//! and task ids, which the client sees as `{target}/{id}` (both task eras).

use serde_json::Value;

use super::naming::expose_uri;

fn prefix_uri(v: &mut Value, key: &str, prefix: &str) {
    if let Some(Value::String(uri)) = v.get_mut(key) {
        *uri = expose_uri(prefix, uri);
    }
}

/// One content block of a tool result or prompt message.
fn content_block(block: &mut Value, prefix: &str) {
    match block.get("type").and_then(Value::as_str) {
        Some("resource_link") => prefix_uri(block, "uri", prefix),
        Some("resource") => {
            if let Some(resource) = block.get_mut("resource") {
                prefix_uri(resource, "uri", prefix);
            }
        }
        _ => {}
    }
}

/// Applies the prefix to the URIs in the result of `method`.
pub fn result_uris(method: &str, result: &mut Value, prefix: &str) {
    if prefix.is_empty() {
        return;
    }
    match method {
        "tools/call" => {
            if let Some(Value::Array(blocks)) = result.get_mut("content") {
                blocks.iter_mut().for_each(|b| content_block(b, prefix));
            }
        }
        "prompts/get" => {
            if let Some(Value::Array(messages)) = result.get_mut("messages") {
                for m in messages {
                    match m.get_mut("content") {
                        Some(Value::Array(blocks)) => {
                            blocks.iter_mut().for_each(|b| content_block(b, prefix))
                        }
                        Some(block) => content_block(block, prefix),
                        None => {}
                    }
                }
            }
        }
        // A finished 2026 task inlines its tool result.
        "tasks/get" => {
            if let Some(inner) = result.get_mut("result") {
                result_uris("tools/call", inner, prefix);
            }
        }
        "resources/read" => {
            if let Some(Value::Array(contents)) = result.get_mut("contents") {
                contents
                    .iter_mut()
                    .for_each(|c| prefix_uri(c, "uri", prefix));
            }
        }
        _ => {}
    }
}

const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

/// Task ids are only unique per upstream: the client sees `{target}/{taskId}` (target names
/// cannot contain '/'), in task results, task lists, related-task metadata and status updates.
pub fn expose_task_ids(v: &mut Value, target: &str) {
    let prefix = |id: &mut Value| {
        if let Value::String(s) = id {
            *s = format!("{target}/{s}");
        }
    };
    if let Some(id) = v.get_mut("task").and_then(|t| t.get_mut("taskId")) {
        prefix(id);
    }
    if v.get("status").is_some()
        && let Some(id) = v.get_mut("taskId")
    {
        prefix(id);
    }
    if let Some(Value::Array(tasks)) = v.get_mut("tasks") {
        for t in tasks {
            if let Some(id) = t.get_mut("taskId") {
                prefix(id);
            }
        }
    }
    if let Some(id) = v
        .get_mut("_meta")
        .and_then(|m| m.get_mut(RELATED_TASK))
        .and_then(|r| r.get_mut("taskId"))
    {
        prefix(id);
    }
}

/// Splits an exposed task id into (target name, upstream task id).
pub fn split_task_id(exposed: &str) -> Option<(&str, &str)> {
    exposed
        .split_once('/')
        .filter(|(t, id)| !t.is_empty() && !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prefixes_links_and_embedded_resources_only() {
        let mut r = json!({"content": [
            {"type": "text", "text": "uri: file:///x"},
            {"type": "resource_link", "uri": "file:///a", "name": "a"},
            {"type": "resource", "resource": {"uri": "test://b", "text": "b"}}
        ], "structuredContent": {"uri": "keep"}});
        result_uris("tools/call", &mut r, "docs");
        assert_eq!(r["content"][1]["uri"], "docs+file:///a");
        assert_eq!(r["content"][2]["resource"]["uri"], "docs+test://b");
        assert_eq!(r["content"][0]["text"], "uri: file:///x");
        assert_eq!(r["structuredContent"]["uri"], "keep");

        let mut p = json!({"messages": [{"role": "user", "content": {"type": "resource", "resource": {"uri": "x://1"}}}]});
        result_uris("prompts/get", &mut p, "d");
        assert_eq!(p["messages"][0]["content"]["resource"]["uri"], "d+x://1");

        let mut task = json!({"task": {"taskId": "t1", "status": "working"}, "_meta": {RELATED_TASK: {"taskId": "t1"}}});
        expose_task_ids(&mut task, "github");
        assert_eq!(task["task"]["taskId"], "github/t1");
        assert_eq!(task["_meta"][RELATED_TASK]["taskId"], "github/t1");
        assert_eq!(split_task_id("github/a/b"), Some(("github", "a/b")));
        assert_eq!(split_task_id("nogithub"), None);

        // 2026 tasks extension: flat CreateTaskResult and DetailedTask with an inlined result.
        let mut created = json!({"resultType": "task", "taskId": "t9", "status": "working"});
        expose_task_ids(&mut created, "conf");
        assert_eq!(created["taskId"], "conf/t9");
        let mut detailed = json!({"taskId": "t9", "status": "completed", "resultType": "complete",
            "result": {"content": [{"type": "resource_link", "uri": "file:///r", "name": "r"}]}});
        result_uris("tasks/get", &mut detailed, "conf");
        expose_task_ids(&mut detailed, "conf");
        assert_eq!(detailed["taskId"], "conf/t9");
        assert_eq!(detailed["result"]["content"][0]["uri"], "conf+file:///r");

        let mut read = json!({"contents": [{"uri": "x://1", "text": "t"}]});
        result_uris("resources/read", &mut read, "");
        assert_eq!(
            read["contents"][0]["uri"], "x://1",
            "unprefixed targets are untouched"
        );
    }
}
