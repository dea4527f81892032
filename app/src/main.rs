//! Mounts the VaporForge app.

fn main() {
    leptos::mount::mount_to_body(vf_app::App);
}
