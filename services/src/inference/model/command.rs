//! The `command` adapter: a user's model as an external program (a Python script, say), started
//! once and kept running, exchanging JSON lines over stdin/stdout:
//!
//! - after loading, the program writes `{"ready": true, "model": "<name>"}`;
//! - for each request it reads `{"id": "<id>", "input": <json>}` and writes, in order,
//!   `{"id": "<id>", "output": <json>}` or `{"id": "<id>", "error": "<reason>"}`.
//!
//! A micro-batch is written in one go and its answers read back, so the program may batch too.
//! The program's stderr goes to ours. If it exits, answers out of order, writes garbage or takes
//! longer than `batch_timeout`, that is a crash ([`ModelError::Crashed`]): it is killed and the
//! worker loads it again. Example: `examples/inference/cinema_model.py`.

use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::{Model, ModelError, ModelOutput};

/// Longest line accepted from the program.
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct CommandConfig {
    /// The program and its arguments.
    pub argv: Vec<String>,
    pub load_timeout: Duration,
    pub batch_timeout: Duration,
}

impl CommandConfig {
    /// Splits a command line on whitespace (no shell quoting: wrap anything fancier in a script).
    pub fn parse(command: &str) -> Result<Self, ModelError> {
        let argv: Vec<String> = command.split_whitespace().map(str::to_string).collect();
        if argv.is_empty() {
            return Err(ModelError::Load("the model command is empty".into()));
        }
        Ok(CommandConfig {
            argv,
            load_timeout: Duration::from_secs(600),
            batch_timeout: Duration::from_secs(60),
        })
    }
}

#[derive(Debug)]
pub struct CommandModel {
    config: CommandConfig,
    name: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

#[derive(Debug, Deserialize)]
struct Ready {
    ready: bool,
    model: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Answer {
    id: String,
    output: Option<Value>,
    error: Option<String>,
}

impl CommandModel {
    async fn read_line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .await
            .map_err(|e| format!("reading the program's output: {e}"))?;
        if n == 0 {
            let status = match self.child.try_wait() {
                Ok(Some(s)) => s.to_string(),
                _ => "closed its stdout".into(),
            };
            return Err(format!("the model program exited ({status})"));
        }
        if line.len() > MAX_LINE_BYTES {
            return Err(format!("a line of {} bytes from the program", line.len()));
        }
        Ok(line)
    }

    async fn exchange(&mut self, batch: &[Value]) -> Result<Vec<ModelOutput>, String> {
        let mut out = Vec::new();
        for (i, input) in batch.iter().enumerate() {
            let mut line = json!({"id": i.to_string(), "input": input}).to_string();
            line.push('\n');
            out.extend_from_slice(line.as_bytes());
        }
        self.stdin
            .write_all(&out)
            .await
            .map_err(|e| format!("writing to the model program: {e}"))?;
        self.stdin
            .flush()
            .await
            .map_err(|e| format!("writing to the model program: {e}"))?;
        let mut results = Vec::with_capacity(batch.len());
        for i in 0..batch.len() {
            let line = self.read_line().await?;
            let a: Answer = serde_json::from_str(&line)
                .map_err(|e| format!("the program wrote an invalid answer ({e}): {line:.200}"))?;
            if a.id != i.to_string() {
                return Err(format!("answer for id {} where {i} was due", a.id));
            }
            results.push(match (a.output, a.error) {
                (_, Some(e)) => Err(e),
                (Some(o), None) => Ok(o),
                (None, None) => Err("the model gave neither output nor error".into()),
            });
        }
        Ok(results)
    }
}

impl Model for CommandModel {
    type Config = CommandConfig;

    async fn load(config: &CommandConfig) -> Result<Self, ModelError> {
        tracing::info!(command = ?config.argv, "starting the model program");
        let mut child = Command::new(&config.argv[0])
            .args(&config.argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ModelError::Load(format!("cannot start {:?}: {e}", config.argv[0])))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(ModelError::Load("the program's pipes are missing".into()));
        };
        let mut model = CommandModel {
            config: config.clone(),
            name: String::new(),
            child,
            stdin,
            stdout: BufReader::new(stdout),
        };
        let line = tokio::time::timeout(config.load_timeout, model.read_line())
            .await
            .map_err(|_| ModelError::Load(format!("not ready within {:?}", config.load_timeout)))?
            .map_err(ModelError::Load)?;
        let ready: Ready = serde_json::from_str(&line).map_err(|e| {
            ModelError::Load(format!(
                "expected {{\"ready\": true}} first, got {line:.200} ({e})"
            ))
        })?;
        if !ready.ready {
            return Err(ModelError::Load("the program said it is not ready".into()));
        }
        model.name = ready.model.unwrap_or_else(|| "command".into());
        tracing::info!(model = %model.name, "model program ready");
        Ok(model)
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn infer(&mut self, batch: &[Value]) -> Result<Vec<ModelOutput>, ModelError> {
        let timeout = self.config.batch_timeout;
        let result = match tokio::time::timeout(timeout, self.exchange(batch)).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {timeout:?}")),
        };
        result.map_err(|reason| {
            // Whatever state the program is in, it is not trusted with another batch.
            let _ = self.child.start_kill();
            ModelError::Crashed(reason)
        })
    }
}
