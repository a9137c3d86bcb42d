//! What a model is to the inference worker: something loaded once (which may take minutes),
//! then asked to infer on micro-batches, one output per input.
//!
//! Two kinds of failure are kept apart: an input the model cannot handle is that request's
//! `Err(reason)` (a failed reply; the others in the batch are unaffected), while
//! [`ModelError::Crashed`] means the model itself is gone (its process died, it hung): the worker
//! reloads it and retries the batch one request at a time, counting attempts, so one poison
//! request cannot take the others down with it.
//!
//! The models shipped: [`demo`] (built in: a configurable load time and latency) and
//! [`command`] (an external program, started once, speaking JSON lines).

use std::future::Future;

use serde_json::Value;

pub mod command;
pub mod demo;

use command::{CommandConfig, CommandModel};
use demo::{DemoConfig, DemoModel};

/// One request's result: the output, or why this input failed.
pub type ModelOutput = Result<Value, String>;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model failed to load: {0}")]
    Load(String),
    #[error("model crashed: {0}")]
    Crashed(String),
}

pub trait Model: Send + Sized + 'static {
    type Config: Clone + Send + Sync + std::fmt::Debug + 'static;

    /// Loads the model. Called once at start, and again after a crash.
    fn load(config: &Self::Config) -> impl Future<Output = Result<Self, ModelError>> + Send;

    /// The name requests may ask for.
    fn name(&self) -> &str;

    /// Exactly one output per input, in order.
    fn infer(
        &mut self,
        batch: &[Value],
    ) -> impl Future<Output = Result<Vec<ModelOutput>, ModelError>> + Send;
}

/// Which model a worker serves, as chosen by configuration.
#[derive(Debug, Clone)]
pub enum ModelSpec {
    Demo(DemoConfig),
    Command(CommandConfig),
}

/// The model a worker binary serves: either kind, chosen at start.
#[derive(Debug)]
pub enum AnyModel {
    Demo(DemoModel),
    Command(Box<CommandModel>),
}

impl Model for AnyModel {
    type Config = ModelSpec;

    async fn load(config: &ModelSpec) -> Result<Self, ModelError> {
        Ok(match config {
            ModelSpec::Demo(c) => AnyModel::Demo(DemoModel::load(c).await?),
            ModelSpec::Command(c) => AnyModel::Command(Box::new(CommandModel::load(c).await?)),
        })
    }

    fn name(&self) -> &str {
        match self {
            AnyModel::Demo(m) => m.name(),
            AnyModel::Command(m) => m.name(),
        }
    }

    async fn infer(&mut self, batch: &[Value]) -> Result<Vec<ModelOutput>, ModelError> {
        match self {
            AnyModel::Demo(m) => m.infer(batch).await,
            AnyModel::Command(m) => m.infer(batch).await,
        }
    }
}
