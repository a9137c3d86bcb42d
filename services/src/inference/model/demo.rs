//! The built-in demo model: shows the pattern under realistic slowness without any ML stack.
//! Loading sleeps `load_time`; each micro-batch sleeps `latency` (one forward pass over the
//! batch, as on a GPU), then echoes every input with its size.
//!
//! For the failure paths: an input object with `"fail": "<reason>"` fails that request with the
//! reason; `"crash": true` crashes the model (the whole micro-batch), as a dying process would.

use std::time::Duration;

use serde_json::{json, Value};

use super::{Model, ModelError, ModelOutput};

#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub name: String,
    pub load_time: Duration,
    pub latency: Duration,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            name: "demo".into(),
            load_time: Duration::from_secs(2),
            latency: Duration::from_millis(50),
        }
    }
}

#[derive(Debug)]
pub struct DemoModel {
    config: DemoConfig,
}

impl Model for DemoModel {
    type Config = DemoConfig;

    async fn load(config: &DemoConfig) -> Result<Self, ModelError> {
        tracing::info!(load_time = ?config.load_time, "loading the demo model");
        tokio::time::sleep(config.load_time).await;
        Ok(DemoModel {
            config: config.clone(),
        })
    }

    fn name(&self) -> &str {
        &self.config.name
    }

    async fn infer(&mut self, batch: &[Value]) -> Result<Vec<ModelOutput>, ModelError> {
        if batch
            .iter()
            .any(|i| i.get("crash") == Some(&Value::Bool(true)))
        {
            return Err(ModelError::Crashed(
                "input asked the demo model to crash".into(),
            ));
        }
        if !self.config.latency.is_zero() {
            tokio::time::sleep(self.config.latency).await;
        }
        Ok(batch
            .iter()
            .map(|input| match input.get("fail") {
                Some(reason) => Err(reason
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| reason.to_string())),
                None => Ok(json!({
                    "model": self.config.name,
                    "echo": input,
                    "bytes": input.to_string().len(),
                })),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn echoes_fails_and_crashes_on_request() {
        let mut m = DemoModel::load(&DemoConfig {
            load_time: Duration::ZERO,
            latency: Duration::ZERO,
            ..DemoConfig::default()
        })
        .await
        .unwrap();
        let out = m
            .infer(&[json!({"q": 1}), json!({"fail": "bad input"})])
            .await
            .unwrap();
        assert_eq!(out[0].as_ref().unwrap()["echo"], json!({"q": 1}));
        assert_eq!(out[1], Err("bad input".to_string()));
        assert!(matches!(
            m.infer(&[json!({"q": 2}), json!({"crash": true})]).await,
            Err(ModelError::Crashed(_))
        ));
    }
}
