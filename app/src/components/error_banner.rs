//! The error banner: one clear sentence, shown while there is something to say.

use leptos::prelude::*;

/// Shows `message` in an alert banner; renders nothing while it is `None`.
#[component]
pub fn ErrorBanner(
    /// The text to show.
    #[prop(into)]
    message: Signal<Option<String>>,
) -> impl IntoView {
    move || {
        message.get().map(|text| {
            view! {
                <div class="banner banner-error" role="alert" data-testid="error-banner">
                    {text}
                </div>
            }
        })
    }
}
