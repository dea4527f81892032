//! The app's components: the pages, the chat panel and its pieces.

mod admin_page;
mod approval_card;
mod chat_panel;
mod connection_badge;
mod error_banner;
mod login_page;
mod message_view;
mod pending_prompts;
mod plan_card;
mod prompt_box;
mod question_card;
mod session_rules;
mod sessions_page;
mod tool_card;
mod top_bar;
mod turn_controls;

pub use admin_page::AdminPage;
pub use approval_card::{ApprovalCard, CurrentSession};
pub use chat_panel::ChatPanel;
pub use connection_badge::ConnectionBadge;
pub use error_banner::ErrorBanner;
pub use login_page::LoginPage;
pub use message_view::MessageView;
pub use pending_prompts::PendingPrompts;
pub use prompt_box::PromptBox;
pub use sessions_page::SessionsPage;
pub use tool_card::ToolCard;
pub use top_bar::TopBar;
