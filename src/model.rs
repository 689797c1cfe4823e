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

/// One slice of a plan (`--shard K/N`, 1-based): the trials whose key hashes to it. A
/// trial's slice depends on its key alone (problem, agent, repeat), so adding a problem or an
/// agent to the plan moves no other trial to another slice, and the slices of a plan are
/// disjoint and cover it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// 1 to `count`.
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The slice (1 to `count`) of the trial whose id is `id` (`problem/agent/repeat`): the
    /// first 8 bytes of its sha256, big-endian, modulo `count`. Fixed for good: shards made by
    /// any fixbench merge with any other's.
    pub fn slice_of(id: &str, count: u32) -> u32 {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(id.as_bytes());
        let head = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        (head % u64::from(count.max(1))) as u32 + 1
    }

    /// Whether the trial whose id is `id` is in this slice.
    pub fn holds(&self, id: &str) -> bool {
        Shard::slice_of(id, self.count) == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("`{s}` is not a shard: write K/N, slice K (1 to N) of N, e.g. 2/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 {
            return Err(format!("shard `{s}`: N is the number of slices, 1 or more"));
        }
        if index == 0 || index > count {
            return Err(format!("shard `{s}`: K counts from 1 to N ({count}), as in 1/{count} … {count}/{count}"));
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
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

    #[test]
    fn shards_read_k_of_n_counting_from_one() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!("1/1".parse::<Shard>().unwrap().to_string(), "1/1");
        assert!("0/4".parse::<Shard>().unwrap_err().contains("from 1 to N"));
        assert!("5/4".parse::<Shard>().unwrap_err().contains("from 1 to N"));
        assert!("1/0".parse::<Shard>().unwrap_err().contains("1 or more"));
        assert!("2".parse::<Shard>().unwrap_err().contains("K/N"));
        assert!("a/b".parse::<Shard>().unwrap_err().contains("K/N"));
    }

    /// The assignment is part of the store's format: shards made by one fixbench merge with
    /// another's only while it stays the same.
    #[test]
    fn a_trials_slice_never_changes() {
        let slices: Vec<u32> = ["expr_calc/null/0", "expr_calc/oracle/0", "mini_sheet/null/1", "mini_stackvm/pi/2"]
            .iter()
            .map(|id| Shard::slice_of(id, 4))
            .collect();
        assert_eq!(slices, [1, 3, 3, 1], "sha256's first 8 bytes, big-endian, mod 4, plus 1");
        assert!((1..=7).all(|n| Shard::slice_of("expr_calc/null/0", 1) == 1 && Shard::slice_of("x", n) <= n));
    }

    proptest::proptest! {
        /// Over any plan and any N, every trial is in exactly one slice, and adding a problem
        /// or an agent leaves every other trial in its slice.
        #[test]
        fn the_slices_of_a_plan_are_disjoint_cover_it_and_stay_put(
            problems in proptest::collection::btree_set("[a-z_]{1,12}", 1..8),
            agents in proptest::collection::btree_set("[a-z0-9-]{1,10}", 1..5),
            repeat in 1u32..4,
            count in 1u32..70,
            extra in "[A-Z]{1,6}",
        ) {
            let ids = |problems: &[&String]| -> Vec<String> {
                let mut out = vec![];
                for r in 0..repeat { for p in problems { for a in &agents { out.push(format!("{p}/{a}/{r}")); } } }
                out
            };
            let before: Vec<&String> = problems.iter().collect();
            let plan = ids(&before);
            for id in &plan {
                let holders = (1..=count).filter(|&k| Shard { index: k, count }.holds(id)).count();
                proptest::prop_assert_eq!(holders, 1, "{} is in {} slices of {}", id, holders, count);
            }
            let mut after = before.clone();
            after.push(&extra);
            let grown = ids(&after);
            for index in 1..=count {
                let shard = Shard { index, count };
                let was: Vec<&String> = plan.iter().filter(|id| shard.holds(id)).collect();
                let now: Vec<&String> = grown.iter().filter(|id| shard.holds(id) && plan.contains(id)).collect();
                proptest::prop_assert_eq!(was, now, "slice {} moved trials when {} was added", shard, extra);
            }
        }
    }
}

/// What serves the model: detected at run start from what the server answers (or named with
/// `--server-kind`). It decides which endpoints and counters telemetry reads.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ServerKind {
    /// llama.cpp's llama-server: `/props`, `/slots`, `llamacpp:` counters, `timings` in answers.
    LlamaServer,
    /// vLLM: `vllm:` counters and histograms on `/metrics`, `usage` in answers.
    Vllm,
    /// SGLang: `sglang:` counters with `--enable-metrics`, `usage` in answers.
    Sglang,
    /// Ollama: no `/metrics`; its native `/api/chat` answers carry timings in nanoseconds.
    Ollama,
    /// llama-cpp-python's server: no `/metrics`, no timings, no usage in streams.
    LlamaCppPython,
    /// Any other OpenAI-compatible server or remote API: only what an answer itself says.
    Other,
}

impl ServerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerKind::LlamaServer => "llama-server",
            ServerKind::Vllm => "vllm",
            ServerKind::Sglang => "sglang",
            ServerKind::Ollama => "ollama",
            ServerKind::LlamaCppPython => "llama-cpp-python",
            ServerKind::Other => "other",
        }
    }
}

impl std::fmt::Display for ServerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
