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

/// How many trials run at once: a count, or `auto` (the servers' total slots, else the cores).
/// Written `4` or `"auto"` in TOML and JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jobs {
    Count(std::num::NonZeroUsize),
    Auto,
}

impl serde::Serialize for Jobs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Jobs::Count(n) => s.serialize_u64(n.get() as u64),
            Jobs::Auto => s.serialize_str("auto"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Jobs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Jobs, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Jobs;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number of trials at once (1 or more) or \"auto\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Jobs, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Jobs, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Jobs, E> {
                v.parse().map_err(|_| E::custom(format!("jobs = {v}: give 1 or more trials at once, or \"auto\"")))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Default for Jobs {
    fn default() -> Jobs {
        Jobs::Count(std::num::NonZeroUsize::MIN)
    }
}

impl std::str::FromStr for Jobs {
    type Err = String;
    fn from_str(s: &str) -> Result<Jobs, String> {
        if s == "auto" {
            return Ok(Jobs::Auto);
        }
        match s.parse::<usize>().ok().and_then(std::num::NonZeroUsize::new) {
            Some(n) => Ok(Jobs::Count(n)),
            None => Err(format!("`{s}` is not a number of trials at once: give 1 or more, or `auto`")),
        }
    }
}

impl std::fmt::Display for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Jobs::Count(n) => write!(f, "{n}"),
            Jobs::Auto => f.write_str("auto"),
        }
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

    #[test]
    fn jobs_read_a_count_or_auto_from_flags_and_toml() {
        assert_eq!("3".parse::<Jobs>(), Ok(Jobs::Count(3.try_into().unwrap())));
        assert_eq!("auto".parse::<Jobs>(), Ok(Jobs::Auto));
        assert!("0".parse::<Jobs>().unwrap_err().contains("1 or more"));
        #[derive(serde::Deserialize)]
        struct T {
            jobs: Jobs,
        }
        assert_eq!(toml::from_str::<T>("jobs = 4").unwrap().jobs, Jobs::Count(4.try_into().unwrap()));
        assert_eq!(toml::from_str::<T>("jobs = \"auto\"").unwrap().jobs, Jobs::Auto);
        assert!(toml::from_str::<T>("jobs = 0").is_err());
        assert!(toml::from_str::<T>("jobs = \"many\"").is_err());
    }
}
