//! The pure heart of VaporForge: every type and rule shared by the Worker, the app, the sandbox and the tests.
//!
//! Nothing here touches a clock, a socket or a runtime: callers pass the time in, which is what lets the same
//! code run natively, in workerd and in the browser.

pub mod agent_env;
pub mod api;
pub mod backoff;
pub mod decode;
pub mod event;
pub mod export;
pub mod flags;
pub mod framer;
pub mod ingest;
pub mod legacy;
pub mod session_list;
pub mod token;
pub mod transcript;
pub mod watchdog;

pub use decode::{DecodeError, EnvelopeDecoder};
pub use event::{
    AgentLine, Answers, ApprovalScope, DecidedBy, DequeueReason, Envelope, ErrorCode, Event, Image,
    StatusKind, StoredLines, Usage,
};
pub use framer::{FrameError, LineFramer};
