use super::*;

fn gpus(n: usize) -> Resources {
    Resources {
        gpus: (0..n).map(|i| i.to_string()).collect(),
        max_runs: None,
    }
}

fn ask(id: &str, gpus: Option<u32>) -> Request {
    Request {
        id: id.into(),
        gpus,
        priority: 0,
    }
}

fn ids(grants: &[Grant]) -> Vec<&str> {
    grants.iter().map(|g| g.id.as_str()).collect()
}

#[test]
fn one_gpu_runs_take_the_lowest_free_gpu_and_never_share_one() {
    let mut queue = Queue::new(gpus(4));
    for i in 0..10 {
        queue.push(ask(&format!("r{i}"), Some(1)));
    }
    let first = queue.dispatch();
    assert_eq!(ids(&first), ["r0", "r1", "r2", "r3"]);
    let given: Vec<_> = first.iter().map(|g| g.gpus.clone().unwrap()).collect();
    assert_eq!(given, [vec!["0"], vec!["1"], vec!["2"], vec!["3"]]);
    assert!(queue.dispatch().is_empty(), "no GPU is free");
    assert_eq!(
        queue.waiting()[0],
        Waiting {
            id: "r4".into(),
            position: 1,
            gpus: Some(1),
            priority: 0
        }
    );
    assert!(queue.release("r2"));
    let next = queue.dispatch();
    assert_eq!(
        next,
        [Grant {
            id: "r4".into(),
            gpus: Some(vec!["2".into()])
        }]
    );
    assert!(!queue.release("r2"), "released once");
}

#[test]
fn a_two_gpu_run_is_not_passed_by_later_gpu_runs_but_cpu_runs_pass_it() {
    let mut queue = Queue::new(gpus(2));
    queue.push(ask("a", Some(1)));
    assert_eq!(ids(&queue.dispatch()), ["a"]);
    queue.push(ask("pair", Some(2)));
    queue.push(ask("single", Some(1)));
    queue.push(ask("cpu", None));
    assert_eq!(ids(&queue.dispatch()), ["cpu"], "the free GPU waits for the pair");
    queue.release("a");
    let pair = queue.dispatch();
    assert_eq!(
        pair,
        [Grant {
            id: "pair".into(),
            gpus: Some(vec!["0".into(), "1".into()])
        }]
    );
    queue.release("pair");
    assert_eq!(ids(&queue.dispatch()), ["single"]);
}

#[test]
fn max_runs_holds_back_every_later_run() {
    let mut queue = Queue::new(Resources {
        gpus: vec![],
        max_runs: Some(2),
    });
    for id in ["a", "b", "c"] {
        queue.push(ask(id, None));
    }
    assert_eq!(ids(&queue.dispatch()), ["a", "b"]);
    assert_eq!(queue.counts(), (2, 1));
    queue.release("b");
    assert_eq!(ids(&queue.dispatch()), ["c"]);
}

#[test]
fn priority_goes_first_and_admit_respects_the_queue() {
    let mut queue = Queue::new(Resources {
        gpus: vec![],
        max_runs: Some(1),
    });
    let (own, _) = queue.admit(ask("running", None));
    assert!(own.is_some());
    let (own, _) = queue.admit(ask("x", None));
    assert_eq!(own, None, "no room: not granted, and not kept");
    assert!(!queue.is_waiting("x"));
    queue.push(ask("low", None));
    queue.push(ask("later", None));
    queue.push(Request {
        priority: 5,
        ..ask("urgent", None)
    });
    let order: Vec<String> = queue.waiting().into_iter().map(|w| w.id).collect();
    assert_eq!(order, ["urgent", "low", "later"]);
    assert!(queue.set_priority("later", 9));
    let order: Vec<String> = queue.waiting().into_iter().map(|w| w.id).collect();
    assert_eq!(order, ["later", "urgent", "low"]);
    assert!(queue.cancel("urgent"));
    assert!(!queue.cancel("urgent"));
    queue.release("running");
    assert_eq!(ids(&queue.dispatch()), ["later"]);
}

#[test]
fn adopted_runs_hold_their_gpus() {
    let mut queue = Queue::new(gpus(2));
    queue.hold("old", &["1".to_string(), "gone".to_string()]);
    assert_eq!(queue.assigned("old"), Some(vec!["1".to_string()]));
    queue.push(ask("new", Some(1)));
    queue.push(ask("new2", Some(1)));
    assert_eq!(
        queue.dispatch(),
        [Grant {
            id: "new".into(),
            gpus: Some(vec!["0".into()])
        }]
    );
    queue.release("old");
    assert_eq!(
        queue.dispatch(),
        [Grant {
            id: "new2".into(),
            gpus: Some(vec!["1".into()])
        }]
    );
}

#[test]
fn asking_for_more_gpus_than_there_are_is_refused() {
    let err = Queue::check(&gpus(2), Some(3)).unwrap_err();
    assert!(err.contains("asks for 3 GPUs and guildd has 2 (0,1)"), "{err}");
    assert!(Queue::check(&gpus(0), None).is_ok());
    assert!(Queue::check(&gpus(0), Some(0)).is_ok());
}

#[test]
fn gpu_lists_parse_with_errors_that_say_where() {
    assert_eq!(Resources::parse_gpus("0, 1,2").unwrap(), ["0", "1", "2"]);
    assert_eq!(Resources::parse_gpus("").unwrap(), Vec::<String>::new());
    assert!(Resources::parse_gpus("0,,1").unwrap_err().contains("GPU 2"));
    assert!(Resources::parse_gpus("0,0").unwrap_err().contains("twice"));
    assert!(Resources::parse_gpus("0;rm").unwrap_err().contains("expected an index"));
}
