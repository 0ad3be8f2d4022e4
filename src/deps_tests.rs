use super::*;
use proptest::prelude::*;

fn counts(states: &[State]) -> Counts {
    let mut c = [0; 9];
    for s in states {
        c[state_index(*s)] += 1;
    }
    c
}

/// Condition × state of one process of the dependency.
#[test]
fn condition_matrix() {
    use Met::*;
    use State::*;
    let fatal = Blocked("is FATAL");
    let bad = Blocked("exited unexpectedly");
    #[rustfmt::skip]
    let table: [(State, [Met; 3]); 9] = [
        //                    ready  started completed
        (NotStarted,         [No,    No,     No]),
        (Starting,           [No,    Yes,    No]),
        (Running,            [Yes,   Yes,    No]),
        (Backoff,            [No,    No,     No]),
        (Stopping,           [No,    No,     No]),
        (Stopped,            [No,    No,     No]),
        (ExitedExpectedly,   [No,    No,     Yes]),
        (ExitedUnexpectedly, [No,    No,     bad]),
        (Fatal,              [fatal, fatal,  fatal]),
    ];
    for (state, row) in table {
        for (cond, want) in Condition::ALL.into_iter().zip(row) {
            assert_eq!(meets(cond, &counts(&[state])), want, "{state:?} {cond:?}");
            // Every process must meet it: one laggard is enough to wait.
            if want == Yes {
                let mixed = counts(&[state, NotStarted]);
                assert_eq!(meets(cond, &mixed), No, "{state:?} + NOT_STARTED");
            }
            // One FATAL process blocks, whatever the others do.
            assert_eq!(meets(cond, &counts(&[state, Fatal])), fatal);
        }
    }
}

#[test]
fn pulls_only_what_would_not_get_there_by_itself() {
    use State::*;
    for s in State::ALL {
        for c in Condition::ALL {
            let want = match s {
                NotStarted | Stopped | ExitedUnexpectedly => true,
                ExitedExpectedly => c != Condition::Completed,
                _ => false,
            };
            assert_eq!(pulls(s, c), want, "{s:?} {c:?}");
        }
    }
}

fn progs(spec: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    spec.iter()
        .map(|(n, d)| (n.to_string(), d.iter().map(|s| s.to_string()).collect()))
        .collect()
}

#[test]
fn unknown_names_and_cycles_are_named() {
    let p = progs(&[
        ("api", &["db"]),
        ("db", &["web"]),
        ("lone", &["lone"]),
        ("web", &["api", "ghost"]),
        ("free", &["db"]),
    ]);
    assert_eq!(
        check(&p),
        vec![
            Problem::Unknown {
                program: "web".into(),
                dep: "ghost".into()
            },
            Problem::Cycle(vec!["api".into(), "db".into(), "web".into()]),
            Problem::Cycle(vec!["lone".into()]),
        ]
    );
    assert!(check(&progs(&[("a", &["b"]), ("b", &[]), ("c", &["a", "b"])])).is_empty());
}

/// (name, depends_on, priority), owned.
type Spec = (String, Vec<(String, Condition)>, u32);

fn graph(spec: &[(&str, &[&str], u32)]) -> Graph {
    let owned: Vec<Spec> = spec
        .iter()
        .map(|(n, d, p)| {
            let deps = d.iter().map(|s| (s.to_string(), Condition::Ready));
            (n.to_string(), deps.collect(), *p)
        })
        .collect();
    Graph::new(owned.iter().map(|(n, d, p)| (n.as_str(), d.as_slice(), *p)))
}

#[test]
fn levels_priority_and_stop_waves_of_a_chain() {
    let g = graph(&[
        ("web", &["api"], 999),
        ("api", &["db", "cache"], 999),
        ("db", &[], 999),
        ("cache", &[], 5),
        ("other", &[], 1),
    ]);
    assert_eq!(
        ["db", "cache", "api", "web", "other"].map(|p| g.level(p)),
        [0, 0, 1, 2, 0]
    );
    let mut order = vec!["web", "api", "db", "cache", "other"];
    order.sort_by_key(|p| g.spawn_key(p));
    assert_eq!(order, ["other", "cache", "db", "api", "web"]);
    assert_eq!(g.dependents("db"), ["api"]);
    let all: HashSet<&str> = ["web", "api", "db", "cache", "other"].into();
    assert_eq!(
        g.stop_waves(&all),
        vec![vec!["other", "web"], vec!["api"], vec!["cache", "db"]]
    );
    // A stop that leaves the dependents running does not wait for them.
    let some: HashSet<&str> = ["db", "cache"].into();
    assert_eq!(g.stop_waves(&some), vec![vec!["cache", "db"]]);
    assert!(g.stop_blockers("db", &some).is_empty());
}

/// Random graphs: edges from each program to any others (cycles possible).
fn random_graph() -> impl Strategy<Value = Vec<Vec<usize>>> {
    (1usize..9)
        .prop_flat_map(|n| proptest::collection::vec(proptest::collection::vec(0..n, 0..3), n))
}

/// Whether `i` reaches itself by following dependencies.
fn on_cycle(edges: &[Vec<usize>], i: usize) -> bool {
    let mut seen = vec![false; edges.len()];
    let mut todo = edges[i].clone();
    while let Some(j) = todo.pop() {
        if j == i {
            return true;
        }
        if !std::mem::replace(&mut seen[j], true) {
            todo.extend(&edges[j]);
        }
    }
    false
}

fn named(edges: &[Vec<usize>]) -> Vec<(String, Vec<String>)> {
    edges
        .iter()
        .enumerate()
        .map(|(i, d)| (format!("p{i}"), d.iter().map(|j| format!("p{j}")).collect()))
        .collect()
}

proptest! {
    /// A cycle is reported iff there is one, and every reported one is a real loop.
    #[test]
    fn cycles_found_are_real_and_none_missed(edges in random_graph()) {
        let problems = check(&named(&edges));
        let any = (0..edges.len()).any(|i| on_cycle(&edges, i));
        prop_assert_eq!(!problems.is_empty(), any);
        for p in problems {
            let Problem::Cycle(c) = p else { panic!("unknown name in {edges:?}") };
            let ix: Vec<usize> = c.iter().map(|n| n[1..].parse().unwrap()).collect();
            for k in 0..ix.len() {
                let next = ix[(k + 1) % ix.len()];
                prop_assert!(edges[ix[k]].contains(&next), "{:?} not a loop in {:?}", c, edges);
            }
        }
    }

    /// Acyclic graphs: a program's level is above each dependency's, and a
    /// stop of everything stops it in an earlier wave than each dependency.
    #[test]
    fn levels_and_stop_waves_respect_every_edge(edges in random_graph()) {
        // Keep only edges to lower indices: acyclic by construction.
        let edges: Vec<Vec<usize>> = edges
            .iter()
            .enumerate()
            .map(|(i, d)| d.iter().copied().filter(|j| *j < i).collect())
            .collect();
        let names = named(&edges);
        let deps: Vec<Vec<(String, Condition)>> = names
            .iter()
            .map(|(_, d)| d.iter().map(|s| (s.clone(), Condition::Ready)).collect())
            .collect();
        let g = Graph::new(names.iter().zip(&deps).map(|((n, _), d)| (n.as_str(), d.as_slice(), 999)));
        let all: HashSet<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
        let waves = g.stop_waves(&all);
        let wave = |p: &str| waves.iter().position(|w| w.iter().any(|x| x == p)).unwrap();
        prop_assert_eq!(waves.iter().map(Vec::len).sum::<usize>(), names.len());
        for (i, d) in edges.iter().enumerate() {
            for j in d {
                let (a, b) = (format!("p{i}"), format!("p{j}"));
                prop_assert!(g.level(&a) > g.level(&b));
                prop_assert!(wave(&a) < wave(&b));
            }
        }
    }
}
