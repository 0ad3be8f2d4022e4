//! The dependency graph between programs (`depends_on`, `priority`), pure:
//! no clock, no processes. The config loader asks it for unknown names and
//! cycles; the supervisor's gate asks it what a program depends on, what
//! depends on it, whether a dependency meets its condition (from how many of
//! its processes are in each state), which dependencies a `start` pulls along
//! and which dependents a stop waits for. Everything here is iterative (no
//! recursion), so a chain of 65 536 programs cannot overflow the stack.

use crate::state::State;
use std::collections::{HashMap, HashSet};

/// What a dependent waits for in each process of a dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Condition {
    /// RUNNING (the default).
    Ready,
    /// Spawned: STARTING or RUNNING.
    Started,
    /// Exited with an expected code (a one-shot task such as a migration).
    Completed,
}

impl Condition {
    pub const ALL: [Condition; 3] = [Condition::Ready, Condition::Started, Condition::Completed];

    pub fn word(self) -> &'static str {
        match self {
            Condition::Ready => "ready",
            Condition::Started => "started",
            Condition::Completed => "completed",
        }
    }

    pub fn parse(word: &str) -> Option<Condition> {
        Condition::ALL.into_iter().find(|c| c.word() == word)
    }
}

/// How many processes of a program are in each state, by `State::ALL` index.
pub type Counts = [u32; 9];

pub fn state_index(s: State) -> usize {
    State::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

/// Whether a dependency meets a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Met {
    Yes,
    /// Not yet: keep waiting.
    No,
    /// It will not get there by itself: `dependency db {why}`.
    Blocked(&'static str),
}

/// Whether every process of a dependency (counted by state) meets `cond`.
pub fn meets(cond: Condition, counts: &Counts) -> Met {
    let n = |s: State| counts[state_index(s)];
    let total: u32 = counts.iter().sum();
    if n(State::Fatal) > 0 {
        return Met::Blocked("is FATAL");
    }
    let ok = match cond {
        Condition::Ready => n(State::Running) == total,
        Condition::Started => n(State::Starting) + n(State::Running) == total,
        Condition::Completed => {
            if n(State::ExitedUnexpectedly) > 0 {
                return Met::Blocked("exited unexpectedly");
            }
            n(State::ExitedExpectedly) == total
        }
    };
    if ok {
        Met::Yes
    } else {
        Met::No
    }
}

/// Whether a `start` of a dependent starts a dependency process in `state`
/// (stopped or never started; done but not meeting `cond`). FATAL is left to
/// the operator: the dependent reports it instead. Alive or retrying ones get
/// there by themselves.
pub fn pulls(state: State, cond: Condition) -> bool {
    match state {
        State::NotStarted | State::Stopped | State::ExitedUnexpectedly => true,
        State::ExitedExpectedly => cond != Condition::Completed,
        _ => false,
    }
}

/// A mistake in the graph, found at load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// `program` depends on `dep`, which is not a program.
    Unknown { program: String, dep: String },
    /// Programs that depend on each other in a loop, in order: each depends on
    /// the next, the last on the first.
    Cycle(Vec<String>),
}

/// Unknown names and cycles of `programs` (name, names it depends on). A
/// graph with a cycle yields at least one; each found is a real loop, reported
/// once, starting from its first program in `programs` order.
pub fn check(programs: &[(String, Vec<String>)]) -> Vec<Problem> {
    let index: HashMap<&str, usize> = programs
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.as_str(), i))
        .collect();
    let mut problems = Vec::new();
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); programs.len()];
    for (i, (name, deps)) in programs.iter().enumerate() {
        for d in deps {
            match index.get(d.as_str()) {
                Some(&j) => edges[i].push(j),
                None => problems.push(Problem::Unknown {
                    program: name.clone(),
                    dep: d.clone(),
                }),
            }
        }
    }
    let (_, left) = kahn(&edges);
    problems.extend(
        cycles(&edges, left)
            .into_iter()
            .map(|c| Problem::Cycle(c.into_iter().map(|i| programs[i].0.clone()).collect())),
    );
    problems
}

/// Topological levels by Kahn's algorithm over `edges` (i depends on each of
/// `edges[i]`): a program's level is one more than its deepest dependency's.
/// Also returns the programs left over: in a cycle, or depending on one.
fn kahn(edges: &[Vec<usize>]) -> (Vec<u32>, Vec<bool>) {
    let n = edges.len();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut missing: Vec<usize> = vec![0; n];
    for (i, deps) in edges.iter().enumerate() {
        for &d in deps {
            dependents[d].push(i);
            missing[i] += 1;
        }
    }
    let mut level = vec![0u32; n];
    let mut left = vec![true; n];
    let mut ready: Vec<usize> = (0..n).filter(|i| missing[*i] == 0).collect();
    while let Some(i) = ready.pop() {
        left[i] = false;
        for &j in &dependents[i] {
            level[j] = level[j].max(level[i] + 1);
            missing[j] -= 1;
            if missing[j] == 0 {
                ready.push(j);
            }
        }
    }
    (level, left)
}

/// The cycles among the `left` programs of `kahn`, each once.
fn cycles(edges: &[Vec<usize>], mut left: Vec<bool>) -> Vec<Vec<usize>> {
    let n = edges.len();
    // Drop what merely depends on a cycle: nothing left depends on it.
    let mut wanted = vec![0usize; n];
    for i in (0..n).filter(|i| left[*i]) {
        for &d in &edges[i] {
            if left[d] {
                wanted[d] += 1;
            }
        }
    }
    let mut drop: Vec<usize> = (0..n).filter(|i| left[*i] && wanted[*i] == 0).collect();
    while let Some(i) = drop.pop() {
        left[i] = false;
        for &d in &edges[i] {
            if left[d] {
                wanted[d] -= 1;
                if wanted[d] == 0 {
                    drop.push(d);
                }
            }
        }
    }
    // Every program left has a dependency left: follow them until one repeats.
    let mut done = vec![false; n];
    let mut found = Vec::new();
    for start in 0..n {
        if !left[start] || done[start] {
            continue;
        }
        let mut path = Vec::new();
        let mut at_step: HashMap<usize, usize> = HashMap::new();
        let mut i = start;
        loop {
            if done[i] {
                break; // leads into a cycle already reported
            }
            if let Some(&k) = at_step.get(&i) {
                let mut c = path[k..].to_vec();
                let first = (0..c.len()).min_by_key(|j| c[*j]).unwrap_or(0);
                c.rotate_left(first);
                found.push(c);
                break;
            }
            at_step.insert(i, path.len());
            path.push(i);
            match edges[i].iter().copied().filter(|d| left[*d]).min() {
                Some(d) => i = d,
                None => break,
            }
        }
        for p in path {
            done[p] = true;
        }
    }
    found
}

/// A checked config's graph, by program name (unknown names were refused at
/// load, so any left here are ignored).
#[derive(Clone, Debug, Default)]
pub struct Graph {
    deps: HashMap<String, Vec<(String, Condition)>>,
    dependents: HashMap<String, Vec<String>>,
    /// Only levels above 0 and priorities other than the default: most
    /// programs have neither, and a copy of each name in two maps was
    /// 150 bytes a program (docs/benchmarks.md, "Footprint").
    level: HashMap<String, u32>,
    priority: HashMap<String, u32>,
}

impl Graph {
    /// From (name, depends_on, priority) of every program.
    pub fn new<'a>(
        programs: impl IntoIterator<Item = (&'a str, &'a [(String, Condition)], u32)>,
    ) -> Graph {
        let programs: Vec<_> = programs.into_iter().collect();
        let index: HashMap<&str, usize> =
            programs.iter().enumerate().map(|(i, p)| (p.0, i)).collect();
        let mut g = Graph::default();
        let mut edges = vec![Vec::new(); programs.len()];
        for (i, (name, deps, priority)) in programs.iter().enumerate() {
            if *priority != DEFAULT_PRIORITY {
                g.priority.insert(name.to_string(), *priority);
            }
            let known: Vec<(String, Condition)> = deps
                .iter()
                .filter(|(d, _)| index.contains_key(d.as_str()))
                .cloned()
                .collect();
            for (d, _) in &known {
                edges[i].push(index[d.as_str()]);
                g.dependents
                    .entry(d.clone())
                    .or_default()
                    .push(name.to_string());
            }
            if !known.is_empty() {
                g.deps.insert(name.to_string(), known);
            }
        }
        let (level, _) = kahn(&edges);
        for (i, (name, _, _)) in programs.iter().enumerate() {
            if level[i] > 0 {
                g.level.insert(name.to_string(), level[i]);
            }
        }
        g
    }

    /// What `program` depends on, with the condition of each.
    pub fn deps(&self, program: &str) -> &[(String, Condition)] {
        self.deps.get(program).map_or(&[], Vec::as_slice)
    }

    /// The programs that depend on `program`.
    pub fn dependents(&self, program: &str) -> &[String] {
        self.dependents.get(program).map_or(&[], Vec::as_slice)
    }

    /// 0 for a program without dependencies, else one more than its deepest one.
    pub fn level(&self, program: &str) -> u32 {
        self.level.get(program).copied().unwrap_or(0)
    }

    pub fn priority(&self, program: &str) -> u32 {
        self.priority
            .get(program)
            .copied()
            .unwrap_or(DEFAULT_PRIORITY)
    }

    /// The order processes are spawned in: dependencies first, then lower
    /// priority first, then by name.
    pub fn spawn_key<'a>(&self, program: &'a str) -> (u32, u32, &'a str) {
        (self.level(program), self.priority(program), program)
    }

    /// The dependents a stop of `program` waits for: those stopped in the same
    /// command as a whole (`whole` says which programs are).
    pub fn stop_blockers(&self, program: &str, whole: &HashSet<&str>) -> Vec<String> {
        self.dependents(program)
            .iter()
            .filter(|d| whole.contains(d.as_str()))
            .cloned()
            .collect()
    }

    /// The waves in which a stop of the `whole` programs proceeds: each wave
    /// stops once every earlier one is stopped; dependents go before their
    /// dependencies, unrelated programs together.
    pub fn stop_waves(&self, whole: &HashSet<&str>) -> Vec<Vec<String>> {
        let mut stopped: HashSet<String> = HashSet::new();
        let mut left: Vec<&str> = whole.iter().copied().collect();
        left.sort_unstable();
        let mut waves = Vec::new();
        while !left.is_empty() {
            let (now, later): (Vec<&str>, Vec<&str>) = left.iter().partition(|p| {
                self.stop_blockers(p, whole)
                    .iter()
                    .all(|b| stopped.contains(b))
            });
            if now.is_empty() {
                // Only a cycle could do this; a checked config has none.
                waves.push(later.iter().map(|s| s.to_string()).collect());
                break;
            }
            stopped.extend(now.iter().map(|s| s.to_string()));
            waves.push(now.iter().map(|s| s.to_string()).collect());
            left = later;
        }
        waves
    }
}

/// `priority` when not set, as supervisord.
pub const DEFAULT_PRIORITY: u32 = 999;

#[cfg(test)]
#[path = "deps_tests.rs"]
mod tests;
