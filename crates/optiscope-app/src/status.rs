//! What the explorer's status line shows — the app writes it, the web page mirrors it into the
//! DOM (`page::publish_status`) for tests and tools.

/// What the status line shows (also mirrored into the web page's DOM for tests and tools).
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The compute path in words.
    pub compute: String,
    /// The step of what the view shows: the experiment's step, or the Quantization view's
    /// minibatches.
    pub step: u64,
    /// Smoothed frame time, ms.
    pub frame_ms: f64,
    /// Smoothed steps per second.
    pub steps_per_s: f64,
    /// The latest message (error or notice).
    pub message: String,
    /// The view.
    pub view: String,
    /// The preset.
    pub preset: String,
    /// The shareable link of the current state.
    pub link: String,
    /// The Quantization view's run in one line (epoch, accuracy, per-layer bits, α, near_frac,
    /// mse); empty in the other views.
    pub detail: String,
    /// The title of the "what to look for" panel when it is open; empty when closed.
    pub guide: String,
}
