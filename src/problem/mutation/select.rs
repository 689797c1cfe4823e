//! Choosing K bugs among the candidates: each tried alone against the frozen suite, the ones
//! that fail some tests (not all) kept, K of them chosen greedily (varied kinds, files and
//! functions; a target share of failing tests if asked), and the choice checked with all of
//! them in: each must still change what fails when it alone is fixed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use anyhow::Result;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::edit::{apply, compatible};
use super::{Kind, Mutation};
use crate::files::Files;

/// Kept candidates beyond the open slots tried before choosing, so the choice has some room
/// (twice that and K more when steering towards a target share).
const SPARE: usize = 3;

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// K, the number of bugs wanted.
    pub bugs: usize,
    pub seed: u64,
    /// The share of the suite's tests that should fail on the result, 0..1.
    pub target_failing: Option<f64>,
    /// Candidates tried alone at most (each is a run of the suite).
    pub max_tries: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tried {
    pub mutation: Mutation,
    /// The tests that fail with this mutation alone.
    pub failing: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Selection {
    /// In the order chosen; write bugs.toml in this order.
    pub chosen: Vec<Tried>,
    /// The tests that fail with every chosen bug in (the starter).
    pub starter_failing: BTreeSet<String>,
    /// Candidates tried alone.
    pub tried: usize,
    /// Of those, the ones failing at least one test but not all.
    pub kept: usize,
    /// Chosen ones dropped in the check: masked by the others, or the suite did not run with
    /// them all in.
    pub dropped: usize,
    /// Calls of `grade`, the check's included.
    pub graded: usize,
    /// Why fewer than K were chosen.
    pub why_short: Option<String>,
}

/// Chooses `opts.bugs` mutations of `reference` among `candidates` (as `candidates` lists them:
/// the order matters for the seed). `grade` runs the frozen suite (`total_tests` tests) on a
/// package and returns the failing tests' names, or None when the suite could not run at all.
/// The same seed, candidates and suite give the same selection.
pub fn select(
    reference: &Files,
    candidates: Vec<Mutation>,
    total_tests: usize,
    opts: &Options,
    grade: &mut dyn FnMut(&Files) -> Result<Option<BTreeSet<String>>>,
) -> Result<Selection> {
    let n_candidates = candidates.len();
    let mut s = Search {
        reference,
        total_tests,
        opts,
        grade,
        queue: interleaved(candidates, opts.seed),
        pool: vec![],
        chosen: vec![],
        rejected: BTreeSet::new(),
        memo: BTreeMap::new(),
        tried: 0,
        graded: 0,
    };
    let k = opts.bugs;
    let spare = if opts.target_failing.is_some() { 2 * SPARE + k } else { SPARE };
    let starter_failing = if k == 0 { BTreeSet::new() } else { s.run(spare)? };

    let why_short = (s.chosen.len() < k).then(|| {
        let mut why = format!(
            "only {} of {k} bugs hold: {} of {n_candidates} candidates tried{}, {} kept (they fail at least one test but not all {total_tests})",
            s.chosen.len(),
            s.tried,
            if s.tried >= opts.max_tries && !s.queue.is_empty() { " (--max-tries reached)" } else { "" },
            s.pool.len()
        );
        if !s.rejected.is_empty() {
            why += &format!(
                ", {} dropped (masked by the others, or the suite did not run with them all in)",
                s.rejected.len()
            );
        }
        if s.available() > 0 {
            why += &format!(", {} clash with the chosen ones in their files", s.available());
        }
        why
    });
    Ok(Selection {
        chosen: s.chosen.iter().map(|&i| s.pool[i].clone()).collect(),
        starter_failing,
        tried: s.tried,
        kept: s.pool.len(),
        dropped: s.rejected.len(),
        graded: s.graded,
        why_short,
    })
}

/// The candidates shuffled by `seed`, then dealt round-robin over their kinds (in the order
/// each kind first comes up), so that neighbours differ in kind.
fn interleaved(mut candidates: Vec<Mutation>, seed: u64) -> VecDeque<Mutation> {
    candidates.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut kinds: Vec<Kind> = vec![];
    let mut by_kind: BTreeMap<Kind, VecDeque<Mutation>> = BTreeMap::new();
    for m in candidates {
        if !kinds.contains(&m.kind) {
            kinds.push(m.kind);
        }
        by_kind.entry(m.kind).or_default().push_back(m);
    }
    let mut out = VecDeque::new();
    loop {
        let before = out.len();
        for k in &kinds {
            if let Some(m) = by_kind.get_mut(k).and_then(VecDeque::pop_front) {
                out.push_back(m);
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

struct Search<'a> {
    reference: &'a Files,
    total_tests: usize,
    opts: &'a Options,
    grade: &'a mut dyn FnMut(&Files) -> Result<Option<BTreeSet<String>>>,
    /// Not tried yet, in the order to try them.
    queue: VecDeque<Mutation>,
    /// Kept after their try, in the order tried.
    pool: Vec<Tried>,
    /// Indices into `pool`, in the order chosen.
    chosen: Vec<usize>,
    /// Indices into `pool` of the chosen ones the check dropped.
    rejected: BTreeSet<usize>,
    /// What fails with a set of `pool`'s mutations in.
    memo: BTreeMap<BTreeSet<usize>, Option<BTreeSet<String>>>,
    tried: usize,
    graded: usize,
}

impl Search<'_> {
    /// Tries, chooses and checks until K hold or nothing is left to try; what fails with the
    /// chosen ones all in.
    fn run(&mut self, spare: usize) -> Result<BTreeSet<String>> {
        let k = self.opts.bugs;
        loop {
            while self.available() < k - self.chosen.len() + spare && self.can_try() {
                self.try_next()?;
            }
            self.choose();
            if self.chosen.len() < k && self.can_try() {
                // The kept ones clash with the chosen: try on until one more is kept.
                let before = self.pool.len();
                while self.pool.len() == before && self.can_try() {
                    self.try_next()?;
                }
                continue;
            }
            if self.chosen.is_empty() {
                return Ok(BTreeSet::new());
            }
            match self.check()? {
                Ok(failing) => return Ok(failing),
                Err(pos) => {
                    let idx = self.chosen.remove(pos);
                    self.rejected.insert(idx);
                }
            }
        }
    }

    fn can_try(&self) -> bool {
        self.tried < self.opts.max_tries && !self.queue.is_empty()
    }

    /// Kept ones neither chosen nor dropped.
    fn available(&self) -> usize {
        (0..self.pool.len()).filter(|i| !self.chosen.contains(i) && !self.rejected.contains(i)).count()
    }

    /// Tries the next candidate alone; keeps it when it fails some tests but not all.
    fn try_next(&mut self) -> Result<()> {
        let Some(m) = self.queue.pop_front() else { return Ok(()) };
        let Ok(files) = apply(self.reference, &[&m]) else { return Ok(()) };
        self.tried += 1;
        self.graded += 1;
        if let Some(failing) = (self.grade)(&files)? {
            if !failing.is_empty() && failing.len() < self.total_tests {
                self.memo.insert(BTreeSet::from([self.pool.len()]), Some(failing.clone()));
                self.pool.push(Tried { mutation: m, failing });
            }
        }
        Ok(())
    }

    /// Fills the open slots greedily: each pick compatible with those chosen, closest to the
    /// target share for its step when there is one, then in a file and a function (then of a
    /// kind) not chosen yet, then first in the order tried.
    fn choose(&mut self) {
        while self.chosen.len() < self.opts.bugs {
            let chosen: Vec<&Mutation> = self.chosen.iter().map(|&i| &self.pool[i].mutation).collect();
            let union: BTreeSet<&String> = self.chosen.iter().flat_map(|&i| &self.pool[i].failing).collect();
            let step = (self.chosen.len() + 1) as f64;
            let goal = self.opts.target_failing.map(|t| t * step / self.opts.bugs as f64);
            let best = (0..self.pool.len())
                .filter(|i| !self.chosen.contains(i) && !self.rejected.contains(i))
                .filter(|&i| {
                    let m = &self.pool[i].mutation;
                    self.reference.get(&m.file).is_some_and(|text| compatible(text, &chosen, m))
                })
                .map(|i| {
                    let t = &self.pool[i];
                    let distance = goal.map_or(0.0, |g| {
                        let failing = union.len() + t.failing.iter().filter(|f| !union.contains(f)).count();
                        (failing as f64 / self.total_tests as f64 - g).abs()
                    });
                    let same_file = chosen.iter().any(|c| c.file == t.mutation.file);
                    let same_scope = chosen.iter().any(|c| c.file == t.mutation.file && c.scope == t.mutation.scope);
                    let same_kind = chosen.iter().any(|c| c.kind == t.mutation.kind);
                    (distance, u8::from(same_file) + u8::from(same_scope), same_kind, i)
                })
                .min_by(|a, b| a.0.total_cmp(&b.0).then((a.1, a.2, a.3).cmp(&(b.1, b.2, b.3))));
            match best {
                Some((_, _, _, i)) => self.chosen.push(i),
                None => return,
            }
        }
    }

    /// With every chosen bug in, each must still be caught: leaving it out must change what
    /// fails. Ok: what fails with all in; Err: the position in `chosen` of the newest that
    /// does not hold (or of the newest chosen, when the suite does not run with all in).
    fn check(&mut self) -> Result<Result<BTreeSet<String>, usize>> {
        let all: BTreeSet<usize> = self.chosen.iter().copied().collect();
        let Some(starter) = self.failing(&all)? else { return Ok(Err(self.chosen.len() - 1)) };
        for pos in (0..self.chosen.len()).rev() {
            let mut others = all.clone();
            others.remove(&self.chosen[pos]);
            match self.failing(&others)? {
                Some(f) if f != starter => {}
                _ => return Ok(Err(pos)),
            }
        }
        Ok(Ok(starter))
    }

    /// What fails with the `pool` mutations `set` in (graded once per set).
    fn failing(&mut self, set: &BTreeSet<usize>) -> Result<Option<BTreeSet<String>>> {
        if let Some(known) = self.memo.get(set) {
            return Ok(known.clone());
        }
        let ms: Vec<&Mutation> = set.iter().map(|&i| &self.pool[i].mutation).collect();
        let got = match apply(self.reference, &ms) {
            Ok(files) => {
                self.graded += 1;
                (self.grade)(&files)?
            }
            Err(_) => None,
        };
        self.memo.insert(set.clone(), got.clone());
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A package of two files, `a.py` and `b.py`, with `v<i> = <i>` on every other line
    /// (blank lines between, so neighbouring lines never touch), and a fake suite: each test
    /// watches some lines and fails when one of them is not as in the reference.
    struct Fake {
        reference: Files,
        lines: Vec<(String, String)>,
        watch: Vec<(String, Vec<usize>)>,
    }

    impl Fake {
        /// `lines` lines per file; test `t<j>` watches the lines `watch[j]` (indices over both
        /// files: a.py's first, then b.py's).
        fn new(lines: usize, watch: &[&[usize]]) -> Fake {
            let mut reference = Files::new();
            let mut all = vec![];
            for file in ["a.py", "b.py"] {
                let mut text = String::new();
                for _ in 0..lines {
                    let n = all.len();
                    let line = format!("v{n} = {n}\n");
                    text += &line;
                    text += "\n";
                    all.push((file.to_string(), line));
                }
                reference.insert(file.to_string(), text);
            }
            let watch = watch.iter().enumerate().map(|(j, w)| (format!("t{j}"), w.to_vec())).collect();
            Fake { reference, lines: all, watch }
        }

        /// The candidate on line `n`: its value becomes 1000 + n; kinds and functions vary.
        fn candidate(&self, n: usize) -> Mutation {
            let (file, line) = &self.lines[n];
            let text = &self.reference[file];
            let at = text.find(line.as_str()).unwrap() + line.find("= ").unwrap() + 2;
            let original = n.to_string();
            Mutation {
                file: file.clone(),
                kind: Kind::ALL[n % Kind::ALL.len()],
                line: text[..at].matches('\n').count() + 1,
                start: at,
                end: at + original.len(),
                original,
                replacement: (1000 + n).to_string(),
                scope: format!("f{}", n / 3),
            }
        }

        fn candidates(&self) -> Vec<Mutation> {
            (0..self.lines.len()).map(|n| self.candidate(n)).collect()
        }

        fn failing(&self, files: &Files) -> BTreeSet<String> {
            self.watch
                .iter()
                .filter(|(_, lines)| lines.iter().any(|&n| !files[&self.lines[n].0].contains(&self.lines[n].1)))
                .map(|(t, _)| t.clone())
                .collect()
        }

        fn select(&self, opts: &Options) -> (Selection, usize) {
            let mut calls = 0;
            let mut grade = |files: &Files| -> Result<Option<BTreeSet<String>>> {
                calls += 1;
                Ok(Some(self.failing(files)))
            };
            let s = select(&self.reference, self.candidates(), self.watch.len(), opts, &mut grade).unwrap();
            (s, calls)
        }
    }

    fn opts(bugs: usize, seed: u64) -> Options {
        Options { bugs, seed, target_failing: None, max_tries: 1000 }
    }

    fn lines_of(s: &Selection) -> Vec<usize> {
        s.chosen.iter().map(|t| t.mutation.replacement.parse::<usize>().unwrap() - 1000).collect()
    }

    /// 10 lines per file; 20 tests, test j watching line j, and line 19 watched by every test
    /// (an import-time crash).
    fn independent() -> Fake {
        let watch: Vec<Vec<usize>> = (0..20).map(|j| vec![j, 19]).collect();
        let refs: Vec<&[usize]> = watch.iter().map(Vec::as_slice).collect();
        Fake::new(10, &refs)
    }

    #[test]
    fn the_same_seed_chooses_the_same_bugs_and_others_differ() {
        let fake = independent();
        let (a, _) = fake.select(&opts(3, 7));
        let (b, _) = fake.select(&opts(3, 7));
        assert_eq!(a, b);
        let other: BTreeSet<Vec<usize>> = (0..8).map(|seed| lines_of(&fake.select(&opts(3, seed)).0)).collect();
        assert!(other.len() > 4, "seeds should choose different bugs: {other:?}");
    }

    #[test]
    fn k_bugs_each_caught_with_varied_kinds_and_files_and_few_suite_runs() {
        let fake = independent();
        for seed in 0..10 {
            let (s, calls) = fake.select(&opts(4, seed));
            assert_eq!(s.chosen.len(), 4, "{s:?}");
            assert_eq!(s.why_short, None);
            assert_eq!(s.graded, calls);
            assert!(!lines_of(&s).contains(&19), "a bug failing every test is no bug: {s:?}");
            let kinds: BTreeSet<Kind> = s.chosen.iter().map(|t| t.mutation.kind).collect();
            assert_eq!(kinds.len(), 4, "{s:?}");
            let files: BTreeSet<&str> = s.chosen.iter().map(|t| t.mutation.file.as_str()).collect();
            assert_eq!(files.len(), 2);
            let union: BTreeSet<String> = s.chosen.iter().flat_map(|t| t.failing.clone()).collect();
            assert_eq!(s.starter_failing, union);
            // K + spare tried alone, then the starter and K leave-one-out runs.
            assert!(s.tried <= 4 + SPARE + 1, "{s:?}");
            assert!(calls <= s.tried + 1 + 4, "{calls} calls: {s:?}");
        }
    }

    #[test]
    fn a_higher_target_chooses_a_harder_set() {
        // 5 lines per file; line n alone fails n % 5 + 1 tests of its own (30 tests in all).
        let watch: Vec<Vec<usize>> = (0..10).flat_map(|n| vec![vec![n]; n % 5 + 1]).collect();
        let refs: Vec<&[usize]> = watch.iter().map(Vec::as_slice).collect();
        let fake = Fake::new(5, &refs);
        for seed in 0..5 {
            let mut low = opts(2, seed);
            low.target_failing = Some(0.1);
            let mut high = low.clone();
            high.target_failing = Some(0.5);
            let (l, _) = fake.select(&low);
            let (h, _) = fake.select(&high);
            assert_eq!((l.chosen.len(), h.chosen.len()), (2, 2));
            // Goals: 3 of 30 tests (0.1), and 15 (0.5), which only the two hardest (5 + 5) near.
            assert_eq!(l.starter_failing.len(), 3, "{l:?}");
            assert_eq!(h.starter_failing.len(), 10, "{h:?}");
        }
    }

    #[test]
    fn a_masked_bug_is_replaced() {
        // Lines 0 (a.py) and 3 (b.py) are watched by the same single test: with both in,
        // fixing either changes nothing. Line 1 (a.py) has a test of its own.
        let fake = Fake::new(3, &[&[0, 3], &[1], &[2, 4, 5], &[5]]);
        let cands: Vec<Mutation> = [0, 3, 1].iter().map(|&n| fake.candidate(n)).collect();
        let mut masked = 0;
        for seed in 0..12 {
            let mut grade = |files: &Files| -> Result<Option<BTreeSet<String>>> { Ok(Some(fake.failing(files))) };
            let s = select(&fake.reference, cands.clone(), 4, &opts(2, seed), &mut grade).unwrap();
            let lines = lines_of(&s);
            assert_eq!(lines.len(), 2, "{s:?}");
            assert!(!(lines.contains(&0) && lines.contains(&3)), "{s:?}");
            masked += s.dropped;
        }
        assert!(masked > 0, "some seed should have tried the masking pair");
    }

    #[test]
    fn too_few_candidates_say_why() {
        let fake = independent();
        let (s, _) = fake.select(&Options { bugs: 30, seed: 1, target_failing: None, max_tries: 1000 });
        assert_eq!(s.chosen.len(), 19);
        let why = s.why_short.unwrap();
        assert!(why.starts_with("only 19 of 30 bugs hold: 20 of 20 candidates tried, 19 kept"), "{why}");

        let (s, _) = fake.select(&Options { bugs: 3, seed: 1, target_failing: None, max_tries: 2 });
        assert_eq!(s.tried, 2);
        assert!(s.why_short.unwrap().contains("(--max-tries reached)"));
    }

    #[test]
    fn a_suite_that_cannot_run_keeps_nothing_and_errors_pass_through() {
        let fake = independent();
        let mut none = |_: &Files| -> Result<Option<BTreeSet<String>>> { Ok(None) };
        let s = select(&fake.reference, fake.candidates(), 20, &opts(2, 0), &mut none).unwrap();
        assert!(s.chosen.is_empty() && s.kept == 0 && s.why_short.is_some());
        let mut broken = |_: &Files| -> Result<Option<BTreeSet<String>>> { anyhow::bail!("interrupted") };
        assert!(select(&fake.reference, fake.candidates(), 20, &opts(2, 0), &mut broken).is_err());
    }

    #[test]
    fn kinds_are_dealt_round_robin() {
        let fake = independent();
        let order: Vec<Kind> = interleaved(fake.candidates(), 3).iter().map(|m| m.kind).collect();
        let first: BTreeSet<Kind> = order[..7].iter().copied().collect();
        assert_eq!(first.len(), 7, "{order:?}");
    }
}
