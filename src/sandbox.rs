//! Isolation: how an agent's command is confined. TODO(owner): bubblewrap not built yet.

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Isolation {
    /// A bubblewrap sandbox that shows the agent only its workdir, its home and the system.
    Sandbox,
    /// No isolation: the agent runs as you, seeing everything you can.
    #[default]
    None,
}

impl Isolation {
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Sandbox => "sandbox",
            Isolation::None => "none",
        }
    }
}

/// Wraps `spec` so that it runs under `isolation`.
pub fn confine(
    isolation: Isolation,
    spec: crate::agent::exec::ExecSpec,
    _scratch: &crate::runner::trial::Scratch,
) -> anyhow::Result<crate::agent::exec::ExecSpec> {
    match isolation {
        Isolation::None => Ok(spec),
        Isolation::Sandbox => Err(crate::error::Error::Environment(
            "the bubblewrap sandbox is not built yet: pass --isolation none".into(),
        )
        .into()),
    }
}
