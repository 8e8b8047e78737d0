//! The bridge for reflow's legacy clients: a modern upstream's `input_required` result becomes
//! server→client requests to the gateway (related to the call, so they reach the caller's
//! stream), and the request is retried with the answers as `inputResponses`.

use super::*;

impl ModernConn {
    /// The request, retried with `inputResponses` while the upstream answers `input_required`.
    pub(super) async fn call_bridged(
        self: Arc<Self>,
        id: Value,
        method: &str,
        params: Option<Value>,
        bridge: bool,
    ) -> Result<Value, UpstreamError> {
        let mut params = self.with_meta(params);
        let mut relisted = false;
        // A retry is a new request: it gets a JSON-RPC id of its own (SEP-2322).
        let mut wire = id.clone();
        for _ in 0..MAX_INPUT_ROUNDS {
            let mut result = self.exchange(&wire, &id, method, &params).await;
            if !relisted && self.missing_header_params(method, &params, &result) {
                // A call before this connection saw the tool listed: learn its `x-mcp-header`
                // parameters now and send the call once more, with them.
                relisted = true;
                self.relist_tools().await;
                wire = self.core.next_id();
                result = self.exchange(&wire, &id, method, &params).await;
            }
            self.after_failure(&result);
            let mut result = result?;
            if result.get("resultType").and_then(Value::as_str) != Some("input_required") {
                if method == "tools/list" {
                    self.learn_header_params(&mut result);
                }
                return Ok(result);
            }
            if !bridge {
                return Ok(result);
            }
            let responses = self.ask_client(&id, &result).await?;
            wire = self.core.next_id();
            let obj = params.as_object_mut().expect("with_meta builds an object");
            obj.insert("inputResponses".into(), Value::Object(responses));
            match result.get("requestState") {
                Some(state) => obj.insert("requestState".into(), state.clone()),
                None => obj.remove("requestState"),
            };
        }
        Err(UpstreamError::Protocol(format!(
            "the upstream asked for input more than {MAX_INPUT_ROUNDS} times in one request"
        )))
    }

    /// Each `inputRequests` entry becomes a server→client request to the gateway (related to
    /// `id`, so it reaches the right client stream); the answers keyed like the requests.
    async fn ask_client(
        &self,
        id: &Value,
        result: &Value,
    ) -> Result<Map<String, Value>, UpstreamError> {
        let requests = match result.get("inputRequests") {
            Some(Value::Object(m)) => m.clone(),
            None | Some(Value::Null) => Map::new(),
            Some(_) => {
                return Err(UpstreamError::Protocol(
                    "inputRequests must be an object".into(),
                ));
            }
        };
        let mut waiting = Vec::with_capacity(requests.len());
        for (key, request) in requests {
            let Some(method) = request.get("method").and_then(Value::as_str) else {
                return Err(UpstreamError::Protocol(format!(
                    "input request {key:?} has no method"
                )));
            };
            let rid = format!(
                "reflow-ir-{}",
                self.input_ids.fetch_add(1, Ordering::Relaxed)
            );
            let (tx, rx) = oneshot::channel();
            self.input_waiters
                .lock()
                .expect("input waiters lock poisoned")
                .insert(id_key(&Value::String(rid.clone())), tx);
            let message = jsonrpc::request(
                Value::String(rid.clone()),
                method,
                request.get("params").cloned(),
            );
            self.core.deliver(message, Some(id.clone())).await;
            waiting.push((key, rid, rx));
        }
        let mut responses = Map::new();
        for (key, rid, rx) in waiting {
            let answer = rx.await;
            self.input_waiters
                .lock()
                .expect("input waiters lock poisoned")
                .remove(&id_key(&Value::String(rid)));
            match answer {
                Ok(Ok(result)) => {
                    responses.insert(key, result);
                }
                Ok(Err(e)) => return Err(UpstreamError::Rpc(e)),
                Err(_) => return Err(UpstreamError::Closed),
            }
        }
        Ok(responses)
    }
}
