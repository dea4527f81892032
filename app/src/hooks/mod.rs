//! Hooks on the leptos-use model: read-only signals plus closures, cleaned up with their owner.

pub mod use_agent_session;

pub use use_agent_session::{
    use_agent_session, use_agent_session_with_options, UseAgentSessionOptions,
    UseAgentSessionReturn,
};
