//! Plain data shared by every layer: the choices a run is made with and the name of one
//! trial. Nothing here does any work; every module may use it, it uses none of them.

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// A bubblewrap sandbox that shows the agent only its workdir, its home and the system.
    #[default]
    Sandbox,
    /// No isolation: the agent runs as you, seeing everything you can.
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

/// How pytest is contained while it runs the agent's package.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GradeIsolation {
    /// pytest runs in a bubblewrap sandbox: the grading folder read-only, nothing of yours visible.
    #[default]
    Sandbox,
    /// pytest runs as you, and the agent's package with it: it can read and write all your
    /// files, including the problems' answers and earlier results. Only for code you trust.
    None,
}

impl GradeIsolation {
    pub fn as_str(self) -> &'static str {
        match self {
            GradeIsolation::Sandbox => "sandbox",
            GradeIsolation::None => "none",
        }
    }
}

/// How the prompt cache is prepared before each trial.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheState {
    /// Leave the server as it is.
    #[default]
    Shared,
    /// One warm-up request shaped like the agent's first prompt before each trial.
    Warm,
    /// Erase every slot before each trial (needs `--slot-save-path` on the server).
    Cold,
}

impl CacheState {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheState::Shared => "shared",
            CacheState::Warm => "warm",
            CacheState::Cold => "cold",
        }
    }
}

/// Each choice prints as its name on the command line (`--isolation none`).
macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(Isolation, GradeIsolation, CacheState, BuiltinAgent);

/// One trial to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialKey {
    pub problem: String,
    pub agent: String,
    pub repeat: u32,
}

impl TrialKey {
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.problem, self.agent, self.repeat)
    }
    pub fn dir_name(&self) -> String {
        format!("{}__{}__{}", self.problem, self.agent, self.repeat)
    }
}

/// The agents built into fixbench, which run no command of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuiltinAgent {
    /// Changes nothing: grades at each problem's baseline.
    Null,
    /// Puts the reference package in place: resolves every problem.
    Oracle,
}

impl BuiltinAgent {
    pub const ALL: [BuiltinAgent; 2] = [BuiltinAgent::Null, BuiltinAgent::Oracle];

    /// Its name, which is also the agent's name in runs (`--agent null`).
    pub fn as_str(self) -> &'static str {
        match self {
            BuiltinAgent::Null => "null",
            BuiltinAgent::Oracle => "oracle",
        }
    }

    pub fn named(name: &str) -> Option<BuiltinAgent> {
        BuiltinAgent::ALL.into_iter().find(|b| b.as_str() == name)
    }
}

/// The built-in agents' names, which no configured agent may take.
pub const BUILTIN_AGENTS: &[&str] = &["null", "oracle"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserved_names_are_the_builtin_agents() {
        let names: Vec<&str> = BuiltinAgent::ALL.iter().map(|b| b.as_str()).collect();
        assert_eq!(names, BUILTIN_AGENTS);
        assert_eq!(BuiltinAgent::named("oracle"), Some(BuiltinAgent::Oracle));
    }
}
